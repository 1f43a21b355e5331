"""The inputs group: checking it on a config and resolving it with one completion marker."""

import dataclasses
import json
from typing import Any

import pytest

from astroray.config import Config, ConfigError
from astroray.data.inputs import check_inputs, resolve_inputs
from astroray.data.synthetic import DONE, SyntheticSurveyConfig, generate_survey


@dataclasses.dataclass
class _Job(Config):
    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: Any = None

    def __post_init__(self) -> None:
        check_inputs(self)


def test_check_inputs_normalises_and_names_the_field():
    job = _Job.from_dict({"paths": "a", "synthetic": {"kind": "spectra", "format": "sdss",
                                                      "n": 3}})
    assert job.paths == ("a",) and isinstance(job.synthetic, SyntheticSurveyConfig)
    with pytest.raises(ConfigError, match=r"_Job.paths = \(\) is invalid: expected some input"):
        _Job()
    with pytest.raises(ConfigError, match=r"_Job.synthetic = 5 is invalid"):
        _Job(paths=("a",), synthetic=5)


def test_a_generated_survey_is_finished_by_its_marker_and_not_redone(tmp_path):
    config = SyntheticSurveyConfig(kind="periodic", n=5, format="parquet", seed=2)
    first = generate_survey(config, tmp_path / "s")
    assert first["objects"] == 5 and first["synthetic"] == config.to_dict()
    marker = tmp_path / "s" / DONE
    stamp = marker.stat().st_mtime_ns
    assert generate_survey(config, tmp_path / "s") == first
    assert marker.stat().st_mtime_ns == stamp  # reused, not written again
    other = generate_survey(config.replace(n=4), tmp_path / "s")  # new settings: redone
    assert other["objects"] == 4 and json.loads(marker.read_text())["synthetic"]["n"] == 4


def test_resolve_inputs_without_parquet_keeps_files_and_skips_absent_optional(tmp_path):
    given = tmp_path / "given.csv"
    given.write_text("object_id\n")
    synthetic = SyntheticSurveyConfig(kind="periodic", n=3, format="csv", seed=1)
    resolved = resolve_inputs([str(given)], [str(tmp_path / "absent")], synthetic,
                              tmp_path / "work", to_parquet=False)
    assert resolved.paths == [str(given), str(tmp_path / "work" / "synthetic")]
    assert resolved.present == [str(given)]
    assert resolved.skipped == [str(tmp_path / "absent")]
    assert resolved.inputs == [{"synthetic": synthetic.to_dict()}, {"paths": [str(given)]}]
    assert (tmp_path / "work" / "synthetic" / DONE).is_file()


def test_resolve_inputs_generates_parquet_for_training(tmp_path):
    synthetic = SyntheticSurveyConfig(kind="periodic", n=6, format="macho", seed=1)
    resolved = resolve_inputs((), (), synthetic, tmp_path)
    assert resolved.paths == [str(tmp_path / "synthetic")] and resolved.objects == 6
    done = json.loads((tmp_path / "synthetic" / DONE).read_text())
    assert done["synthetic"]["format"] == "parquet"
