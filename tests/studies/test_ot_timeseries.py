"""The OT time-series study: residuals on known cases, grouping, config, actor check."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.ot import SyntheticPhotometry
from astroray.studies.ot_timeseries import evaluate_supernova, group_supernovae, residual_table

WAVE = np.linspace(3500.0, 10000.0, 1500)


def _series(times: np.ndarray) -> np.ndarray:
    """A line drifting redward on a continuum whose scale changes with time: (E, L)."""
    mu = 5000.0 + 40.0 * times[:, None]
    return (1.0 + 5.0 * np.exp(-0.5 * ((WAVE - mu) / 150.0) ** 2)) * np.exp(-0.02 * times)[
        :, None]


def test_residual_fractions_on_known_cases():
    phot = SyntheticPhotometry(WAVE, ("V", "r"))
    mjd = np.arange(0.0, 21.0)
    flux = _series(mjd)
    # Every epoch kept: nothing interpolated, and the rebuilt points equal the truth.
    rows = evaluate_supernova(WAVE, mjd, flux, phot, [1.0], ["exact", "linear"])
    assert not rows["interpolated"].any()
    np.testing.assert_allclose(rows["residual"], 0.0, atol=1e-6)
    # A gap of 5 days keeps 0, 5, ..., 20: 16 interpolated epochs x 2 bands x 2 methods.
    rows = evaluate_supernova(WAVE, mjd, flux, phot, [5.0], ["exact", "linear"])
    assert rows["interpolated"].sum() == 16 * 2 * 2
    n = rows["residual"].size
    rows.update(sn_id=np.full(n, "sn"), type=np.full(n, "Ia"), error=np.full(n, ""))
    # Known answer: overwrite residuals, half the exact points and none of the linear ones
    # below the threshold.
    interp = rows["interpolated"]
    exact = rows["method"] == "exact"
    rows["residual"] = np.where(exact, np.where(np.arange(n) % 2 == 0, 0.05, 0.5), 0.2)
    table = residual_table(rows, ["exact", "linear"], 0.1)
    assert {r["type"] for r in table} == {"all", "Ia"}
    for r in table:
        expect = np.mean(rows["residual"][interp & exact & (rows["band"] == r["band"])] < 0.1)
        assert r["exact"] == pytest.approx(expect, abs=1e-4) and r["linear"] == 0.0
        assert r["n"] == 16


def test_group_supernovae_from_the_synthetic_survey():
    from astroray.data.synthetic import sn_spectral_series

    table = sn_spectral_series(2, seed=3, phases=(-5.0, 5.0), cadence=2.0)
    sn, errors = group_supernovae(table)
    assert errors == [] and sn.num_rows == 2
    assert sorted(sn.column("type").to_pylist()) == ["II", "Ia"]
    row = sn.slice(0, 1).to_pylist()[0]
    assert len(row["flux"]) == len(row["mjd"]) * len(row["wavelength"])
    assert np.all(np.diff(row["mjd"]) > 0)


def test_config_names_the_bad_field():
    from astroray.config import ConfigError
    from astroray.studies.ot_timeseries import OTTimeSeriesConfig

    synthetic = {"kind": "sn_series", "n": 10, "format": "parquet"}
    cfg = OTTimeSeriesConfig(synthetic=synthetic, methods=["exact", "entropic", "linear"])
    smoke = cfg.smoke()
    assert smoke.synthetic.n == 4 and "entropic" not in smoke.methods
    for field, value in (("methods", ("lp",)), ("gaps", (0.0,)), ("bands", ("Q",)),
                         ("threshold", 1.5)):
        with pytest.raises(ConfigError, match=field):
            OTTimeSeriesConfig(synthetic=synthetic, **{field: value})
    with pytest.raises(ConfigError, match="synthetic"):
        OTTimeSeriesConfig(synthetic={"kind": "spectra", "n": 3, "format": "parquet"})


def test_actors_that_would_starve_the_reads_are_refused(ray_session, tmp_path):
    """On 2 CPUs, two 1-CPU actors leave nothing to read with: a clear error, not a hang."""
    from pathlib import Path

    from astroray.studies.ot_timeseries import OTTimeSeriesConfig, run_ot_timeseries

    job_yaml = Path(__file__).resolve().parents[2] / "jobs" / "ot_timeseries.yaml"
    cfg = OTTimeSeriesConfig.from_file(job_yaml).smoke().replace(
        num_actors=2, actor_cpus=1.0)
    with pytest.raises(ValueError, match="num_actors x actor_cpus = 2 CPUs"):
        run_ot_timeseries(cfg, tmp_path)
