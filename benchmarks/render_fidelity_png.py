"""Side-by-side PNGs (matplotlib | astroray.render) of real objects, for looking at fidelity.

Writes ``docs/render/<name>.png``: the papers' matplotlib figure on the left, ours on the
right (each enlarged 2x, nearest neighbour, a grey bar between them), and prints the ink IoU
(after a 1-pixel dilation) of each pair. Needs matplotlib and ../shared/data/real.

    python benchmarks/render_fidelity_png.py [--out docs/render] [--scale 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "render"))

import _samples as samples  # noqa: E402
from _mpl_reference import light_curve_image, spectrum_image, split_spectrum_image  # noqa: E402

from astroray.render import (  # noqa: E402
    LightCurveRenderConfig,
    SpectrumRenderConfig,
    render_light_curves,
    render_spectra,
    write_png,
)


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image


def side_by_side(ref: np.ndarray, ours: np.ndarray, scale: int) -> np.ndarray:
    """``ref | ours``, enlarged ``scale`` times, with a grey separator."""
    a, b = _rgb(ref), _rgb(ours)
    bar = np.full((a.shape[0], 2, 3), 128, np.uint8)
    out = np.concatenate([a, bar, b], 1)
    return out.repeat(scale, 0).repeat(scale, 1)


def spectra_pairs():
    """(name, matplotlib, ours) for the SDSS and LAMOST samples, single and overlap split."""
    specs = [("sdss_spec-0522-52024-0396", samples.sdss_spectrum())]
    specs += [(f"lamost_{p.name.split('.')[0]}", samples.lamost_spectrum(p))
              for p in samples.lamost_paths()]
    single = SpectrumRenderConfig(channels=1)
    split = SpectrumRenderConfig(layout="overlap_split")
    for name, s in specs:
        good = np.isfinite(s["flux"]) & (s["ivar"] > 0) & (s["mask"] == 0)
        args = ([s["wavelength"]], [s["flux"]], [s["ivar"]], [s["mask"]])
        ref = spectrum_image(s["wavelength"], s["flux"], good)
        ours = render_spectra(*args, config=single)[0, 0].numpy()
        yield f"spectrum_{name}", ref, ours
        ref3 = split_spectrum_image(s["wavelength"], s["flux"], good, split.segments())
        ours3 = render_spectra(*args, config=split)[0].permute(1, 2, 0).numpy()
        yield f"spectrum_{name}_overlap_split", ref3, ours3


def light_curve_pairs():
    """(name, matplotlib, ours) for MACHO, RR Lyrae and ELAsTiCC, overlay and grid."""
    curves = [("macho_1.3444.614", samples.macho(), ("B", "R"), True)]
    curves += [(f"rrlyrae_{p.stem}", samples.rrlyrae(p), tuple("ugriz"), True)
               for p in samples.rrlyrae_paths(1)]
    curves += [(f"elasticc_{k}", lc, tuple("ugrizY"), False)
               for k, lc in list(samples.elasticc(2).items())]
    for name, lc, bands, mag in curves:
        t, v, e, b = samples.flatten(lc, bands)
        for layout in ("overlay", "grid"):
            cfg = LightCurveRenderConfig(bands=bands, layout=layout)
            ref = light_curve_image([lc.get(x) for x in bands], magnitude=mag, layout=layout)
            ours = render_light_curves([t], [v], [e], [b], magnitude=mag, config=cfg)
            yield f"lightcurve_{name}_{layout}", ref, ours[0].permute(1, 2, 0).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "render"))
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    if not samples.REAL.is_dir():
        raise SystemExit(f"real samples not found at {samples.REAL}")
    out = Path(args.out)
    results = {}
    for name, ref, ours in [*spectra_pairs(), *light_curve_pairs()]:
        iou = samples.ink_iou(ref, ours)
        results[name] = round(iou, 4)
        write_png(out / f"{name}.png", side_by_side(ref, ours, args.scale))
        print(f"{name:55s} ink IoU {iou:.3f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
