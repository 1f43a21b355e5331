"""Spectra rendering: fidelity to the paper's matplotlib plot, and the renderer's contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _mpl_reference import spectrum_image, split_spectrum_image
from _samples import (
    ink_iou,
    ink_mask,
    lamost_paths,
    lamost_spectrum,
    sdss_spectrum,
    synthetic_spectrum,
)

from astroray.config import ConfigError
from astroray.render import RenderSpectra, SpectrumRenderConfig, render_spectra

#: Grey levels by which the mean ink of ours and matplotlib's may differ.
INK_TOLERANCE = 15.0
MIN_IOU = 0.9


def _good(s: dict[str, np.ndarray]) -> np.ndarray:
    return np.isfinite(s["flux"]) & (s["ivar"] > 0) & (s["mask"] == 0)


def _ours(s: dict[str, np.ndarray], cfg: SpectrumRenderConfig) -> np.ndarray:
    img = render_spectra([s["wavelength"]], [s["flux"]], [s["ivar"]], [s["mask"]], config=cfg)
    return img[0].permute(1, 2, 0).numpy()


def _assert_faithful(ref: np.ndarray, ours: np.ndarray, what: str) -> None:
    iou = ink_iou(ref, ours)
    assert iou >= MIN_IOU, f"{what}: ink IoU {iou:.3f} < {MIN_IOU}"
    ref_ink, our_ink = ref[ink_mask(ref)], ours[ink_mask(ours)]
    assert len(ref_ink) and len(our_ink), f"{what}: no ink"
    delta = abs(float(ref_ink.mean()) - float(our_ink.mean()))
    assert delta <= INK_TOLERANCE, f"{what}: mean ink {ref_ink.mean():.1f} vs {our_ink.mean():.1f}"


def _check_single(s: dict[str, np.ndarray], what: str, **size) -> None:
    cfg = SpectrumRenderConfig(channels=1, **size)
    ref = spectrum_image(s["wavelength"], s["flux"], _good(s), width=cfg.width,
                         height=cfg.height)
    _assert_faithful(ref, _ours(s, cfg)[..., 0], what)


def _check_split(s: dict[str, np.ndarray], what: str) -> None:
    cfg = SpectrumRenderConfig(layout="overlap_split")
    ref = split_spectrum_image(s["wavelength"], s["flux"], _good(s), cfg.segments())
    ours = _ours(s, cfg)
    for c in range(3):
        _assert_faithful(ref[..., c], ours[..., c], f"{what} channel {c}")


# ---------------------------------------------------------------------------------------------
# Fidelity
# ---------------------------------------------------------------------------------------------


def test_sdss_matches_matplotlib(real_dir):
    s = sdss_spectrum(real_dir / "sdss" / "spec-0522-52024-0396.fits")
    _check_single(s, "SDSS")
    _check_split(s, "SDSS split")


def test_lamost_matches_matplotlib(real_dir):
    paths = lamost_paths()
    assert paths, "no LAMOST samples"
    for path in paths:
        s = lamost_spectrum(path)
        _check_single(s, path.name)
        _check_split(s, f"{path.name} split")


@pytest.mark.parametrize("seed", range(4))
def test_synthetic_matches_matplotlib(seed):
    rng = np.random.default_rng(seed)
    n = [3800, 600, 4600, 150][seed]
    s = synthetic_spectrum(rng, n=n, masked=seed % 2 == 1)
    _check_single(s, f"synthetic {seed}")
    if seed < 2:
        _check_split(s, f"synthetic {seed} split")


def test_other_sizes_match_matplotlib():
    s = synthetic_spectrum(np.random.default_rng(7))
    _check_single(s, "128x96", width=128, height=96)
    _check_single(s, "300x160", width=300, height=160)


def test_fixed_y_limits_match_matplotlib():
    s = synthetic_spectrum(np.random.default_rng(8))
    cfg = SpectrumRenderConfig(channels=1, y_limits=(4.0, 9.0))
    ref = spectrum_image(s["wavelength"], s["flux"], _good(s), y_limits=(4.0, 9.0))
    _assert_faithful(ref, _ours(s, cfg)[..., 0], "fixed y limits")


# ---------------------------------------------------------------------------------------------
# Contract
# ---------------------------------------------------------------------------------------------


def _batch(n: int = 5, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [synthetic_spectrum(rng, n=int(rng.integers(100, 4000)), masked=i % 2 == 0)
            for i in range(n)]


def _lists(specs):
    return ([s["wavelength"] for s in specs], [s["flux"] for s in specs],
            [s["ivar"] for s in specs], [s["mask"] for s in specs])


def test_shapes_dtype_and_channels():
    specs = _batch(3)
    img3 = render_spectra(*_lists(specs))
    assert img3.shape == (3, 3, 224, 224) and img3.dtype == torch.uint8
    assert torch.equal(img3[:, 0], img3[:, 1]) and torch.equal(img3[:, 0], img3[:, 2])
    img1 = render_spectra(*_lists(specs), config=SpectrumRenderConfig(channels=1, width=100,
                                                                      height=50))
    assert img1.shape == (3, 1, 50, 100)
    assert render_spectra([], []).shape == (0, 3, 224, 224)


def test_deterministic_and_batch_invariant():
    specs = _batch(6)
    cfg = SpectrumRenderConfig(channels=1, chunk_size=4)
    a = render_spectra(*_lists(specs), config=cfg)
    b = render_spectra(*_lists(specs), config=cfg)
    assert torch.equal(a, b)
    for i in (0, 3, 5):
        single = render_spectra(*_lists(specs[i : i + 1]), config=cfg)
        assert torch.equal(single[0], a[i]), f"object {i} depends on its batch"


def test_float32_and_float64_inputs_agree():
    specs = _batch(3, seed=1)
    w32 = [s["wavelength"].astype(np.float32) for s in specs]
    f32 = [s["flux"].astype(np.float32) for s in specs]
    a = render_spectra(w32, f32)
    b = render_spectra([w.astype(np.float64) for w in w32], [f.astype(np.float64) for f in f32])
    assert torch.equal(a, b)
    # padded tensors of either precision
    n = max(len(w) for w in w32)
    wp = torch.full((3, n), math.inf, dtype=torch.float64)
    fp = torch.full((3, n), math.nan, dtype=torch.float64)
    for i, (w, f) in enumerate(zip(w32, f32, strict=True)):
        wp[i, : len(w)] = torch.from_numpy(w.astype(np.float64))
        fp[i, : len(f)] = torch.from_numpy(f.astype(np.float64))
    assert torch.equal(render_spectra(wp, fp), a)
    assert torch.equal(render_spectra(wp.float(), fp.float()), a)


def test_padded_tensors_equal_lists():
    specs = _batch(4, seed=2)
    w, f, iv, mk = _lists(specs)
    ref = render_spectra(w, f, iv, mk)
    lengths = torch.tensor([len(x) for x in w])
    n = int(lengths.max())
    pad = {"w": torch.zeros(4, n), "f": torch.zeros(4, n), "iv": torch.zeros(4, n),
           "mk": torch.zeros(4, n, dtype=torch.int32)}
    for i in range(4):
        k = len(w[i])
        pad["w"][i, :k] = torch.from_numpy(w[i])
        pad["w"][i, k:] = 1e9  # garbage past the length must not matter
        pad["f"][i, :k] = torch.from_numpy(f[i])
        pad["f"][i, k:] = 123.0
        pad["iv"][i, :k] = torch.from_numpy(iv[i])
        pad["mk"][i, :k] = torch.from_numpy(mk[i])
    out = render_spectra(pad["w"], pad["f"], pad["iv"], pad["mk"], lengths=lengths)
    assert torch.equal(out, ref)


def _flat_spectrum(n: int = 2000) -> dict[str, np.ndarray]:
    w = np.linspace(3700, 10200, n).astype(np.float32)
    flux = (5 + np.sin(w / 300)).astype(np.float32)
    return {"wavelength": w, "flux": flux, "ivar": np.ones(n, np.float32),
            "mask": np.zeros(n, np.int32)}


def _columns_with_ink(img: torch.Tensor) -> np.ndarray:
    return (img[0, 0] < 255).any(0).numpy()


@pytest.mark.parametrize("how", ["mask", "ivar", "nan"])
def test_bad_pixels_make_gaps(how):
    s = _flat_spectrum()
    bad = (s["wavelength"] > 6000) & (s["wavelength"] < 6500)
    if how == "mask":
        s["mask"][bad] = 4
    elif how == "ivar":
        s["ivar"][bad] = 0
    else:
        s["flux"][bad] = np.nan
    cfg = SpectrumRenderConfig(channels=1)
    img = render_spectra([s["wavelength"]], [s["flux"]], [s["ivar"]], [s["mask"]], config=cfg)
    cols = _columns_with_ink(img)
    x = lambda lam: int((lam - cfg.x_range[0]) / (cfg.x_range[1] - cfg.x_range[0]) * 224)  # noqa: E731
    assert not cols[x(6000) + 2 : x(6500) - 1].any(), "masked pixels were drawn"
    assert cols[x(4000) : x(5900)].all() and cols[x(6600) : x(10000)].all()
    # and matplotlib agrees
    ref = spectrum_image(s["wavelength"], s["flux"], _good(s) & np.isfinite(s["flux"]))
    assert ink_iou(ref, img[0, 0].numpy()) >= MIN_IOU


def test_nan_and_degenerate_inputs():
    w = np.linspace(4000, 9000, 50).astype(np.float32)
    all_nan = np.full(50, np.nan, np.float32)
    flat = np.full(50, 3.0, np.float32)
    one_good = all_nan.copy()
    one_good[10] = 1.0
    nan_wave = w.copy()
    nan_wave[20:25] = np.nan
    out = render_spectra([w, w, w, nan_wave], [all_nan, flat, one_good, flat + w / 1e4],
                         config=SpectrumRenderConfig(channels=1))
    assert (out[0] == 255).all(), "an all-NaN spectrum must render blank"
    rows = np.nonzero((out[1, 0] < 200).any(1).numpy())[0]
    assert rows.size and abs(rows.mean() - 111.5) <= 1.5, "a flat spectrum is centred"
    assert (out[2] == 255).all(), "a lone good pixel draws nothing (as in matplotlib)"
    assert (out[3] < 255).any()


def test_normalisation_and_limits():
    s = synthetic_spectrum(np.random.default_rng(3))
    args = ([s["wavelength"]], [s["flux"]])
    base = render_spectra(*args, config=SpectrumRenderConfig(channels=1))
    for how in ("median", "minmax"):
        # autoscaled limits make the picture independent of an affine flux scaling
        img = render_spectra(*args, config=SpectrumRenderConfig(channels=1, normalize=how))
        assert ink_iou(base[0, 0].numpy(), img[0, 0].numpy()) > 0.97
    fixed = render_spectra(*args, config=SpectrumRenderConfig(channels=1, normalize="minmax",
                                                              y_limits=(-0.05, 1.05)))
    assert ink_iou(base[0, 0].numpy(), fixed[0, 0].numpy()) > 0.97
    clipped = render_spectra(*args, config=SpectrumRenderConfig(channels=1, y_limits=(0, 1)))
    assert ink_iou(base[0, 0].numpy(), clipped[0, 0].numpy()) < 0.5


def test_overlap_split_segments():
    cfg = SpectrumRenderConfig(layout="overlap_split", overlap=0.1)
    segs = cfg.segments()
    assert len(segs) == 3 and segs[0][0] == cfg.x_range[0] and segs[2][1] == cfg.x_range[1]
    assert segs[0][1] > segs[1][0] and segs[1][1] > segs[2][0]  # they overlap
    s = synthetic_spectrum(np.random.default_rng(4))
    img = render_spectra([s["wavelength"]], [s["flux"]], config=cfg)
    assert img.shape == (1, 3, 224, 224)
    assert not torch.equal(img[0, 0], img[0, 1])


def test_config_validation_names_field_and_value():
    with pytest.raises(ConfigError, match=r"width = -3"):
        SpectrumRenderConfig(width=-3)
    with pytest.raises(ConfigError, match=r"normalize = 'zscore'"):
        SpectrumRenderConfig(normalize="zscore")
    with pytest.raises(ConfigError, match=r"channels = 1"):
        SpectrumRenderConfig(layout="overlap_split", channels=1)
    with pytest.raises(ConfigError, match=r"x_range"):
        SpectrumRenderConfig(x_range=(5000.0, 4000.0))
    cfg = SpectrumRenderConfig(x_range=[3000, 9000])
    assert SpectrumRenderConfig.from_dict(cfg.to_dict()) == cfg


def test_stage_on_numpy_batch():
    specs = _batch(3, seed=5)
    w, f, iv, mk = _lists(specs)
    obj = lambda xs: np.array(xs + [None], dtype=object)[:-1]  # noqa: E731  ragged object column
    batch = {"object_id": np.array(["a", "b", "c"]), "wavelength": obj(w), "flux": obj(f),
             "ivar": obj(iv), "mask": obj(mk)}
    out = RenderSpectra({"channels": 1})(batch)
    assert out["image"].shape == (3, 1, 224, 224) and out["image"].dtype == np.uint8
    assert list(out["object_id"]) == ["a", "b", "c"]
    expected = render_spectra(w, f, iv, mk, config=SpectrumRenderConfig(channels=1))
    assert np.array_equal(out["image"], expected.numpy())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    specs = _batch(8, seed=6)
    w, f, iv, mk = _lists(specs)
    cpu = render_spectra(w, f, iv, mk)
    gpu = render_spectra(w, f, iv, mk, device="cuda")
    assert gpu.is_cuda
    assert (gpu.cpu().int() - cpu.int()).abs().max() <= 1
