"""Serve load test: the astroray Serve app (dynamic batching) vs a plain FastAPI app, one run.

Both answer ``POST /v1/lightcurves/classify`` with the same predictor on the same model (an
Astromer 1-sized classifier, random weights: throughput does not depend on them) and the same
pydantic request schema; every request holds one light curve, as a broker sends per alert.

- ours: Ray Serve on a local Ray (proxy -> FastAPI ingress -> model replicas with
  ``@serve.batch``; ``--replicas``, 2 by default);
- plain: one uvicorn process whose (sync) endpoint calls the predictor per request in
  FastAPI's thread pool (no batching).

Both use ``--torch-threads`` intra-op threads per forward (1 by default) and ``--device``.

Each server runs alone (never both at once) and is driven from this process by an asyncio
client (aiohttp) at 127.0.0.1 only, at each concurrency level, for a fixed number of requests
or a time limit, whichever comes first. Printed per level: requests/s, p50 / p99 latency (ms),
non-2xx and 5xx answers, transport errors; then our/plain throughput and p99 ratios. The last
line is one JSON object with every figure.

    python benchmarks/serve_load.py                          # concurrency 1, 8, 32
    python benchmarks/serve_load.py --requests 100 --time-limit 20 --concurrency 1,32  # quick
    python benchmarks/serve_load.py --device cuda --replicas 1   # on a GPU machine
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROUTE = "/v1/lightcurves/classify"
CLASSES = ("DCEP_F", "DCEP_1O", "EB", "LPV", "RRab", "RRc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model(folder: Path, size: str) -> Path:
    from astroray.models import get_config
    from astroray.models.astromer import AstromerClassifier, AstromerClassifierConfig

    torch.manual_seed(0)
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=get_config(size, dropout=0.0), labels=CLASSES, min_points=5))
    return model.eval().save_pretrained(folder)


def _bodies(n: int, points: tuple[int, int], seed: int) -> list[bytes]:
    """``n`` single-object request bodies (synthetic MACHO-like light curves, B and R)."""
    from astroray.data.synthetic import periodic_variables

    table = periodic_variables(n, seed=seed, n_points=points)
    return [json.dumps({"objects": [{"object_id": r["object_id"], "times": r["time"],
                                     "mags": r["mag"], "errs": r["err"],
                                     "bands": r["band"]}]}).encode()
            for r in table.to_pylist()]


def plain_app(model_dir: str, torch_threads: int, device: str = "cpu"):
    """The baseline: FastAPI calling the predictor once per request (no batching)."""
    from astroray.data.files import numpy_batch
    from fastapi import FastAPI

    from astroray.data.schema import table_from_records
    from astroray.infer.predictors import get_predictor, model_hash
    from astroray.serve.app import model_results
    from astroray.serve.schemas import LightCurveRequest

    torch.set_num_threads(torch_threads)
    predictor = get_predictor(model_dir, device=device)
    digest, name = model_hash(model_dir), Path(model_dir).name
    app = FastAPI()

    @app.post(ROUTE)
    def classify(body: LightCurveRequest) -> dict:
        records = [o.record() for o in body.objects]
        pred = predictor(numpy_batch(table_from_records(records, "lightcurve")))
        results, errors = model_results(pred.table, pred.failures, predictor.labels,
                                        [o.object_id for o in body.objects])
        return {"model": name, "model_hash": digest, "results": results, "errors": errors}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    return app


async def _load(url: str, bodies: list[bytes], concurrency: int, n_requests: int,
                time_limit: float) -> dict:
    """Send up to ``n_requests`` requests from ``concurrency`` workers within ``time_limit``."""
    import aiohttp

    latencies: list[float] = []
    statuses: list[int] = []
    transport = 0
    counter = iter(range(n_requests))
    deadline = time.perf_counter() + time_limit
    limits = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=max(30.0, time_limit))
    async with aiohttp.ClientSession(connector=limits, timeout=timeout) as session:
        async def worker() -> None:
            nonlocal transport
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=bodies[i % len(bodies)],
                                            headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        statuses.append(r.status)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    transport += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ok = [lat for lat, s in zip(latencies, statuses, strict=True) if 200 <= s < 300]
    lat = np.asarray(ok) * 1000
    return {"concurrency": concurrency, "requests": len(statuses) + transport,
            "ok": len(ok), "seconds": round(elapsed, 3),
            "throughput_rps": round(len(ok) / elapsed, 2) if elapsed else 0.0,
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
            "non_2xx": sum(1 for s in statuses if not 200 <= s < 300),
            "5xx": sum(1 for s in statuses if s >= 500), "transport_errors": transport}


def _wait_up(url: str, timeout: float = 180.0) -> None:
    import urllib.request

    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up in {timeout:.0f} s")


def _run_levels(url: str, bodies: list[bytes], args: argparse.Namespace, label: str,
                stats=None) -> list:
    asyncio.run(_load(url + ROUTE, bodies, 4, args.warmup, 60))  # first calls, lazy imports
    out = []
    for c in args.levels:
        before = stats() if stats else None
        res = asyncio.run(_load(url + ROUTE, bodies, c, args.requests, args.time_limit))
        if stats:  # requests per forward pass, over the model replicas
            after = stats()
            batches = after["batches"] - before["batches"]
            res["mean_batch"] = round((after["requests"] - before["requests"])
                                      / max(batches, 1), 2)
        print(f"{label:5s} c={c:3d}: {res['throughput_rps']:7.1f} req/s  p50 {res['p50_ms']} ms"
              f"  p99 {res['p99_ms']} ms  non-2xx {res['non_2xx']}  "
              f"({res['ok']} ok in {res['seconds']} s)"
              + (f"  requests/forward {res['mean_batch']}" if "mean_batch" in res else ""),
              flush=True)
        out.append(res)
    return out


def _plain(model_dir: Path, bodies: list[bytes], args: argparse.Namespace) -> list:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--plain-server", str(model_dir),
                             "--port", str(port), "--torch-threads", str(args.torch_threads),
                             "--device", args.device])
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_up(url)
        return _run_levels(url, bodies, args, "plain")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _ours(model_dir: Path, bodies: list[bytes], args: argparse.Namespace) -> list:
    from ray import serve

    from astroray.runtime import init_ray
    from astroray.serve import ServeConfig, run

    os.environ.pop("ASTRORAY_SERVE_TOKEN", None)
    # Replica logs stay in Ray's log files, so that the JSON summary is the last line printed.
    init_ray(num_cpus=os.cpu_count(), object_store_memory=300 * 1024**2, log_to_driver=False)
    cpus = max(0.1, (os.cpu_count() - 0.5) / args.replicas)  # the ingress takes the rest
    cfg = ServeConfig(lightcurves_classify=(str(model_dir),), min_replicas=args.replicas,
                      max_replicas=args.replicas, num_cpus=cpus,
                      ingress_num_cpus=0.25, max_batch_size=args.max_batch_size,
                      max_ongoing_requests=max(64, 2 * args.max_batch_size),
                      batch_wait_timeout_s=args.batch_wait,
                      torch_threads=args.torch_threads, device=args.device,
                      num_gpus=1.0 / args.replicas if args.device == "cuda" else 0.0,
                      port=_free_port())
    run(cfg, blocking=False)
    try:
        url = f"http://127.0.0.1:{cfg.port}"
        _wait_up(url)
        handle = serve.get_deployment_handle(app_name=cfg.app_name, deployment_name=next(
            d for d in serve.status().applications[cfg.app_name].deployments if d != "Ingress"))

        def stats() -> dict:
            # A call reaches one replica: ask until each has answered (its counts only grow).
            latest: dict = {}
            for _ in range(8 * args.replicas):
                one = handle.stats.remote().result()
                if one["requests"] >= latest.get(one["replica"], {}).get("requests", -1):
                    latest[one["replica"]] = one
            return {k: sum(v[k] for v in latest.values()) for k in ("requests", "batches")}

        return _run_levels(url, bodies, args, "ours", stats)
    finally:
        serve.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", default="1,8,32", help="levels, comma-separated")
    parser.add_argument("--requests", type=int, default=400, help="requests per level (max)")
    parser.add_argument("--time-limit", type=float, default=40.0, help="seconds per level (max)")
    parser.add_argument("--warmup", type=int, default=16, help="requests before measuring")
    parser.add_argument("--model", default="astromer-v1", help="Astromer encoder size")
    parser.add_argument("--points", default="100,200", help="points per light curve, min,max")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait", type=float, default=0.005, help="seconds")
    parser.add_argument("--replicas", type=int, default=2, help="our model replicas")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="intra-op threads of the model, in both servers")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where both servers run the model")
    parser.add_argument("--plain-server", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_server:  # the baseline's own process
        import uvicorn

        uvicorn.run(plain_app(args.plain_server, args.torch_threads, args.device),
                    host="127.0.0.1", port=args.port, log_level="warning", workers=1)
        return 0
    args.levels = [int(c) for c in args.concurrency.split(",") if c]
    lo, hi = (int(v) for v in args.points.split(","))
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        model_dir = _model(Path(tmp) / "astromer-clf", args.model)
        bodies = _bodies(256, (lo, hi), seed=7)
        t0 = time.perf_counter()
        plain = _plain(model_dir, bodies, args)
        ours = _ours(model_dir, bodies, args)
    levels = []
    for o, p in zip(ours, plain, strict=True):
        ratio = o["throughput_rps"] / p["throughput_rps"] if p["throughput_rps"] else None
        p99 = o["p99_ms"] / p["p99_ms"] if o["p99_ms"] and p["p99_ms"] else None
        levels.append({"concurrency": o["concurrency"], "ours": o, "plain": p,
                       "throughput_ratio": None if ratio is None else round(ratio, 2),
                       "p99_ratio": None if p99 is None else round(p99, 2)})
        print(f"c={o['concurrency']:3d}: throughput ours/plain {ratio or float('nan'):.2f}x, "
              f"p99 ours/plain {p99 or float('nan'):.2f}x", flush=True)
    top = levels[-1]
    summary = {
        "benchmark": "serve_load", "model": f"{args.model} classifier (random weights)",
        "points_per_object": [lo, hi], "objects_per_request": 1, "cpus": os.cpu_count(),
        "max_batch_size": args.max_batch_size, "batch_wait_timeout_s": args.batch_wait,
        "torch_threads": args.torch_threads, "replicas": args.replicas, "device": args.device,
        "requests_per_level": args.requests, "time_limit_s": args.time_limit,
        "levels": levels, "top_concurrency": top["concurrency"],
        "throughput_ratio_at_top": top["throughput_ratio"], "p99_ratio_at_top": top["p99_ratio"],
        "non_2xx_total": sum(lv[k]["non_2xx"] for lv in levels for k in ("ours", "plain")),
        "5xx_ours": sum(lv["ours"]["5xx"] for lv in levels),
        "goal_met": bool(top["throughput_ratio"] and top["throughput_ratio"] >= 1.5
                         and top["p99_ratio"] is not None and top["p99_ratio"] <= 2.0
                         and all(lv["ours"]["5xx"] == 0 for lv in levels)),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
