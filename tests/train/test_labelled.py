"""The labelled data sets shared by the Astromer evaluations, and early-stopped fitting."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from astroray.config import ConfigError
from astroray.data.synthetic import SyntheticSurveyConfig, make_survey
from astroray.models import create_model
from astroray.train.classify import ClassifyDataset
from astroray.train.labelled import (
    SMOKE_PER_CLASS,
    fit_early_stopping,
    load_labelled,
    stratified_test,
    window_labelled,
)


def test_window_labelled_keeps_every_usable_object_once(ray_session, tmp_path):
    folder = tmp_path / "survey"
    make_survey(SyntheticSurveyConfig(kind="periodic", n=90, format="parquet", seed=3), folder)
    table = pq.read_table(sorted(folder.glob("*.parquet")))
    # An object is usable when one of its bands has min_points points: count independently,
    # with min_points set so that about a fifth of the objects have too few.
    most = np.array([max(Counter(bands).values())
                     for bands in table.column("band").to_pylist()])
    min_points = int(np.percentile(most, 20)) + 1
    usable = (most >= min_points).tolist()
    encoder = create_model("astromer-tiny").save_pretrained(tmp_path / "enc")
    ds = ClassifyDataset(name="s", paths=(str(folder),), min_points=min_points,
                         test_fraction=0.25)
    data = window_labelled(ds, str(encoder), tmp_path / "work")
    assert data.dropped == len(usable) - sum(usable) > 0
    assert data.table.num_rows == len(data.y) == sum(usable)
    assert sorted(set(data.win_obj)) == list(range(len(data.y)))  # every object has windows
    assert [data.classes[c] for c in data.y] == data.table.column("label").to_pylist()
    assert np.intersect1d(data.test, data.pool).size == 0
    assert data.test.size + data.pool.size == len(data.y)
    for c in range(len(data.classes)):  # a quarter of each class, at least one
        n = int((data.y == c).sum())
        assert int((data.y[data.test] == c).sum()) == max(1, round(0.25 * n))
    windows, index = data.subset(data.test[:3])
    assert set(index.tolist()) == {0, 1, 2}
    assert windows["values"].shape[0] == index.shape[0]
    one = ClassifyDataset(name="one", paths=(str(folder),), classes=("RRab",))
    assert "two classes" in window_labelled(one, str(encoder), tmp_path / "work1")["skipped"]


def test_max_per_class_draws_at_most_that_many_of_each_class(ray_session, tmp_path):
    folder = tmp_path / "survey"
    make_survey(SyntheticSurveyConfig(kind="periodic", n=120, format="parquet", seed=5), folder)
    table = pq.read_table(sorted(folder.glob("*.parquet")))
    # Two classes merged: one class above the cap, the others below it.
    merge = {"RRc": "RRab"}
    counts = Counter(merge.get(v, v) for v in table.column("label").to_pylist())
    cap = max(counts.values()) - 5
    assert min(counts.values()) < cap < max(counts.values())
    ids = {}
    for seed in (0, 0, 1):
        ds = ClassifyDataset(name="s", paths=(str(folder),), label_map=merge,
                             max_per_class=cap, seed=seed)
        got, info = load_labelled(ds, tmp_path / f"work{seed}")
        kept = Counter(got.column("label").to_pylist())
        assert kept == {c: min(n, cap) for c, n in counts.items()}
        assert info["labelled"] == table.num_rows and info["kept"] == got.num_rows
        # A subset of the objects, whole rows (every point of a kept object).
        rows = {o: len(t) for o, t in zip(table.column("object_id").to_pylist(),
                                          table.column("time").to_pylist(), strict=True)}
        assert all(rows[o] == len(t) for o, t in zip(got.column("object_id").to_pylist(),
                                                   got.column("time").to_pylist(), strict=True))
        ids.setdefault(seed, []).append(got.column("object_id").to_pylist())
    assert ids[0][0] == ids[0][1] and ids[0][0] != ids[1][0]  # seeded draw
    with pytest.raises(ConfigError, match="max_per_class"):
        ClassifyDataset(name="s", paths=(str(folder),), max_per_class=1)
    # A smoke run caps every set; a smaller cap of its own and its other fields are kept.
    syn = ClassifyDataset(name="s", synthetic=SyntheticSurveyConfig(n=1000), test_fraction=0.4)
    small = syn.smoke(synthetic_n=180)
    assert (small.synthetic.n, small.max_per_class, small.test_fraction) == (
        180, SMOKE_PER_CLASS, 0.4)
    assert syn.replace(max_per_class=7).smoke().max_per_class == 7


def test_stratified_test_caps_and_is_reproducible():
    y = np.repeat([0, 1, 2], [10, 40, 3])
    a = stratified_test(y, 0.5, 8, np.random.default_rng(1))
    b = stratified_test(y, 0.5, 8, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert np.bincount(y[a]).tolist() == [5, 8, 2]


def test_fit_early_stopping_returns_the_best_weights():
    """A model driven away from the validation optimum ends at the best weights it saw."""
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    seen = []

    def steps(m):  # training pushes the weight up without bound
        yield -m.weight.sum()

    def val_loss(m):  # validation is best at weight 0.05
        return float((m.weight.detach().sum() - 0.05) ** 2)

    out = fit_early_stopping(model, steps, val_loss, max_steps=200, eval_every=1, patience=5,
                             lr=0.01, weight_decay=0.0, on_eval=lambda s, v: seen.append(v))
    assert len(seen) < 200  # stopped early
    assert float(val_loss(out)) == min(seen)
    assert abs(float(out.weight.detach().sum()) - 0.05) < 0.02
    assert not out.training
