"""Uncertainty of the Astromer classifier: MC Dropout, HSA, HA-MC Dropout and deep ensembles.

Every method fine-tunes the whole classifier (encoder from a pretrained folder + MLP head)
end to end on the labelled objects of a data set; an object's logits come from the mean of
its windows' layer means, as in :class:`~astroray.models.astromer.AstromerClassifier`:

* ``mc_dropout``: dropout ``p`` in the encoder and the head, kept on at inference, T passes;
* ``hsa``: hierarchical stochastic attention in every encoder block (no dropout), T sampled
  passes;
* ``ha_mc_dropout``: HA-MC Dropout (Cádiz-Leyton et al. 2025): the hierarchical keys of HSA
  (sampled centroids) with softmax attention weights, and dropout as in ``mc_dropout``;
* ``hsa_snap``, ``ha_mc_dropout_snap``: the same with our earlier hard-snap HSA (attention
  ``hsa_snap`` / ``hsa_keys_snap``, see :mod:`astroray.models.layers.hsa`), a measured variant;
* ``ensemble``: M members trained from different seeds (dropout in training only), one
  deterministic pass each.

Every model (each fold, each method, each ensemble member) trains as its own Ray task, so the
members of an ensemble train in parallel. On the fixed test set of each fold the job scores
macro F1 of the mean prediction, the misclassification ROC-AUC of SMP, PV and BALD (and
predictive entropy), the expected calibration error, and the inference cost per object
relative to one deterministic pass of the same network. The first fold's model of each
sampling method is saved (``classifier_<data set>_<method>/``) with its uncertainty head, so
that bulk inference and Serve add the uncertainty scores to their answers.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from astroray.config import Config, check, check_positive_ints
from astroray.eval.plots import plot_reliability
from astroray.models.astromer import AstromerClassifier, AstromerClassifierConfig, load_encoder
from astroray.runtime import init_ray
from astroray.train.astromer import PretrainConfig, pretrain
from astroray.train.classify import check_encoder_and_datasets
from astroray.train.labelled import (
    ClassifyDataset,
    LabelledWindows,
    fit_early_stopping,
    window_labelled,
)
from astroray.train.metrics import mean_spread
from astroray.uncertainty import fit_centroids, reliability_curve, uncertainty_metrics
from astroray.uncertainty.sampling import object_logits, sample_object_probs

__all__ = ["METHODS", "UncertaintyConfig", "train_uncertainty"]

logger = logging.getLogger(__name__)

METHODS = ("mc_dropout", "hsa", "ha_mc_dropout", "ensemble")
#: Named variants of the HSA methods (our earlier hard-snap HSA), for comparison runs.
VARIANTS = ("hsa_snap", "ha_mc_dropout_snap")
#: Each HSA method's attention (the others use ``softmax``).
_ATTENTION = {"hsa": "hsa", "ha_mc_dropout": "hsa_keys", "hsa_snap": "hsa_snap",
              "ha_mc_dropout_snap": "hsa_keys_snap"}
#: Methods whose inference samples dropout.
_DROPOUT = ("mc_dropout", "ha_mc_dropout", "ha_mc_dropout_snap")


@dataclasses.dataclass
class UncertaintyConfig(Config):
    """The uncertainty comparison.

    Attributes:
        encoder: a pretrained Astromer folder; None pretrains one first with ``pretrain``.
        pretrain: pretraining run (mapping or YAML path) used when ``encoder`` is None.
        datasets: labelled data sets (as in the few-shot job); each has its fixed test set.
        methods: some of ``mc_dropout``, ``hsa``, ``ha_mc_dropout``, ``ensemble`` (and the
            variants ``hsa_snap``, ``ha_mc_dropout_snap``).
        folds: train/validation draws from the non-test objects (the test set is fixed).
        samples_per_class: training objects per class and fold (None: every non-test object
            less the validation share).
        val_fraction: share of the drawn objects kept for early stopping.
        dropout: dropout rate of the MC Dropout methods (encoder and head), and of ensemble
            members in training.
        passes: stochastic passes T at inference.
        ensemble_size: members M of the deep ensemble.
        hsa_centroids: key centroids per head K of HSA.
        hsa_tau1: temperature of HSA's key-to-centroid choice.
        hsa_tau2: temperature of HSA's attention weights.
        head_hidden: MLP widths of the head.
        lr: AdamW learning rate (encoder and head).
        weight_decay: AdamW weight decay.
        batch_size: objects per step.
        max_windows: windows per object in a training step (drawn at random; all at test).
        max_steps: most optimizer steps per model.
        eval_every: validation loss every this many steps (early stopping).
        patience: checks without improvement before stopping.
        n_bins: confidence bins of the calibration error.
        task_cpus: CPUs of each training task (Ray).
        seed: seed of folds, initialisations and sampling.
    """

    encoder: str | None = None
    pretrain: PretrainConfig | str | None = None
    datasets: tuple[ClassifyDataset, ...] = ()
    methods: tuple[str, ...] = METHODS
    folds: int = 3
    samples_per_class: int | None = None
    val_fraction: float = 0.2
    dropout: float = 0.2
    passes: int = 20
    ensemble_size: int = 5
    hsa_centroids: int = 16
    hsa_tau1: float = 1.0
    hsa_tau2: float = 1.0
    head_hidden: tuple[int, ...] = (1024, 512, 256)
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 32
    max_windows: int = 4
    max_steps: int = 1500
    eval_every: int = 25
    patience: int = 8
    n_bins: int = 15
    task_cpus: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_encoder_and_datasets(self)
        self.methods, self.head_hidden = tuple(self.methods), tuple(self.head_hidden)
        check(len(self.methods) > 0 and all(m in METHODS + VARIANTS for m in self.methods),
              self, "methods", self.methods, f"some of {METHODS + VARIANTS}")
        check_positive_ints(self, "folds", "passes", "ensemble_size", "hsa_centroids", "batch_size",
                            "max_windows", "max_steps", "eval_every", "patience", "n_bins")
        check(self.samples_per_class is None or (isinstance(self.samples_per_class, int)
                                                 and self.samples_per_class > 0),
              self, "samples_per_class", self.samples_per_class, "a positive integer or null")
        check(0.0 < self.val_fraction < 1.0, self, "val_fraction", self.val_fraction,
              "a number in (0, 1)")
        check(0.0 <= self.dropout < 1.0, self, "dropout", self.dropout, "a number in [0, 1)")
        for name in ("hsa_tau1", "hsa_tau2", "lr", "task_cpus"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and value > 0, self, name, value,
                  "a positive number")
        check(len(self.head_hidden) > 0 and all(isinstance(h, int) and h > 0
                                                for h in self.head_hidden),
              self, "head_hidden", self.head_hidden, "positive layer widths")

    def smoke(self) -> UncertaintyConfig:
        """This configuration shrunk to a couple of minutes on 2 CPUs (tiny models, 1 fold)."""
        datasets = tuple(d.smoke(synthetic_n=240) for d in self.datasets)
        encoder = self.encoder if self.encoder and Path(self.encoder).is_dir() else None
        pretrain = self.pretrain.smoke() if self.pretrain is not None else None
        return self.replace(encoder=encoder, pretrain=pretrain if encoder is None else None,
                            datasets=datasets, folds=1, passes=4, ensemble_size=2,
                            hsa_centroids=4, head_hidden=(32,), max_steps=16, eval_every=8,
                            patience=2, task_cpus=0.5)


# ------------------------------------------------------------------------------------------
# Models and passes
# ------------------------------------------------------------------------------------------


def _build(encoder: str, classes: list[str], method: str, cfg: UncertaintyConfig,
           seed: int, min_points: int) -> nn.Module:
    """A classifier for ``method`` with the pretrained encoder's weights (HSA centroids unset)."""
    base = load_encoder(encoder)
    dropout = cfg.dropout if method in (*_DROPOUT, "ensemble") else 0.0
    attention = _ATTENTION.get(method, "softmax")
    enc_cfg = base.config.replace(dropout=dropout, attention=attention,
                                  hsa_centroids=cfg.hsa_centroids, hsa_tau1=cfg.hsa_tau1,
                                  hsa_tau2=cfg.hsa_tau2)
    torch.manual_seed(seed)
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=enc_cfg, labels=tuple(classes), hidden=cfg.head_hidden, dropout=dropout,
        standardize=True, min_points=min_points))
    result = model.encoder.load_state_dict(base.state_dict(), strict=False)
    unexpected = [k for k in result.missing_keys if not k.endswith("hsa.centroids")]
    if unexpected or result.unexpected_keys:
        raise ValueError(f"encoder {encoder}: weights do not fit the classifier "
                         f"(missing {unexpected}, unexpected {result.unexpected_keys})")
    return model



def _standardize(model: nn.Module, windows: dict[str, torch.Tensor], win_obj: np.ndarray,
                 objects: np.ndarray) -> None:
    """z-score the head's input with the layer means of these objects (initial encoder).

    The statistics are taken in train mode, as the head will see its inputs in training:
    features nearly constant without dropout (the input embedding's time-mean of zero-mean
    windows) vary under it, and eval-mode statistics would blow them up by 1e6.
    """
    rows = np.flatnonzero(np.isin(win_obj, objects))
    remap = {o: i for i, o in enumerate(objects)}
    obj = torch.tensor([remap[o] for o in win_obj[rows]])
    model.train()
    with torch.no_grad():
        means = torch.cat([model.encoder.embed(*(windows[k][rows[lo:lo + 256]]
                                                 for k in ("times", "values", "mask")))
                           for lo in range(0, len(rows), 256)])  # (W, S, D)
        sums = torch.zeros(len(objects), *means.shape[1:]).index_add_(0, obj, means)
        x = sums / torch.bincount(obj, minlength=len(objects)).clamp(min=1)[:, None, None]
    std = x.std(dim=0)
    model.head.set_standardization(x.mean(dim=0), std.clamp(min=1e-3 * float(std.max())))


def _fit_centroids(model: nn.Module, windows: dict[str, torch.Tensor], win_obj: np.ndarray,
                   objects: np.ndarray, seed: int, max_windows: int = 512) -> None:
    """HSA centroids from the k-means of the pretrained keys on training windows."""
    rows = np.flatnonzero(np.isin(win_obj, objects))
    rows = np.random.default_rng(seed).permutation(rows)[:max_windows]
    sample = [windows[k][rows] for k in ("times", "values", "mask")]
    fit_centroids(model.encoder, lambda: model.encoder.embed(*sample), seed=seed)


def _train_model(encoder: str, classes: list[str], method: str, cfg: UncertaintyConfig,
                 seed: int, min_points: int, windows: dict[str, np.ndarray],
                 win_obj: np.ndarray, y: np.ndarray, train: np.ndarray,
                 val: np.ndarray, on_eval: Any = None) -> dict[str, Any]:
    """Fine-tune one classifier (a Ray task); returns its config and weights."""
    torch.set_num_threads(max(1, int(cfg.task_cpus)))
    started = time.perf_counter()
    # Arrays from the object store are read-only: torch gets its own copies.
    win = {k: torch.from_numpy(np.array(v)) for k, v in windows.items()}
    win_obj, train, val = np.array(win_obj), np.array(train), np.array(val)
    model = _build(encoder, classes, method, cfg, seed, min_points)
    if method in _ATTENTION:
        _fit_centroids(model, win, win_obj, train, seed)
    _standardize(model, win, win_obj, train)
    by_obj = {o: np.flatnonzero(win_obj == o) for o in np.concatenate([train, val])}
    rng = np.random.default_rng(seed)
    yt = torch.from_numpy(np.array(y))

    def gather(objects: np.ndarray, cap: int | None) -> tuple[dict, torch.Tensor]:
        rows, obj = [], []
        for i, o in enumerate(objects):
            w = by_obj[o]
            if cap is not None and len(w) > cap:
                w = rng.choice(w, cap, replace=False)
            rows.append(w)
            obj.append(np.full(len(w), i))
        rows_a = np.concatenate(rows)
        return {k: v[rows_a] for k, v in win.items()}, torch.from_numpy(np.concatenate(obj))

    def steps(m: nn.Module):
        order = rng.permutation(train)
        for lo in range(0, len(order), cfg.batch_size):
            batch = order[lo:lo + cfg.batch_size]
            w, o = gather(batch, cfg.max_windows)
            yield nn.functional.cross_entropy(object_logits(m, w, o, len(batch)), yt[batch])

    val_w, val_o = gather(val, None)

    def val_loss(m: nn.Module) -> float:
        return float(nn.functional.cross_entropy(object_logits(m, val_w, val_o, len(val)),
                                                 yt[val]))

    fit_early_stopping(model, steps, val_loss, max_steps=cfg.max_steps,
                       eval_every=cfg.eval_every, patience=cfg.patience, lr=cfg.lr,
                       weight_decay=cfg.weight_decay, on_eval=on_eval)
    return {"config": model.config.to_dict(), "state": model.state_dict(),
            "seconds": time.perf_counter() - started}


def _restore(result: dict[str, Any]) -> nn.Module:

    model = AstromerClassifier(AstromerClassifierConfig.from_dict(result["config"]))
    model.load_state_dict(result["state"])
    return model.eval()


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def _timed_probs(models: list[nn.Module], method: str, windows: dict[str, torch.Tensor],
                 win_obj: torch.Tensor, n: int, passes: int) -> tuple[np.ndarray, float, float]:
    """(T, N, C) test probabilities of a method, its seconds, and one deterministic pass's.

    One untimed deterministic pass warms up first; the deterministic time is the best of three.
    """
    def single() -> float:
        t0 = time.perf_counter()
        sample_object_probs(models[0], windows, win_obj, n, 1, dropout=False, hsa=False)
        return time.perf_counter() - t0

    single()
    t0 = time.perf_counter()
    if method == "ensemble":
        probs = torch.cat([sample_object_probs(m, windows, win_obj, n, 1, dropout=False,
                                               hsa=False) for m in models])
    else:
        probs = sample_object_probs(models[0], windows, win_obj, n, passes,
                                    dropout=method in _DROPOUT, hsa=method in _ATTENTION)
    seconds = time.perf_counter() - t0
    return probs.numpy(), seconds, min(single() for _ in range(3))


def _split(data: LabelledWindows, cfg: UncertaintyConfig,
           fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) objects of a fold: a stratified draw from the data set's pool."""
    rng = np.random.default_rng((cfg.seed, fold))
    train, val = [], []
    for c in range(len(data.classes)):
        idx = rng.permutation(data.pool[data.y[data.pool] == c])
        if cfg.samples_per_class is not None:
            idx = idx[:int(round(cfg.samples_per_class * (1 + cfg.val_fraction)))]
        n_val = max(1, int(round(cfg.val_fraction * idx.size)))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.array(train), np.array(val)


def _evaluate_dataset(ds_cfg: ClassifyDataset, cfg: UncertaintyConfig, encoder: str,
                      workdir: Path, out: Path) -> dict[str, Any]:
    import ray  # lazy: ray

    data = window_labelled(ds_cfg, encoder, workdir)
    if isinstance(data, dict):
        return data
    train_task = ray.remote(num_cpus=cfg.task_cpus)(_train_model)
    shared = [ray.put(v) for v in (data.windows, data.win_obj, data.y)]
    jobs: dict[tuple[str, int], list[Any]] = {}
    for fold in range(cfg.folds):
        train, val = _split(data, cfg, fold)
        for method in cfg.methods:
            members = cfg.ensemble_size if method == "ensemble" else 1
            jobs[(method, fold)] = [train_task.remote(
                encoder, data.classes, method, cfg, cfg.seed * 1000 + fold * 100 + m,
                ds_cfg.min_points, *shared, train, val) for m in range(members)]
    test_win, test_obj = data.subset(data.test)
    y_test = data.y[data.test]
    per_method: dict[str, dict[str, list[float]]] = {m: {} for m in cfg.methods}
    curves: dict[str, Any] = {}
    saved: dict[str, str] = {}
    train_seconds: dict[str, float] = dict.fromkeys(cfg.methods, 0.0)
    for (method, fold), refs in jobs.items():
        results = ray.get(refs)
        train_seconds[method] += sum(r["seconds"] for r in results)
        models = [_restore(r) for r in results]
        torch.manual_seed(cfg.seed + fold)
        probs, seconds, single = _timed_probs(models, method, test_win, test_obj,
                                              len(data.test), cfg.passes)
        row = {**uncertainty_metrics(y_test, probs, cfg.n_bins),
               "cost_ratio": seconds / max(single, 1e-9)}
        for k, v in row.items():
            per_method[method].setdefault(k, []).append(float(v))
        if fold == 0:
            curves[method] = reliability_curve(y_test, probs, cfg.n_bins)
            if method != "ensemble":  # a classifier that carries its uncertainty head
                model = models[0]
                model.config = model.config.replace(uncertainty=method, passes=cfg.passes)
                saved[method] = str(model.save_pretrained(
                    out / f"classifier_{ds_cfg.name}_{method}"))
    # A fold where every test object is right has no misclassification AUROC (NaN): left out.
    summary = {m: {k: mean_spread([x for x in v if np.isfinite(x)]) for k, v in vals.items()}
               for m, vals in per_method.items()}
    figure = plot_reliability(curves, out / f"reliability_{ds_cfg.name}.png",
                              f"{ds_cfg.name}: reliability of the mean prediction (fold 0)")
    return {"data": data.info, "classes": data.classes, "objects": int(len(data.y)),
            "test": int(len(data.test)), "dropped_without_windows": data.dropped,
            "methods": summary,
            "train_seconds": {k: round(v, 1) for k, v in train_seconds.items()},
            "figure": None if figure is None else str(figure), "classifiers": saved}


def _encoder(encoder: str | None, pretrain_cfg: PretrainConfig | None, out: Path
             ) -> tuple[str, dict[str, Any] | None]:
    """The encoder folder: the one given, or one pretrained now into ``out/pretrain``."""
    if encoder is None:
        assert pretrain_cfg is not None  # checked by the configs
        pretrained = pretrain(pretrain_cfg, out / "pretrain")
        return pretrained["model"]["dir"], pretrained
    if not Path(encoder).is_dir():
        raise FileNotFoundError(f"encoder = {encoder!r}: no such model folder")
    return encoder, None


def train_uncertainty(config: UncertaintyConfig, out: str | Path) -> dict[str, Any]:
    """Run the comparison on every data set; writes reliability diagrams into ``out``.

    Returns:
        ``{"table", "datasets", "encoder", "pretrain"}``: ``table`` has one row per (data
        set, method) with the mean and spread over folds of macro F1, ROC-AUC of each score,
        ECE and the relative inference cost.
    """
    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    encoder, pretrained = _encoder(config.encoder, config.pretrain, out)
    datasets, table = {}, []
    for ds_cfg in config.datasets:
        started = time.perf_counter()
        res = _evaluate_dataset(ds_cfg, config, encoder, out / "data" / ds_cfg.name, out)
        res["seconds"] = round(time.perf_counter() - started, 1)
        datasets[ds_cfg.name] = res
        if "skipped" in res:
            table.append({"dataset": ds_cfg.name, "skipped": res["skipped"]})
            continue
        for method, metrics in res["methods"].items():
            row = {"dataset": ds_cfg.name, "method": method}
            for k, v in metrics.items():
                row[k], row[f"{k}_std"] = round(v["mean"], 4), round(v["std"], 4)
            table.append(row)
            logger.info("%s %s: macro F1 %.3f, AUROC SMP %.3f PV %.3f BALD %.3f, ECE %.3f, "
                        "cost x%.1f", ds_cfg.name, method, row["macro_f1"], row["auroc_smp"],
                        row["auroc_pv"], row["auroc_bald"], row["ece"], row["cost_ratio"])
    return {"table": table, "datasets": datasets, "encoder": encoder,
            "pretrain": pretrained and {k: pretrained[k] for k in ("metrics", "resume")}}
