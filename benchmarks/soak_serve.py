"""Serve soak: mixed good and hostile traffic for a fixed time; nothing lost, nothing twice.

The astroray Serve app (one Astromer classifier, a bearer token) runs on 127.0.0.1 on a local
Ray; ``--concurrency`` asyncio clients send requests for ``--seconds``: good ones (1 to 4 light
curves with fresh ids) and bad ones (wrong or missing token, values beyond float32, sentinel
magnitudes, strings for numbers, unequal lengths, repeated ids, broken JSON, a 1 MB invalid
body) in the ratio ``--bad-fraction``. Every good request must come back 200 with each of its
ids exactly once (in ``results`` or ``errors``); every bad one must get its 4xx. The baseline
measured in the same run is the good traffic alone at the same concurrency (p99 ratio: what
the hostile traffic costs the good clients).

Printed: requests, answers by status, lost ids (a good request's id missing from its answer,
or the request failing in transport), duplicated ids, 5xx, bad requests answered 2xx, and
p50 / p99 latency of good requests. All but the latencies must be 0; the last line is one
JSON object with every figure.

    python benchmarks/soak_serve.py                       # 60 s at concurrency 16
    python benchmarks/soak_serve.py --seconds 20 --concurrency 8
"""

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import _free_port, _model, _wait_up  # noqa: E402 - the sibling benchmark

ROUTE = "/v1/lightcurves/classify"
TOKEN = "soak-token"


def _good_object(rng: random.Random, oid: str) -> dict:
    n = rng.randint(20, 120)
    times = sorted(rng.uniform(48800, 51500) for _ in range(n))
    return {"object_id": oid, "times": times,
            "mags": [rng.gauss(17.0, 0.3) for _ in range(n)],
            "errs": [abs(rng.gauss(0.05, 0.01)) for _ in range(n)],
            "bands": [rng.choice("BR") for _ in range(n)]}


def _bad_request(rng: random.Random, kind: str) -> tuple[bytes, dict[str, str]]:
    """A hostile body and headers of the given kind."""
    good = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    obj = _good_object(rng, "bad")
    if kind == "no_token":
        return json.dumps({"objects": [obj]}).encode(), {"Content-Type": "application/json"}
    if kind == "wrong_token":
        return b"{broken", {**good, "Authorization": "Bearer nope"}
    if kind == "float32":
        obj["times"][0] = 1e39
    elif kind == "sentinel":
        obj["mags"][0] = 99.999
    elif kind == "string_number":
        obj["mags"][0] = "17.1"
    elif kind == "bool_number":
        obj["times"][0] = True
    elif kind == "unequal":
        obj["errs"] = obj["errs"][:3]
    elif kind == "repeated":
        return json.dumps({"objects": [obj, obj]}).encode(), good
    elif kind == "broken_json":
        return b'{"objects": [', good
    elif kind == "huge":
        big = {**obj, "times": ["x"] * 20_000, "mags": ["y"] * 20_000,
               "errs": [0.1] * 20_000, "bands": ["B"] * 20_000}
        return json.dumps({"objects": [big, {**big, "object_id": "bad2"}]}).encode(), good
    return json.dumps({"objects": [obj]}).encode(), good


BAD_KINDS = ("no_token", "wrong_token", "float32", "sentinel", "string_number",
             "bool_number", "unequal", "repeated", "broken_json", "huge")


async def _soak(url: str, seconds: float, concurrency: int, bad_fraction: float,
                seed: int) -> dict:
    import aiohttp

    stats = {"requests": 0, "good": 0, "bad": 0, "lost": 0, "duplicated": 0, "5xx": 0,
             "bad_answered_2xx": 0, "good_not_200": 0, "transport_errors": 0,
             "by_status": {}}
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     timeout=timeout) as session:
        async def worker(w: int) -> None:
            rng = random.Random(seed * 1000 + w)
            while time.perf_counter() < deadline:
                i = next(counter)
                bad = rng.random() < bad_fraction
                if bad:
                    body, headers = _bad_request(rng, rng.choice(BAD_KINDS))
                    ids: list[str] = []
                else:
                    ids = [f"w{w}-r{i}-{k}" for k in range(rng.randint(1, 4))]
                    body = json.dumps({"objects": [_good_object(rng, o) for o in ids]}).encode()
                    headers = {"Authorization": f"Bearer {TOKEN}",
                               "Content-Type": "application/json"}
                stats["requests"] += 1
                stats["bad" if bad else "good"] += 1
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        raw = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    stats["transport_errors"] += 1
                    stats["lost"] += len(ids)
                    continue
                stats["by_status"][str(status)] = stats["by_status"].get(str(status), 0) + 1
                if status >= 500:
                    stats["5xx"] += 1
                if bad:
                    stats["bad_answered_2xx"] += int(200 <= status < 300)
                    continue
                if status != 200:
                    stats["good_not_200"] += 1
                    stats["lost"] += len(ids)
                    continue
                latencies.append(time.perf_counter() - t0)
                answer = json.loads(raw)
                seen = [r["object_id"] for r in answer["results"] + answer["errors"]]
                stats["lost"] += len(set(ids) - set(seen))
                stats["duplicated"] += len(seen) - len(set(seen))

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    lat = np.asarray(latencies) * 1000
    stats["p50_ms"] = round(float(np.percentile(lat, 50)), 1) if lat.size else None
    stats["p99_ms"] = round(float(np.percentile(lat, 99)), 1) if lat.size else None
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="soak time (60)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients (16)")
    parser.add_argument("--bad-fraction", type=float, default=0.5,
                        help="share of hostile requests (0.5)")
    parser.add_argument("--model", default="astromer-tiny",
                        help="encoder size of the served classifier (astromer-tiny)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from ray import serve

    from astroray.runtime import init_ray
    from astroray.serve import ServeConfig, run

    init_ray(num_cpus=os.cpu_count(), object_store_memory=300 * 1024**2)
    with tempfile.TemporaryDirectory() as tmp:
        model = _model(Path(tmp) / "clf", args.model)
        (Path(tmp) / "token").write_text(TOKEN)
        cfg = ServeConfig(lightcurves_classify=(str(model),), min_replicas=1, max_replicas=1,
                          num_cpus=0.5, ingress_num_cpus=0.25, port=_free_port(),
                          token_file=str(Path(tmp) / "token"), torch_threads=1)
        run(cfg, blocking=False)
        url = f"http://127.0.0.1:{cfg.port}"
        _wait_up(url)
        try:
            base = asyncio.run(_soak(url + ROUTE, min(args.seconds / 3, 20.0),
                                     args.concurrency, 0.0, args.seed + 1))
            mixed = asyncio.run(_soak(url + ROUTE, args.seconds, args.concurrency,
                                      args.bad_fraction, args.seed))
        finally:
            serve.shutdown()
    ok = all(mixed[k] == 0 for k in ("lost", "duplicated", "5xx", "bad_answered_2xx",
                                     "good_not_200", "transport_errors"))
    print(f"soak {args.seconds:.0f} s at concurrency {args.concurrency}: {mixed['requests']} "
          f"requests ({mixed['good']} good, {mixed['bad']} hostile); statuses "
          f"{mixed['by_status']}; lost {mixed['lost']}, duplicated {mixed['duplicated']}, "
          f"5xx {mixed['5xx']}; good p50 {mixed['p50_ms']} ms, p99 {mixed['p99_ms']} ms "
          f"(good traffic alone: p99 {base['p99_ms']} ms)")
    ratio = (mixed["p99_ms"] / base["p99_ms"]) if mixed["p99_ms"] and base["p99_ms"] else None
    print(json.dumps({"benchmark": "soak_serve", "seconds": args.seconds,
                      "concurrency": args.concurrency, "bad_fraction": args.bad_fraction,
                      **{k: v for k, v in mixed.items()},
                      "baseline_good_only": {k: base[k] for k in ("requests", "p50_ms",
                                                                  "p99_ms", "lost", "5xx")},
                      "p99_ratio_vs_good_only": None if ratio is None else round(ratio, 3),
                      "all_zero": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
