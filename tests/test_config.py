from __future__ import annotations

import pytest

from astroray.config import ConfigError, IngestConfig
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.demo import DemoConfig


def test_yaml_and_json_round_trip(tmp_path):
    config = IngestConfig(paths=("a", "b"), labels=("l.csv",), read_cpus=0.5,
                          synthetic=SyntheticSurveyConfig(kind="spectra", n=5, format="sdss"))
    for name in ("c.yaml", "c.json"):
        config.save(tmp_path / name)
        assert IngestConfig.from_file(tmp_path / name) == config


def test_errors_name_the_field_and_the_value():
    with pytest.raises(ConfigError, match=r"IngestConfig.read_cpus = 0 is invalid"):
        IngestConfig(paths=("a",), read_cpus=0)
    with pytest.raises(ConfigError, match=r"IngestConfig.format = 'fits' is invalid"):
        IngestConfig(paths=("a",), format="fits")
    with pytest.raises(ConfigError, match=r"IngestConfig.paths"):
        IngestConfig()
    with pytest.raises(ConfigError, match=r"DemoConfig.spectra = -1"):
        DemoConfig(spectra=-1)
    with pytest.raises(ConfigError, match=r"SyntheticSurveyConfig.format = 'sdss'"):
        IngestConfig.from_dict({"synthetic": {"kind": "periodic", "format": "sdss"}})


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['pathz'\]"):
        IngestConfig.from_dict({"pathz": ["a"]})
