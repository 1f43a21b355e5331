"""Rendering throughput: matplotlib (the papers' way, one figure at a time) vs astroray.render.

Renders the same batches both ways in one run and prints images per second for each and their
ratios, for

* spectra: SDSS-length (~3,800 pixels; the real SDSS sample, jittered, when
  ../shared/data/real is present), 224 x 224, 1 channel;
* light curves: 2 bands x ~200 points, 256 x 256 x 3, overlay.

Two matplotlib baselines, both one figure per image in this single process (per core):

* ``canvas``: the reference functions of the fidelity tests (a bare ``Figure`` on an Agg
  canvas, pixels read back as an array): the cheapest way matplotlib can draw these plots;
* ``savefig``: what the papers' data preparation does, ``plt.figure`` ... ``plt.savefig`` to a
  PNG (here in memory) and ``plt.close``.

Ours runs with ``torch.set_num_threads(1)`` on CPU (``--threads`` to change) and returns
uint8 tensors. With ``--device cuda`` ours renders tensors already on the GPU (as inside a
model actor) and matplotlib stays the per-core CPU baseline. Each rate is the best of
``--rounds`` timed rounds, so that other processes on the machine disturb it less. The last
line of the output is one JSON object with every figure.

    python benchmarks/render.py                   # CPU, per core
    python benchmarks/render.py --device cuda --spectra 131072 --chunk 16384 \
        --light-curves 8192 --lc-chunk 1024
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "render"))  # the matplotlib reference functions

from astroray.render import (  # noqa: E402
    LightCurveRenderConfig,
    SpectrumRenderConfig,
    render_light_curves,
    render_spectra,
)

REAL = ROOT.parent / "shared" / "data" / "real"


def spectra_batch(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """(n, N) wavelengths and fluxes: the SDSS sample with noise, else synthetic."""
    path = REAL / "sdss" / "spec-0522-52024-0396.fits"
    if path.exists():
        from astropy.io import fits

        with fits.open(path) as hdul:
            d = hdul[1].data
            wave = (10.0 ** d["loglam"].astype(np.float64)).astype(np.float32)
            flux = d["flux"].astype(np.float32)
        source = "sdss"
    else:
        wave = np.geomspace(3800, 9200, 3838).astype(np.float32)
        flux = (5 + np.sin(wave / 200)).astype(np.float32)
        source = "synthetic"
    scale = rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32)
    noise = rng.normal(0, 0.5, (n, wave.size)).astype(np.float32)
    return np.tile(wave, (n, 1)), flux[None] * scale + noise, source


def light_curve_batch(n: int, rng: np.random.Generator, points: int = 200):
    """(n, 2*points) times, magnitudes, errors and band indices (2 bands)."""
    t = np.sort(rng.uniform(48800, 51500, (n, 2 * points)), 1)
    band = rng.integers(0, 2, (n, 2 * points))
    period = rng.uniform(0.3, 30, (n, 1))
    v = (15 + 0.3 * np.sin(2 * np.pi * t / period) + 0.5 * band
         + rng.normal(0, 0.05, t.shape))
    e = np.abs(rng.normal(0.05, 0.02, t.shape))
    return t, v, e, band


def best_rate(fn, images: int, seconds: float, rounds: int, sync=lambda: None) -> float:
    """Images per second of ``fn`` (which renders ``images``), the best of ``rounds`` rounds.

    Each round calls ``fn`` until ``seconds / rounds`` have passed (at least once).
    """
    fn()
    sync()
    best = 0.0
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / rounds:
                break
        best = max(best, calls * images / elapsed)
    return best


def _savefig_spectrum(wave: np.ndarray, flux: np.ndarray) -> bytes:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2.24, 2.24), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.plot(wave, flux, color="black", linewidth=0.5)
    ax.set_xlim(3536.7, 10413.6)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _savefig_light_curve(per_band, layout: str) -> bytes:
    import matplotlib.pyplot as plt

    t_all = np.concatenate([b[0] for b in per_band])
    v_all = np.concatenate([b[1] for b in per_band])
    t0, t_span = t_all.min(), np.ptp(t_all)
    v0, v_span = v_all.min(), np.ptp(v_all)
    fig = plt.figure(figsize=(2.56, 2.56), dpi=100)
    if layout == "overlay":
        axes = [fig.add_axes((0, 0, 1, 1))] * len(per_band)
    else:
        gs = fig.add_gridspec(len(per_band), 1, left=0, right=1, bottom=0, top=1, hspace=0)
        axes = [fig.add_subplot(gs[i, 0]) for i in range(len(per_band))]
    for i, (t, v, e) in enumerate(per_band):
        axes[i].errorbar((t - t0) / t_span, (v - v0) / v_span, yerr=e / v_span, fmt="-o",
                         color=f"C{i}", alpha=0.5)
    for ax in set(axes):
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(1.05, -0.05)
        ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _matplotlib_rates(draw_canvas, draw_savefig, count: int, rounds: int) -> dict[str, float]:
    rates = {}
    for name, draw in (("canvas", draw_canvas), ("savefig", draw_savefig)):
        draw(0)
        best = 0.0
        for _ in range(rounds):
            start = time.perf_counter()
            for i in range(count):
                draw(i)
            best = max(best, count / (time.perf_counter() - start))
        rates[name] = best
    return rates


def _summary(rates: dict[str, float], ours: float) -> dict:
    return {"matplotlib_canvas_per_s": round(rates["canvas"], 1),
            "matplotlib_savefig_per_s": round(rates["savefig"], 1),
            "ours_per_s": round(ours, 1),
            "ratio_vs_canvas": round(ours / rates["canvas"], 1),
            "ratio_vs_savefig": round(ours / rates["savefig"], 1)}


def bench_spectra(args, rng, device) -> dict:
    from _mpl_reference import spectrum_image

    wave, flux, source = spectra_batch(args.spectra, rng)
    cfg = SpectrumRenderConfig(channels=1, chunk_size=args.chunk)
    n_mpl = min(args.mpl, len(wave))
    rates = _matplotlib_rates(lambda i: spectrum_image(wave[i], flux[i]),
                              lambda i: _savefig_spectrum(wave[i], flux[i]), n_mpl, args.rounds)
    w = torch.from_numpy(wave).to(device)
    f = torch.from_numpy(flux).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    ours = best_rate(lambda: render_spectra(w, f, config=cfg), len(wave), args.seconds,
                     args.rounds, sync)
    return {"pixels": int(wave.shape[1]), "size": [cfg.height, cfg.width, 1], "source": source,
            "batch": len(wave), "matplotlib_images": n_mpl, **_summary(rates, ours)}


def bench_light_curves(args, rng, device) -> dict:
    from _mpl_reference import light_curve_image

    t, v, e, band = light_curve_batch(args.light_curves, rng)
    cfg = LightCurveRenderConfig(bands=("B", "R"), layout=args.layout, chunk_size=args.lc_chunk)
    n_mpl = min(args.mpl, len(t))
    per_band = [[(t[i][band[i] == b], v[i][band[i] == b], e[i][band[i] == b]) for b in (0, 1)]
                for i in range(n_mpl)]
    rates = _matplotlib_rates(
        lambda i: light_curve_image(per_band[i], magnitude=True, layout=args.layout),
        lambda i: _savefig_light_curve(per_band[i], args.layout), n_mpl, args.rounds)
    T, V, E, Bd = (torch.from_numpy(a).to(device) for a in (t, v, e, band))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    ours = best_rate(lambda: render_light_curves(T, V, E, Bd, config=cfg), len(t),
                     args.seconds, args.rounds, sync)
    return {"points_per_band": t.shape[1] // 2, "bands": 2, "layout": args.layout,
            "size": [cfg.height, cfg.width, 3], "batch": len(t), "matplotlib_images": n_mpl,
            **_summary(rates, ours)}


def _print(name: str, r: dict) -> None:
    size = "x".join(str(v) for v in r["size"])
    print(f"{name:12s} {size:>11s}  matplotlib canvas {r['matplotlib_canvas_per_s']:7.1f}/s, "
          f"savefig {r['matplotlib_savefig_per_s']:7.1f}/s   ours {r['ours_per_s']:11.1f}/s   "
          f"ratio {r['ratio_vs_canvas']:7.1f}x (canvas), {r['ratio_vs_savefig']:7.1f}x (savefig)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (per core: 1)")
    parser.add_argument("--spectra", type=int, default=512, help="spectra per batch")
    parser.add_argument("--light-curves", type=int, default=128, help="light curves per batch")
    parser.add_argument("--chunk", type=int, default=None, help="spectra rendered at once")
    parser.add_argument("--lc-chunk", type=int, default=None, help="light curves at once")
    parser.add_argument("--layout", default="overlay", choices=("overlay", "grid"))
    parser.add_argument("--mpl", type=int, default=40, help="images per matplotlib round")
    parser.add_argument("--seconds", type=float, default=4.0, help="time for ours (all rounds)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the best counts")
    parser.add_argument("--only", choices=("spectra", "light_curves"), default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available")
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    result: dict = {"device": str(device), "torch_threads": args.threads,
                    "torch": torch.__version__, "python": platform.python_version(),
                    "machine": platform.processor() or platform.machine()}
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    with torch.inference_mode():
        if args.only in (None, "spectra"):
            result["spectra"] = s = bench_spectra(args, rng, device)
            _print("spectra", s)
        if args.only in (None, "light_curves"):
            result["light_curves"] = c = bench_light_curves(args, rng, device)
            _print("light curves", c)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
