"""Labelled light-curve data sets for the Astromer evaluations, and early-stopped fitting.

Shared by the classifier fitting (:mod:`astroray.train.classify`), the few-shot classification
and the uncertainty comparison studies: a labelled data set's settings
(:class:`ClassifyDataset`), its labelled objects cut into sequential windows for an encoder,
with a fixed stratified test set split by object.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from astroray.config import Config, check, check_name
from astroray.data.fileio import numpy_batch
from astroray.data.inputs import check_inputs
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.data.windows import LightCurveWindows
from astroray.models.pretrained import read_config_json
from astroray.train.astromer import LC_COLUMNS, prepare_light_curves

#: ``max_per_class`` of the labelled data sets in the jobs' smoke runs (``smoke()``): enough
#: for 10 training + validation objects per class beside a 30 % test set.
SMOKE_PER_CLASS = 40


@dataclasses.dataclass
class ClassifyDataset(Config):
    """One labelled data set of the evaluation.

    Attributes:
        name: its name in the results.
        paths: survey files/folders or canonical Parquet (ingested).
        optional_paths: the same, used when present (the data set is skipped when nothing is
            there).
        synthetic: a labelled synthetic survey to generate.
        label_map: renames labels (``{"ab": "RRab"}``); labels not in it are kept.
        classes: keep only these classes (after renaming); None keeps every labelled object.
        test_fraction: fraction of each class in the fixed test set.
        test_per_class: cap on test objects per class (None: no cap).
        max_per_class: use at most this many labelled objects of each class, a seeded
            draw (``seed``) made before windowing and the test split (None: all). For quick
            runs on a large catalogue, and the jobs' smoke runs.
        min_points: bands with fewer points are not used; objects left without any are
            dropped (and counted).
        seed: seed of the test split.
    """

    name: str = "synthetic"
    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: SyntheticSurveyConfig | None = None
    label_map: dict[str, str] = dataclasses.field(default_factory=dict)
    classes: tuple[str, ...] | None = None
    test_fraction: float = 0.3
    test_per_class: int | None = None
    max_per_class: int | None = None
    min_points: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.classes is not None:
            self.classes = tuple(self.classes)
        check_name(self)
        check_inputs(self)
        check(isinstance(self.label_map, dict), self, "label_map", self.label_map,
              "a mapping of label renames")
        check(0.0 < self.test_fraction < 1.0, self, "test_fraction", self.test_fraction,
              "a number in (0, 1)")
        check(self.test_per_class is None or (isinstance(self.test_per_class, int)
                                              and self.test_per_class > 0),
              self, "test_per_class", self.test_per_class, "a positive integer or null")
        check(self.max_per_class is None or (isinstance(self.max_per_class, int)
                                             and self.max_per_class > 1),
              self, "max_per_class", self.max_per_class, "an integer >= 2 or null")
        check(isinstance(self.min_points, int) and self.min_points >= 1, self, "min_points",
              self.min_points, "an integer >= 1")

    def smoke(self, synthetic_n: int = 240) -> ClassifyDataset:
        """This data set shrunk for a smoke run.

        At most ``synthetic_n`` synthetic objects and :data:`SMOKE_PER_CLASS` objects per
        class (a smaller ``max_per_class`` is kept).
        """
        synthetic = self.synthetic and self.synthetic.replace(n=min(self.synthetic.n,
                                                                    synthetic_n))
        return self.replace(synthetic=synthetic, max_per_class=min(
            self.max_per_class or SMOKE_PER_CLASS, SMOKE_PER_CLASS))



def fit_early_stopping(model: nn.Module, epoch_batches: Any, val_loss: Any, *, max_steps: int,
                        eval_every: int, patience: int, lr: float,
                        weight_decay: float = 1e-4, on_eval: Any = None) -> nn.Module:
    """AdamW with early stopping on a validation loss checked every ``eval_every`` steps.

    Budgets count optimizer steps, not epochs, so that a setting with 20 objects per class
    (a few steps per epoch) trains as long as one with 500; the best weights are kept.
    ``epoch_batches(model)`` yields one loss per step, computed when it is asked for: the
    model is in train mode then (dropout on), and in eval mode for ``val_loss(model)``.
    ``on_eval(step, loss)`` hears every validation loss (e.g. to report to Ray Tune).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    best, best_state, bad, step = float("inf"), None, 0, 0
    model.train()
    while step < max_steps and bad < patience:
        for loss in epoch_batches(model):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % eval_every == 0 or step == max_steps:
                model.eval()
                with torch.no_grad():
                    current = float(val_loss(model))
                model.train()
                if on_eval is not None:
                    on_eval(step, current)
                if current < best - 1e-4:
                    best, bad = current, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad += 1
                if step >= max_steps or bad >= patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


def load_labelled(ds_cfg: ClassifyDataset, workdir: Path) -> tuple[pa.Table | None, dict]:
    """The data set's labelled light curves (labels renamed, classes kept), or None."""
    if not ds_cfg.paths and ds_cfg.synthetic is None and not any(
            Path(p).exists() for p in ds_cfg.optional_paths):
        return None, {"skipped": f"none of {list(ds_cfg.optional_paths)} is present"}
    info = prepare_light_curves(ds_cfg.paths, ds_cfg.optional_paths, ds_cfg.synthetic, workdir)
    # survey and source name each object in the model card's split (reports, domain).
    columns = [*LC_COLUMNS, "survey", "source"]
    table = pa.concat_tables([pq.read_table(p, columns=columns) for p in info["parquet"]])
    labels = [ds_cfg.label_map.get(v, v) if v is not None else None
              for v in table.column("label").to_pylist()]
    keep = np.array([v is not None and (ds_cfg.classes is None or v in ds_cfg.classes)
                     for v in labels])
    table = table.set_column(table.schema.get_field_index("label"), "label",
                             pa.array(labels, type=pa.string())).filter(pa.array(keep))
    info["labelled"] = table.num_rows
    if ds_cfg.max_per_class is not None:
        table = _at_most_per_class(table, ds_cfg.max_per_class, ds_cfg.seed)
        info["kept"] = table.num_rows
    return table, info


def _at_most_per_class(table: pa.Table, cap: int, seed: int) -> pa.Table:
    """At most ``cap`` rows of each label, a seeded draw; rows keep their order."""
    labels = np.asarray(table.column("label").to_pylist(), dtype=object)
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(labels == c))[:cap] for c in sorted(set(labels))]
    return table.take(pa.array(np.sort(np.concatenate(rows)) if rows else [], pa.int64()))


def stratified_test(y: np.ndarray, fraction: float, cap: int | None,
                    rng: np.random.Generator) -> np.ndarray:
    """A fixed test set: ``fraction`` of each class (at least one, at most ``cap``)."""
    test = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = max(1, int(round(fraction * idx.size)))
        test.extend(idx[: min(k, cap) if cap else k])
    return np.sort(np.array(test, dtype=np.int64))


@dataclasses.dataclass
class LabelledWindows:
    """A data set's usable objects, their windows and labels, and its fixed test set.

    Objects without any window (too few points in every band) are left out and counted.
    """

    table: pa.Table  # the usable objects, in the order of ``y``
    windows: dict[str, np.ndarray]  # times / values / mask, (W, L) each
    win_obj: np.ndarray  # (W,) object of each window
    y: np.ndarray  # (N,) class index
    classes: list[str]
    test: np.ndarray  # fixed test objects
    pool: np.ndarray  # the others, which training and validation draws come from
    info: dict[str, Any]
    dropped: int  # objects without windows

    def subset(self, objects: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The windows of these objects and their object index (position in ``objects``)."""
        rows = np.flatnonzero(np.isin(self.win_obj, objects))
        remap = np.full(len(self.y), -1)
        remap[objects] = np.arange(len(objects))
        return ({k: torch.from_numpy(v[rows]) for k, v in self.windows.items()},
                torch.from_numpy(remap[self.win_obj[rows]]))


def window_labelled(ds_cfg: ClassifyDataset, encoder: str,
                    workdir: Path) -> LabelledWindows | dict[str, Any]:
    """Window a labelled data set for ``encoder``'s window size, with its test set.

    Returns:
        The data, or ``{"skipped": why, "data": ...}`` when it is absent or has fewer than
        two classes.
    """
    table, info = load_labelled(ds_cfg, workdir)
    if table is None or table.num_rows == 0:
        return {"skipped": info.get("skipped", "no labelled objects"), "data": info}
    encoder_cfg = read_config_json(encoder)
    windows = LightCurveWindows(int(encoder_cfg["window_size"]), mode="sequential",
                                min_points=ds_cfg.min_points,
                                time_origin=encoder_cfg.get("time_origin", "first"),
                                )(numpy_batch(table))
    has = np.bincount(windows["row"], minlength=table.num_rows) > 0
    keep = np.flatnonzero(has)
    remap = np.full(len(has), -1)
    remap[keep] = np.arange(keep.size)
    table = table.take(pa.array(keep))
    labels = table.column("label").to_pylist()
    classes = sorted(set(labels))
    if len(classes) < 2:
        return {"skipped": f"needs two classes; has {classes}", "data": info}
    y = np.array([classes.index(v) for v in labels], dtype=np.int64)
    test = stratified_test(y, ds_cfg.test_fraction, ds_cfg.test_per_class,
                           np.random.default_rng(ds_cfg.seed))
    return LabelledWindows(table=table,
                           windows={k: np.ascontiguousarray(windows[k])
                                    for k in ("times", "values", "mask")},
                           win_obj=remap[windows["row"]], y=y, classes=classes, test=test,
                           pool=np.setdiff1d(np.arange(len(y)), test), info=info,
                           dropped=int((~has).sum()))
