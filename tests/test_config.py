from __future__ import annotations

import pytest

from astroray.config import ConfigError
from astroray.data.ingest import IngestConfig
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


def test_check_positive_ints_names_the_field_and_refuses_bools():
    import dataclasses

    from astroray.config import check_positive_ints

    @dataclasses.dataclass
    class Budget:
        steps: object = 3
        folds: object = 2

    check_positive_ints(Budget(), "steps", "folds")
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ConfigError, match=rf"Budget\.folds = {bad!r} is invalid: expected "
                                              "a positive integer"):
            check_positive_ints(Budget(folds=bad), "steps", "folds")
