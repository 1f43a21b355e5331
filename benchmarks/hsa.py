"""Hierarchical stochastic attention: the Gumbel noise of its weights, in place vs ``exponential_``.

An HSA pass (the authors' form, :class:`astroray.models.layers.HierarchicalStochasticAttention`)
draws one standard Gumbel value per attention weight, a (B, H, T, T) tensor: the largest of the
pass. ``F.gumbel_softmax`` draws it as ``-log`` of an ``exponential_`` sample; astroray draws
``-log(-log(u))`` of a uniform ``u``, in place (the same distribution). In one process, on the
same inputs, it times

* ``baseline``: an HSA layer whose noise is ``-torch.empty(shape).exponential_().log()``;
* ``ours``: the layer as shipped;

and, for the whole model, Monte Carlo passes of a tiny HSA Astromer classifier encoder with
each. It prints seconds and the speed-ups; the last line is one JSON object with every figure.

    python benchmarks/hsa.py                     # B 64, H 4, T 200, 20 repeats
    python benchmarks/hsa.py --batch 256 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from astroray.models import create_model
from astroray.models.layers import HierarchicalStochasticAttention
from astroray.models.layers import hsa as hsa_module


def _exponential_noise(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The baseline: ``F.gumbel_softmax``'s way of drawing standard Gumbel noise."""
    return -torch.empty(shape, device=device).exponential_().log()


def _best_of(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _both(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Seconds of ``fn`` with the baseline noise, then with ours (best of ``repeats``)."""
    shipped = hsa_module._gumbel_noise
    try:
        hsa_module._gumbel_noise = _exponential_noise
        baseline = _best_of(fn, repeats)
    finally:
        hsa_module._gumbel_noise = shipped
    ours = _best_of(fn, repeats)
    return {"baseline_s": round(baseline, 5), "ours_s": round(ours, 5),
            "speedup": round(baseline / ours, 3)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; prints a table and, last, one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="windows per pass")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--length", type=int, default=200, help="window length T")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, h, t, d = args.batch, args.heads, args.length, 16
    layer = HierarchicalStochasticAttention(h, d, 16).eval()
    q, k, v = (torch.randn(b, h, t, d) for _ in range(3))
    mask = torch.ones(b, 1, 1, t, dtype=torch.bool)
    mask[:, ..., t // 2:] = torch.rand(b, 1, 1, t - t // 2) > 0.3

    def layer_pass() -> None:
        with torch.no_grad():
            layer(q, k, v, mask)

    model = create_model("astromer-tiny", attention="hsa", hsa_centroids=16).eval()
    times = torch.sort(torch.rand(b, t) * 1000.0, dim=1).values
    values, valid = torch.randn(b, t), torch.ones(b, t)

    def model_pass() -> None:
        with torch.no_grad():
            model(times, values, valid)

    figures = {"layer": _both(layer_pass, args.repeats),
               "astromer_tiny_hsa": _both(model_pass, max(1, args.repeats // 2))}
    print(f"HSA Gumbel noise, B {b} H {h} T {t}, {args.threads} thread(s)")
    for name, f in figures.items():
        print(f"  {name:18s} exponential_ {f['baseline_s']:.4f} s  in place {f['ours_s']:.4f} s"
              f"  speed-up x{f['speedup']:.2f}")
    result = {"benchmark": "hsa_gumbel_noise", "batch": b, "heads": h, "length": t,
              "threads": args.threads, "torch": torch.__version__,
              "machine": platform.machine(), **figures}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
