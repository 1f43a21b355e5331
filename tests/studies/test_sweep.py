"""The budget and base checks both tuning configs share (astroray.train.sweep)."""

from __future__ import annotations

import pytest

from astroray.config import ConfigError
from astroray.studies.tune_domain import TuneDomainConfig
from astroray.studies.tune_uncertainty import TuneUncertaintyConfig


@pytest.mark.parametrize("cls, base", [(TuneUncertaintyConfig, "jobs/tune_uncertainty.yaml"),
                                       (TuneDomainConfig, "jobs/tune_domain.yaml")])
def test_sweep_configs_name_the_bad_field(cls, base, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    cfg = cls.from_file(base)
    assert cfg.base is not None and cfg.reduction_factor >= 2
    for field, value, expected in (("reduction_factor", 1, "an integer >= 2"),
                                   ("num_samples", 0, "a positive integer"),
                                   ("max_concurrent", 0, "a positive integer or null"),
                                   ("trial_cpus", -1.0, "a positive number"),
                                   ("base", "missing.yaml", ".* or an existing YAML file")):
        with pytest.raises(ConfigError, match=f"{field} = .* expected {expected}"):
            cfg.replace(**{field: value})
