"""Domain-adaptation plumbing: the k-shot draw, the config checks, the table arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from astroray.config import ConfigError
from astroray.studies.domain import DomainAdaptConfig, markdown_table, pick_shots, summarise


def test_pick_shots_draws_k_per_class_seeded():
    labels = np.array([0, 1] * 20 + [1] * 5)
    a = pick_shots(labels, 5, seed=3, num_classes=2)
    assert len(a) == 10 and len(set(a.tolist())) == 10
    assert np.bincount(labels[a], minlength=2).tolist() == [5, 5]
    assert np.array_equal(a, pick_shots(labels, 5, seed=3, num_classes=2))
    assert not np.array_equal(a, pick_shots(labels, 5, seed=4, num_classes=2))
    with pytest.raises(ValueError, match="fewer than k"):
        pick_shots(labels, 21, seed=0, num_classes=2)


def test_config_checks_name_the_field():
    with pytest.raises(ConfigError, match="target_survey"):
        DomainAdaptConfig(source_survey="A", target_survey="A")
    with pytest.raises(ConfigError, match="shots"):
        DomainAdaptConfig(n_target_pool=10, shots=(1, 6))
    with pytest.raises(ConfigError, match="temperature"):
        DomainAdaptConfig(model_overrides={"temperature": -1.0})
    cfg = DomainAdaptConfig.from_file("jobs/domain_adapt.yaml")
    assert cfg.shots == (1, 5, 10) and cfg.smoke().pick_seeds == cfg.pick_seeds[:1]


def test_summary_table_gains_and_source_changes():
    runs = [{"mode": "source_only", "k": None, "source_ba": 0.99, "target_ba": 0.80}]
    for seed, (ft, mme) in enumerate([((0.90, 0.85), (0.98, 0.90)),
                                      ((0.94, 0.87), (0.96, 0.94))]):
        runs.append({"mode": "finetune", "k": 5, "pick_seed": seed, "source_ba": ft[0],
                     "target_ba": ft[1]})
        runs.append({"mode": "mme", "k": 5, "pick_seed": seed, "source_ba": mme[0],
                     "target_ba": mme[1]})
    (row,) = summarise(runs, (5,))
    assert row["mme_target_ba"] == pytest.approx(0.92)
    assert row["mme_target_gain"] == pytest.approx(0.12)
    assert row["mme_source_change"] == pytest.approx(-0.02)
    assert row["finetune_source_ba"] == pytest.approx(0.92)
    assert row["mme_target_ba_std"] == pytest.approx(np.std([0.90, 0.94], ddof=1))
    assert row["mme_runs"] == 2
    md = markdown_table([row], "A", "B")
    assert "| 5 | 0.990 | 0.800 | 0.920 ± 0.028 |" in md and "+0.120 | -0.020 |" in md
