"""Few-shot light-curve classification on Astromer embeddings, against baselines.

Protocol (Astromer 1 and 2 papers): a frozen encoder turns every light curve into the masked
time-means of its input embedding and of every block output (averaged over the object's
windows); a classifier learns softmax weights over these representations (the "weighted
per-sample embedding") and an MLP (1024-512-256, ReLU, LayerNorm). It is trained on ``n`` =
20 / 100 / ... / all labelled objects per class, in folds (independent draws of the training
objects), and scored by macro F1 on a fixed test set, split by object. The rows compared:

* ``published``: the authors' published Astromer 1 weights (``astromer1-macho``), frozen;
* ``published_ft``: the same after the fine-tuning step of the official protocol (the masked
  objective on the data set's own light curves, its non-test objects only, no labels);
* ``own``: an encoder pretrained here (``encoder`` or ``pretrain``);
* ``untrained``: the published architecture (or ours, without published weights) with its
  random initialisation, which isolates what any pretraining contributed;
* ``gru``: a 2-layer GRU trained from scratch on the windows (the papers' no-pretraining
  baseline; one random window per object and epoch), with object predictions averaged over
  all of an object's windows;
* ``rf``: a Random Forest on :mod:`astroray.features` (the classic feature baseline), on the
  same training objects.

Embeddings are per band: the mean over bands (``band_mean``), the per-band vectors
concatenated (``band_concat``; Astromer is a single-band model) or one band (``band:g``).
Each encoder's masked-magnitude R^2 on the test objects' windows is reported beside.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from astroray.config import Config, check, check_positive_ints
from astroray.eval.plots import plot_confusion_matrix
from astroray.train._labelled import (
    ClassifyDataset,
    fit_early_stopping,
    load_labelled,
    stratified_test,
    window_labelled,
)
from astroray.train.astromer import PretrainConfig

__all__ = ["ClassifyConfig", "ClassifyDataset", "GRUClassifier", "classify", "fit_classifier",
           "format_tables", "masked_r2", "save_classifier"]

logger = logging.getLogger(__name__)

#: Rows of the table, in order (those whose encoder is not available are skipped).
METHODS = ("published", "published_ft", "own", "untrained", "gru", "rf")
ENCODER_METHODS = ("published", "published_ft", "own", "untrained")
HEAD_OPTIMIZERS = ("adamw", "adam")


def check_encoder_and_datasets(cfg: Any) -> None:
    """Normalise and check the fields the encoder evaluations share.

    ``pretrain`` (a mapping or a YAML path) becomes a :class:`PretrainConfig`; ``datasets``
    become :class:`ClassifyDataset` s with distinct names; an ``encoder`` folder or a
    ``pretrain`` configuration must be given.
    """
    if isinstance(cfg.pretrain, str):
        check(Path(cfg.pretrain).is_file(), cfg, "pretrain", cfg.pretrain,
              "a pretraining mapping or an existing YAML file")
        cfg.pretrain = PretrainConfig.from_file(cfg.pretrain)
    elif isinstance(cfg.pretrain, dict):
        cfg.pretrain = PretrainConfig.from_dict(cfg.pretrain)
    cfg.datasets = tuple(d if isinstance(d, ClassifyDataset) else ClassifyDataset.from_dict(d)
                         for d in cfg.datasets)
    check(cfg.encoder is not None or cfg.pretrain is not None
          or getattr(cfg, "published", None) is not None, cfg, "encoder", cfg.encoder,
          "a pretrained model folder, a pretrain configuration or published weights")
    check(len(cfg.datasets) > 0, cfg, "datasets", cfg.datasets, "at least one data set")
    names = [d.name for d in cfg.datasets]
    check(len(set(names)) == len(names), cfg, "datasets", names, "distinct names")


@dataclasses.dataclass
class ClassifyConfig(Config):
    """Settings of ``jobs/classify_astromer.py``.

    Attributes:
        encoder: our own pretrained model folder (the ``own`` row), or the name of published
            weights (``astromer1-macho``); None pretrains one first with ``pretrain``. For
            :func:`fit_classifier` a published name that is not available here falls back to
            ``pretrain`` (saying so in one line).
        pretrain: the pretraining run used when ``encoder`` is None: a mapping, or the path
            of a pretraining YAML (relative to the working directory).
        published: published weights (a name such as ``astromer1-macho``, or a converted
            folder) for the ``published`` and ``published_ft`` rows; skipped, with the
            reason, when they are not available here. None: no such rows.
        finetune_epochs: epochs of the fine-tuning step of the published encoder (masked
            objective on each data set's non-test light curves); 0: no ``published_ft`` row.
        finetune_lr: its learning rate (the official fine-tuning uses Adam at 1e-5 with
            patience 20 and no epoch limit).
        finetune_batch_size: windows per step of the fine-tuning.
        embedding: ``band_mean`` (layer means averaged over an object's bands),
            ``band_concat`` (per-band vectors concatenated, bands in sorted order; a missing
            band is imputed with the training objects' mean) or ``band:NAME`` (one band).
        head_optimizer: ``adamw`` (with ``head_weight_decay``) or ``adam`` (the official
            downstream: Adam, lr 1e-5, early stopping with patience 40 epochs).
        random_forest: add the Random Forest on :mod:`astroray.features` (``rf`` row).
        datasets: the labelled data sets.
        samples_per_class: training objects per class of each setting; ``all`` takes every
            non-test object of each class (less its validation share).
        folds: independent draws of the training objects per setting.
        val_fraction: validation objects per class (early stopping) as a fraction of the
            training ones (at least 2).
        head_hidden: MLP widths of the classifier.
        head_steps: most optimizer steps of the classifier.
        head_lr: its learning rate (AdamW).
        head_dropout: dropout between the MLP layers.
        head_weight_decay: AdamW weight decay of the classifier.
        standardize: z-score each embedding feature with the training objects' statistics
            before the classifier (frozen features of different encoders differ in scale by
            orders of magnitude; without it a randomly initialised encoder's nearly constant
            features cannot be fitted at all). False: the raw layer means, as the official
            classifier takes them.
        eval_every: optimizer steps between validation checks (both models).
        patience: validation checks without improvement before stopping (both models).
        gru_hidden: GRU baseline width.
        gru_layers: GRU layers.
        gru_steps: most optimizer steps of the GRU.
        gru_lr: its learning rate.
        batch_size: objects (classifier) or windows (GRU) per step.
        actor_cpus: CPUs of the embedding actor.
        seed: seed of the folds and the random encoder.
    """

    encoder: str | None = None
    pretrain: PretrainConfig | str | None = None
    published: str | None = None
    finetune_epochs: int = 0
    finetune_lr: float = 1e-5
    finetune_batch_size: int = 64
    embedding: str = "band_mean"
    head_optimizer: str = "adamw"
    random_forest: bool = True
    datasets: tuple[ClassifyDataset, ...] = ()
    samples_per_class: tuple[int | str, ...] = (20, 100, 500)
    folds: int = 3
    val_fraction: float = 0.25
    head_hidden: tuple[int, ...] = (1024, 512, 256)
    head_steps: int = 2000
    head_lr: float = 1e-3
    head_dropout: float = 0.0
    head_weight_decay: float = 1e-4
    standardize: bool = True
    eval_every: int = 20
    patience: int = 10
    gru_hidden: int = 64
    gru_layers: int = 2
    gru_steps: int = 1000
    gru_lr: float = 2e-3
    batch_size: int = 64
    actor_cpus: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_encoder_and_datasets(self)
        self.samples_per_class = tuple(self.samples_per_class)
        self.head_hidden = tuple(self.head_hidden)
        check(len(self.samples_per_class) > 0 and all(
            n == "all" or (isinstance(n, int) and not isinstance(n, bool) and n > 0)
            for n in self.samples_per_class),
              self, "samples_per_class", self.samples_per_class, "positive integers or 'all'")
        check(self.embedding in ("band_mean", "band_concat") or (
            isinstance(self.embedding, str) and self.embedding.startswith("band:")
            and len(self.embedding) > 5), self, "embedding", self.embedding,
            "'band_mean', 'band_concat' or 'band:NAME'")
        check(self.head_optimizer in HEAD_OPTIMIZERS, self, "head_optimizer",
              self.head_optimizer, f"one of {HEAD_OPTIMIZERS}")
        check(isinstance(self.finetune_epochs, int) and self.finetune_epochs >= 0, self,
              "finetune_epochs", self.finetune_epochs, "a non-negative integer")
        check_positive_ints(self, "finetune_batch_size")
        check_positive_ints(self, "folds", "head_steps", "eval_every", "patience", "gru_hidden",
                            "gru_layers", "gru_steps", "batch_size")
        check(0.0 < self.val_fraction <= 1.0, self, "val_fraction", self.val_fraction,
              "a number in (0, 1]")
        for name in ("head_lr", "gru_lr", "actor_cpus", "finetune_lr"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and value > 0, self, name, value,
                  "a positive number")

    def smoke(self) -> ClassifyConfig:
        """This configuration shrunk to run in a few minutes on 2 CPUs."""
        datasets = []
        for d in self.datasets:
            synthetic = d.synthetic.replace(n=min(d.synthetic.n, 180)) if d.synthetic else None
            datasets.append(d.replace(synthetic=synthetic))
        pretrain = self.pretrain.smoke() if self.pretrain is not None else None
        from astroray.models.astromer.published import PUBLISHED

        encoder = (self.encoder if self.encoder and (Path(self.encoder).is_dir()
                                                     or self.encoder in PUBLISHED) else None)
        return self.replace(encoder=encoder, pretrain=pretrain if encoder is None else None,
                            datasets=tuple(datasets), samples_per_class=(10,), folds=2,
                            head_steps=60, eval_every=10, gru_steps=10, gru_hidden=16,
                            head_hidden=(64, 32), finetune_epochs=min(self.finetune_epochs, 1))


# ------------------------------------------------------------------------------------------
# Models trained here
# ------------------------------------------------------------------------------------------


class GRUClassifier(nn.Module):
    """The no-pretraining baseline: a GRU over (magnitude, log(1 + dt)) of each window.

    Args:
        num_classes: output classes.
        hidden: GRU width.
        layers: GRU layers.
        dropout: between GRU layers.
    """

    def __init__(self, num_classes: int, hidden: int = 64, layers: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        self.gru = nn.GRU(2, hidden, num_layers=layers, batch_first=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, times: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of windows (B, T) whose valid points come first."""
        dt = torch.diff(times, dim=1, prepend=times[:, :1]).clamp(min=0.0)
        x = torch.stack([values, torch.log1p(dt)], dim=-1) * mask[..., None]  # (B, T, 2)
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.gru(packed)  # h: (layers, B, H)
        return self.out(self.norm(h[-1]))


def _train_head(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
                num_classes: int, cfg: ClassifyConfig, seed: int) -> nn.Module:
    from astroray.models.astromer import AstromerClassifierHead

    torch.manual_seed(seed)
    head = AstromerClassifierHead(x.shape[1], x.shape[2], num_classes, hidden=cfg.head_hidden,
                                  dropout=cfg.head_dropout)
    if cfg.standardize:
        # z-score every feature with the statistics of this fold's labelled objects only.
        fit = np.concatenate([train, val])
        head.set_standardization(torch.from_numpy(x[fit].mean(axis=0)),
                                 torch.from_numpy(x[fit].std(axis=0)))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)

    def steps(model: nn.Module):
        order = train[torch.randperm(len(train), generator=gen).numpy()]
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo:lo + cfg.batch_size]
            yield nn.functional.cross_entropy(model(xt[idx]), yt[idx])

    def val_loss(model: nn.Module) -> float:
        return float(nn.functional.cross_entropy(model(xt[val]), yt[val]))

    return fit_early_stopping(head, steps, val_loss, max_steps=cfg.head_steps,
                              eval_every=cfg.eval_every, patience=cfg.patience, lr=cfg.head_lr,
                              weight_decay=(cfg.head_weight_decay
                                            if cfg.head_optimizer == "adamw" else 0.0))


def _gru_object_logits(model: nn.Module, windows: dict[str, torch.Tensor], rows: np.ndarray,
                       n_objects: int, batch: int = 512) -> torch.Tensor:
    """Mean window logits per object; ``rows`` = object index of every window."""
    logits = []
    with torch.no_grad():
        for lo in range(0, len(rows), batch):
            sl = slice(lo, lo + batch)
            logits.append(model(windows["times"][sl], windows["values"][sl],
                                windows["mask"][sl]))
    out = torch.cat(logits)
    sums = torch.zeros(n_objects, out.shape[1]).index_add_(0, torch.from_numpy(rows), out)
    counts = torch.bincount(torch.from_numpy(rows), minlength=n_objects).clamp(min=1)
    return sums / counts[:, None]


def _train_gru(windows: dict[str, torch.Tensor], win_obj: np.ndarray, y: np.ndarray,
               train: np.ndarray, val: np.ndarray, num_classes: int, cfg: ClassifyConfig,
               seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = GRUClassifier(num_classes, cfg.gru_hidden, cfg.gru_layers)
    yt = torch.from_numpy(y)
    train_win = np.flatnonzero(np.isin(win_obj, train))
    # Validation (checked often) reads the first window of each object; the test uses all.
    val_all = np.flatnonzero(np.isin(win_obj, val))
    val_win = val_all[np.unique(win_obj[val_all], return_index=True)[1]]
    gen = torch.Generator().manual_seed(seed)

    def steps(m: nn.Module):
        # One random window per training object and epoch (as pretraining takes one random
        # crop): long light curves do not outweigh short ones, and an epoch stays short.
        perm = train_win[torch.randperm(len(train_win), generator=gen).numpy()]
        _, first = np.unique(win_obj[perm], return_index=True)
        order = perm[first][torch.randperm(first.size, generator=gen).numpy()]
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo:lo + cfg.batch_size]
            logits = m(windows["times"][idx], windows["values"][idx], windows["mask"][idx])
            yield nn.functional.cross_entropy(logits, yt[win_obj[idx]])

    def val_loss(m: nn.Module) -> float:
        sub = {k: v[val_win] for k, v in windows.items()}
        logits = _gru_object_logits(m, sub, win_obj[val_win], len(y))[val]
        return float(nn.functional.cross_entropy(logits, yt[val]))

    return fit_early_stopping(model, steps, val_loss, max_steps=cfg.gru_steps,
                              eval_every=cfg.eval_every, patience=cfg.patience, lr=cfg.gru_lr)


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def _embed_table(table: pa.Table, encoder: str, *, random_init: bool, seed: int,
                 min_points: int, actor_cpus: float, embedding: str = "band_mean"
                 ) -> np.ndarray:
    """Layer means (N, S, D') of every row of ``table``, NaN where an object has no window.

    ``band_mean`` runs one Ray Data actor over the table (as bulk embedding does); the
    per-band modes embed the windows in this process and average them per object and band.
    ``D'`` is ``D`` times the number of bands for ``band_concat``.
    """
    if embedding == "band_mean":
        return _embed_with_ray(table, encoder, random_init=random_init, seed=seed,
                               min_points=min_points, actor_cpus=actor_cpus)
    from astroray.data._io import numpy_batch
    from astroray.infer.astromer import AstromerEmbedder

    embedder = AstromerEmbedder(encoder, random_init=random_init, seed=seed,
                                min_points=min_points)
    windows = embedder.windows(numpy_batch(table))
    means = embedder.encode_windows(windows)  # (W, S, D)
    bands = (sorted({str(b) for b in windows["band"]}) if embedding == "band_concat"
             else [embedding.split(":", 1)[1]])
    n, (_, s_, d) = table.num_rows, means.shape
    out = np.full((n, s_, d * len(bands)), np.nan, dtype=np.float32)
    band = np.asarray(windows["band"]).astype(str)
    for k, b in enumerate(bands):
        sel = band == b
        rows = windows["row"][sel]
        sums = np.zeros((n, s_, d))
        np.add.at(sums, rows, means[sel])
        counts = np.bincount(rows, minlength=n)
        has = counts > 0
        out[has, :, k * d:(k + 1) * d] = sums[has] / counts[has, None, None]
    return out


def _embed_with_ray(table: pa.Table, encoder: str, *, random_init: bool, seed: int,
                    min_points: int, actor_cpus: float) -> np.ndarray:
    """Layer means (N, S, D) of every row of ``table`` with a Ray Data actor."""
    import ray

    from astroray.infer.astromer import AstromerEmbedder, read_embeddings

    ds = ray.data.from_arrow(table).map_batches(
        AstromerEmbedder, batch_format="numpy", batch_size=128,
        fn_constructor_kwargs={"model": encoder, "random_init": random_init, "seed": seed,
                               "min_points": min_points},
        compute=ray.data.ActorPoolStrategy(size=1), num_cpus=actor_cpus)
    ds.context.enable_progress_bars = False
    refs = ds.to_arrow_refs()
    out = pa.concat_tables(ray.get(refs))
    feats = read_embeddings(out, "layer_embeddings")
    index = {oid: i for i, oid in enumerate(out.column("object_id").to_pylist())}
    return feats[[index[o] for o in table.column("object_id").to_pylist()]]


def masked_r2(encoder: str, table: pa.Table, *, min_points: int, seed: int = 0,
              random_init: bool = False, batch_size: int = 128) -> dict[str, float]:
    """An encoder's masked-magnitude RMSE / R^2 on every window of ``table``'s objects.

    Windows are cut with the encoder's own input convention; the masks are the encoder's
    pretraining masks (its probe / keep / random fractions) drawn with a fixed seed, so every
    encoder is scored on comparable points. ``rmse_zero`` is predicting the window mean.
    """
    from astroray.data._io import numpy_batch
    from astroray.data.windows import LightCurveWindows
    from astroray.infer.astromer import load_encoder
    from astroray.models.astromer import mask_inputs
    from astroray.train.metrics import MaskedRegressionMeter

    model = load_encoder(encoder, random_init=random_init, seed=seed)
    cfg = model.config
    w = LightCurveWindows(cfg.window_size, mode="sequential", min_points=min_points,
                          time_origin=cfg.time_origin)(numpy_batch(table))
    meter = MaskedRegressionMeter()
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for lo in range(0, len(w["times"]), batch_size):
            b = {k: torch.from_numpy(w[k][lo:lo + batch_size])
                 for k in ("times", "values", "mask")}
            m = mask_inputs(b["values"], b["mask"], probe_fraction=cfg.probe_fraction,
                            keep_fraction=cfg.keep_fraction,
                            random_fraction=cfg.random_fraction, generator=gen)
            out = model(b["times"], m.values, b["mask"], hidden=m.hidden)
            meter.update(out.prediction, b["values"], m.probed)
    r = meter.compute()
    return {k: round(float(r[k]), 4) for k in ("rmse", "r2", "rmse_zero")} | {"n": r["n"]}


def _impute(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Missing features (an object without a band) take the fitting objects' mean (0 if none)."""
    if not np.isnan(x).any():
        return x
    with np.errstate(all="ignore"):
        mean = np.nanmean(x[fit], axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    return np.where(np.isnan(x), mean[None], x).astype(np.float32)


def _finetune(encoder: str, table: pa.Table, test: np.ndarray, cfg: ClassifyConfig,
              ds_cfg: ClassifyDataset, out: Path) -> dict[str, Any]:
    """The official protocol's fine-tuning step: the masked objective on the non-test objects.

    Labels are not used; the test objects' light curves are never seen. A finished run in
    ``out`` is reused (the pretraining driver resumes).
    """
    import pyarrow.parquet as pq

    from astroray.train.astromer import LC_COLUMNS, pretrain

    keep = np.setdiff1d(np.arange(table.num_rows), test)
    folder = out / "input"
    folder.mkdir(parents=True, exist_ok=True)
    sub = table.take(pa.array(keep)).select([c for c in LC_COLUMNS if c in table.column_names])
    sub = sub.append_column("survey", pa.array([ds_cfg.name] * sub.num_rows, pa.string()))
    pq.write_table(sub, folder / "part-0.parquet")
    run = PretrainConfig(model="astromer-v1-official", init_from=encoder,
                         paths=(str(folder),), min_points=ds_cfg.min_points,
                         val_fraction=0.1, epochs=cfg.finetune_epochs,
                         batch_size=cfg.finetune_batch_size, lr=cfg.finetune_lr,
                         warmup_steps=0, name="finetune", seed=cfg.seed)
    result = pretrain(run, out)
    return {"dir": result["model"]["dir"], "metrics": result["metrics"],
            "objects": int(keep.size)}


def _draw_fold(y: np.ndarray, pool: np.ndarray, classes: list[str], n: int | str,
               val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    train, val = [], []
    for c in range(len(classes)):
        idx = rng.permutation(pool[y[pool] == c])
        if n == "all":
            n_val = max(2, int(round(val_fraction * idx.size / (1.0 + val_fraction))))
            train.extend(idx[n_val:])
            val.extend(idx[:n_val])
        else:
            n_val = max(2, int(round(val_fraction * n)))
            train.extend(idx[:n])
            val.extend(idx[n:n + n_val])
    return np.array(train), np.array(val)


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def _evaluate_dataset(ds_cfg: ClassifyDataset, cfg: ClassifyConfig,
                      encoders: dict[str, tuple[str, bool]], workdir: Path,
                      unavailable: dict[str, str]) -> dict[str, Any]:
    """Every row of the table for one data set.

    Args:
        ds_cfg: the data set.
        cfg: the evaluation's settings.
        encoders: ``{method: (model folder, random init)}`` of the frozen-encoder rows
            available; ``published_ft`` is made here from ``published``.
        workdir: the data set's working folder (its data and fine-tuning run).
        unavailable: ``{method: why}`` of the rows that cannot run.
    """
    from sklearn.metrics import confusion_matrix

    from astroray.features import table_features
    from astroray.models.baselines import make_baseline
    from astroray.train.metrics import macro_f1, mean_spread

    windowing = encoders.get("published", encoders.get("own", encoders.get("untrained")))[0]
    data = window_labelled(ds_cfg, windowing, workdir / "data")
    if isinstance(data, dict):
        return data
    table, y, classes, test, pool = data.table, data.y, data.classes, data.test, data.pool
    win_obj, info, dropped = data.win_obj, data.info, data.dropped
    win_t = {k: torch.from_numpy(v) for k, v in data.windows.items()}
    encoders = dict(encoders)
    finetune = None
    skipped = dict(unavailable)
    if "published" in encoders and cfg.finetune_epochs > 0:
        finetune = _finetune(encoders["published"][0], table, test, cfg, ds_cfg,
                             workdir / "finetune")
        encoders["published_ft"] = (finetune["dir"], False)
    elif "published" in encoders:
        skipped["published_ft"] = "finetune_epochs is 0"
    t0 = time.perf_counter()
    feats = {m: _embed_table(table, folder, random_init=rand, seed=cfg.seed,
                             min_points=ds_cfg.min_points, actor_cpus=cfg.actor_cpus,
                             embedding=cfg.embedding)
             for m, (folder, rand) in encoders.items()}
    embed_seconds = time.perf_counter() - t0
    logger.info("%s: %d objects, %d windows embedded by %d encoders in %.0f s", ds_cfg.name,
                len(y), len(win_obj), len(feats), embed_seconds)
    # Masked-magnitude R^2 of each encoder on the test objects (never trained on by the
    # fine-tuning step; our own pretraining data is set apart from the labelled sets).
    test_table = table.take(pa.array(test))
    r2 = {m: masked_r2(folder, test_table, min_points=ds_cfg.min_points, seed=cfg.seed,
                       random_init=rand) for m, (folder, rand) in encoders.items()}
    methods = [m for m in METHODS if m in feats or m == "gru"
               or (m == "rf" and cfg.random_forest)]
    features = None
    if "rf" in methods:
        t = time.perf_counter()
        features, _ = table_features(table, min_points=ds_cfg.min_points)
        info["feature_seconds"] = round(time.perf_counter() - t, 2)
    settings: dict[str, Any] = {}
    confusions: dict[str, np.ndarray] = {}
    kept: dict[str, Any] = {}  # the first fold's head at the largest setting run: saved
    head_method = next((m for m in ("published", "own", "untrained") if m in feats), None)
    for n in cfg.samples_per_class:
        available = {classes[c]: int((y[pool] == c).sum()) for c in range(len(classes))}
        if n != "all":
            n_val = max(2, int(round(cfg.val_fraction * n)))
            short = {k: v for k, v in available.items() if v < n + n_val}
            if short:
                settings[str(n)] = {"skipped": f"needs {n} + {n_val} (validation) objects per "
                                               f"class outside the test set; have {short}"}
                continue
        scores: dict[str, list[float]] = {m: [] for m in methods}
        seconds: dict[str, float] = dict.fromkeys(methods, 0.0)
        cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
        train_sizes = []
        for fold in range(cfg.folds):
            train, val = _draw_fold(y, pool, classes, n, cfg.val_fraction,
                                    np.random.default_rng((cfg.seed, 0 if n == "all" else n,
                                                           fold)))
            train_sizes.append(int(train.size))
            seed = cfg.seed * 1000 + fold
            for method in (m for m in methods if m in feats):
                t = time.perf_counter()
                x = _impute(feats[method], np.concatenate([train, val]))
                head = _train_head(x, y, train, val, len(classes), cfg, seed)
                with torch.no_grad():
                    pred = head(torch.from_numpy(x[test])).argmax(1).numpy()
                scores[method].append(macro_f1(y[test], pred))
                seconds[method] += time.perf_counter() - t
                if method == head_method:
                    cm += confusion_matrix(y[test], pred, labels=list(range(len(classes))))
                    if fold == 0 and cfg.embedding != "band_concat":
                        kept = {"head": head, "samples_per_class": n,
                                "encoder": encoders[method][0]}
            t = time.perf_counter()
            gru = _train_gru(win_t, win_obj, y, train, val, len(classes), cfg, seed)
            test_win = np.flatnonzero(np.isin(win_obj, test))
            logits = _gru_object_logits(gru, {k: v[test_win] for k, v in win_t.items()},
                                        win_obj[test_win], len(y))
            scores["gru"].append(macro_f1(y[test], logits[test].argmax(1).numpy()))
            seconds["gru"] += time.perf_counter() - t
            if features is not None:
                t = time.perf_counter()
                rf = make_baseline("rf", seed=seed).fit(features[train], y[train])
                scores["rf"].append(macro_f1(y[test], rf.predict(features[test])))
                seconds["rf"] += time.perf_counter() - t
        settings[str(n)] = {m: {**mean_spread(scores[m]), "seconds": round(seconds[m], 2)}
                            for m in methods}
        settings[str(n)]["train_objects"] = train_sizes
        logger.info("%s, %s per class: macro F1 %s", ds_cfg.name, n, ", ".join(
            f"{m} {settings[str(n)][m]['mean']:.3f}" for m in methods))
        confusions[str(n)] = cm
    return {
        "classes": classes, "objects": int(len(y)), "dropped_without_windows": dropped,
        "test_objects": int(len(test)),
        "test_per_class": {classes[c]: int((y[test] == c).sum()) for c in range(len(classes))},
        "windows": int(len(win_obj)), "embed_seconds": round(embed_seconds, 2),
        "settings": settings, "data": info, "methods": methods, "skipped_methods": skipped,
        "masked_r2": r2, "finetune": finetune, "confusion_method": head_method,
        "confusion": {k: v.tolist() for k, v in confusions.items()},
        "_head": kept,
    }


def save_classifier(encoder: str, head: nn.Module, classes: list[str], path: str | Path, *,
                    min_points: int, embedding: str = "band_mean") -> Path:
    """Save a trained head with its pretrained encoder as one ``astromer-classifier`` folder.

    The folder is what ``astroray infer`` and the Serve deployment load; a head trained on one
    band (``band:NAME``) keeps that band only.
    """
    from astroray.infer.astromer import load_encoder
    from astroray.models.astromer import AstromerClassifier

    if embedding == "band_concat":
        raise ValueError("a classifier on concatenated per-band embeddings cannot be saved "
                         "for inference (use band_mean or band:NAME)")
    bands = [embedding.split(":", 1)[1]] if embedding.startswith("band:") else None
    model = AstromerClassifier.from_parts(load_encoder(encoder), head, classes,
                                          min_points=min_points, bands=bands)
    return model.save_pretrained(path)


def _published_folder(name: str | None) -> tuple[str | None, str | None]:
    """(converted folder, None) of published weights, or (None, why not)."""
    if name is None:
        return None, "no published weights asked for (published: null)"
    if Path(name).is_dir():
        return str(name), None
    from astroray.models.astromer.published import PUBLISHED, available_published

    if name not in PUBLISHED:
        return None, f"{name!r} is neither a model folder nor published weights"
    folder = available_published(name)
    if folder is None:
        return None, (f"the published weights {name!r} are not available here (no cache, no "
                      f"local copy; set {PUBLISHED[name].env_var})")
    return str(folder), None


def classify(config: ClassifyConfig, out: str | Path) -> dict[str, Any]:
    """Run the few-shot evaluation; writes ``out/confusion_<dataset>.png`` when it can.

    When ``config.encoder`` is None and a ``pretrain`` configuration is given, our own
    encoder is pretrained first (``out/pretrain``).

    Returns:
        ``{"metrics", "table", "r2_table", "datasets", "encoders", "pretrain", "figures"}``:
        ``table`` has one row per (data set, setting) with the macro F1 mean and spread of
        every method; ``r2_table`` one row per (data set, encoder) with its masked R^2 on
        the test objects.
    """
    from astroray.runtime import init_ray
    from astroray.train.astromer import pretrain

    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pretrained = None
    encoders: dict[str, tuple[str, bool]] = {}
    unavailable: dict[str, str] = {}
    published, why = _published_folder(config.published)
    if published is not None:
        encoders["published"] = (published, False)
    else:
        unavailable["published"] = unavailable["published_ft"] = why or ""
    own = config.encoder
    if own is None and config.pretrain is not None:
        pretrained = pretrain(config.pretrain, out / "pretrain")
        own = pretrained["model"]["dir"]
    elif own is not None and not Path(own).is_dir():
        folder, why = _published_folder(own)
        if folder is None:
            raise FileNotFoundError(f"ClassifyConfig.encoder = {own!r}: no such model folder "
                                    f"({why})")
        own = folder
    if own is not None:
        encoders["own"] = (own, False)
    else:
        unavailable["own"] = "no encoder of our own (encoder and pretrain are null)"
    # The untrained row: the published architecture with its own (official) initialisation.
    encoders["untrained"] = (published or own, True)
    results, table, r2_table, figures = {}, [], [], {}
    for ds_cfg in config.datasets:
        started = time.perf_counter()
        res = _evaluate_dataset(ds_cfg, config, encoders, out / "data" / ds_cfg.name,
                                unavailable)
        res["seconds"] = round(time.perf_counter() - started, 2)
        kept = res.pop("_head", None)
        if kept:
            res["classifier"] = {
                "dir": str(save_classifier(kept["encoder"], kept["head"], res["classes"],
                                           out / f"classifier_{ds_cfg.name}",
                                           min_points=ds_cfg.min_points,
                                           embedding=config.embedding)),
                "encoder": kept["encoder"], "samples_per_class": kept["samples_per_class"],
                "fold": 0}
        results[ds_cfg.name] = res
        for method, r in res.get("masked_r2", {}).items():
            r2_table.append({"dataset": ds_cfg.name, "encoder": method, **r})
        for n, row in res.get("settings", {}).items():
            n_out: int | str = n if n == "all" else int(n)
            if "skipped" in row:
                table.append({"dataset": ds_cfg.name, "samples_per_class": n_out,
                              "skipped": row["skipped"]})
                continue
            entry: dict[str, Any] = {"dataset": ds_cfg.name, "samples_per_class": n_out,
                                     "train_objects": row["train_objects"]}
            for m in res["methods"]:
                entry[f"{m}_f1"] = round(row[m]["mean"], 4)
                entry[f"{m}_f1_std"] = round(row[m]["std"], 4)
            table.append(entry)
        if res.get("confusion"):
            fig = plot_confusion_matrix(
                {f"{n} per class": cm for n, cm in res["confusion"].items()},
                res["classes"], out / f"confusion_{ds_cfg.name}.png",
                f"{ds_cfg.name}: {res['confusion_method']} Astromer + MLP (test set, summed "
                "over folds)")
            if fig is not None:
                figures[ds_cfg.name] = str(fig)
    metrics = {f"{r['dataset']}@{r['samples_per_class']}": {
        m: f"{r[f'{m}_f1']:.3f} +- {r[f'{m}_f1_std']:.3f}" for m in METHODS if f"{m}_f1" in r}
        for r in table if "skipped" not in r}
    return {"metrics": metrics, "table": table, "r2_table": r2_table, "datasets": results,
            "encoders": {m: {"dir": f, "random_init": r} for m, (f, r) in encoders.items()},
            "unavailable": unavailable,
            "pretrain": pretrained and {k: pretrained[k] for k in ("metrics", "resume")},
            "figures": figures}


def format_tables(summary: dict[str, Any]) -> str:
    """The macro F1 and masked R^2 tables of :func:`classify` as Markdown."""
    labels = {"published": "published, frozen", "published_ft": "published + fine-tuning",
              "own": "our pretraining", "untrained": "untrained (official init)",
              "gru": "GRU from scratch", "rf": "Random Forest (features)"}
    lines = []
    for name, res in summary["datasets"].items():
        methods = res.get("methods")
        if not methods:
            lines += [f"**{name}**: skipped ({res.get('skipped', 'no data')})", ""]
            continue
        rows = [r for r in summary["table"] if r["dataset"] == name]
        settings = [str(r["samples_per_class"]) for r in rows]
        lines.append(f"**{name}** ({res['objects']} objects, {res['test_objects']} in the test "
                     f"set; macro F1, mean ± std over folds; per class: {', '.join(settings)})")
        lines.append("")
        lines.append("| method | " + " | ".join(f"{s} per class" for s in settings) + " |")
        lines.append("| --- |" + " --- |" * len(settings))
        for m in METHODS:
            if m not in methods:
                if m in res.get("skipped_methods", {}):
                    lines.append(f"| {labels[m]} | " + " | ".join(
                        "n/a" for _ in settings) + f" |  <!-- {res['skipped_methods'][m]} -->")
                continue
            cells = []
            for r in rows:
                cells.append("skipped" if "skipped" in r else
                             f"{r[f'{m}_f1']:.3f} ± {r[f'{m}_f1_std']:.3f}")
            lines.append(f"| {labels[m]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Masked-magnitude R^2 on the test objects' windows (predicting the window "
                 "mean gives 0):")
    lines.append("")
    lines.append("| data set | encoder | RMSE | RMSE of the window mean | R^2 |")
    lines.append("| --- | --- | --- | --- | --- |")
    for r in summary["r2_table"]:
        lines.append(f"| {r['dataset']} | {labels[r['encoder']]} | {r['rmse']:.4f} | "
                     f"{r['rmse_zero']:.4f} | {r['r2']:.3f} |")
    return "\n".join(lines) + "\n"


def fit_classifier(config: ClassifyConfig, out: str | Path) -> dict[str, Any]:
    """Train one Astromer classifier for catalogues and serving; saves ``out/model``.

    The encoder is ``config.encoder`` (or one pretrained first with ``config.pretrain``); the
    head is trained on every labelled object of the first data set, less a stratified
    ``test_fraction`` held out to report macro F1 and accuracy, and a validation share of
    the rest for early stopping.

    Returns:
        ``{"dir", "classes", "train", "test", "test_macro_f1", "test_accuracy", "encoder",
        "pretrain"}``.
    """
    from astroray.runtime import init_ray
    from astroray.train.astromer import pretrain

    init_ray()
    out = Path(out).resolve()
    pretrained, encoder = None, config.encoder
    source = "given"
    if encoder is not None and not Path(encoder).is_dir():
        folder, why = _published_folder(encoder)
        if folder is not None:
            print(f"encoder: the published {encoder} weights ({folder})")
            source = f"published {encoder}"
            encoder = folder
        elif config.pretrain is not None:
            print(f"encoder: {why}; pretraining {config.pretrain.model} on the spot instead")
            encoder = None
        else:
            raise FileNotFoundError(f"ClassifyConfig.encoder = {encoder!r}: {why}")
    if encoder is None:
        if config.pretrain is None:
            raise ValueError("fit_classifier needs an encoder or a pretrain configuration")
        pretrained = pretrain(config.pretrain, out / "pretrain")
        encoder = pretrained["model"]["dir"]
        source = f"pretrained on the spot ({config.pretrain.model})"
    ds_cfg = config.datasets[0]
    table, info = load_labelled(ds_cfg, out / "data" / ds_cfg.name)
    if table is None or table.num_rows == 0:
        raise ValueError(f"ClassifyDataset {ds_cfg.name!r}: no labelled objects ({info})")
    classes = sorted(set(table.column("label").to_pylist()))
    y = np.array([classes.index(v) for v in table.column("label").to_pylist()], np.int64)
    feats = _embed_table(table, encoder, random_init=False, seed=config.seed,
                         min_points=ds_cfg.min_points, actor_cpus=config.actor_cpus,
                         embedding=config.embedding)
    usable = np.flatnonzero(np.isfinite(feats).any(axis=(1, 2)))  # objects with windows
    rng = np.random.default_rng(ds_cfg.seed)
    test = usable[stratified_test(y[usable], ds_cfg.test_fraction, ds_cfg.test_per_class,
                                   rng)]
    rest = rng.permutation(np.setdiff1d(usable, test))
    val = rest[stratified_test(y[rest], config.val_fraction, None, rng)]
    train = np.setdiff1d(rest, val)
    feats = _impute(feats, np.concatenate([train, val]))
    head = _train_head(feats, y, train, val, len(classes), config, config.seed)
    with torch.no_grad():
        pred = head(torch.from_numpy(feats[test])).argmax(1).numpy()
    path = save_classifier(encoder, head, classes, out / "model", min_points=ds_cfg.min_points,
                           embedding=config.embedding)
    with torch.no_grad():
        val_prob = torch.softmax(head(torch.from_numpy(feats[val])), 1).max(1).values.numpy()
    metrics = held_out_metrics(y[test], pred, classes)
    _write_card(path, table, classes, {"train": train, "validation": val, "test": test}, y,
                metrics, val_prob, ds_cfg=ds_cfg, encoder=encoder, source=source,
                embedding=config.embedding)
    return {"dir": str(path), "classes": classes, "train": int(len(train)),
            "encoder_source": source,
            "validation": int(len(val)), "test": int(len(test)),
            "test_macro_f1": metrics["macro_f1"],
            "test_accuracy": metrics["accuracy"], "encoder": encoder,
            "data": info,
            "pretrain": pretrained and {k: pretrained[k] for k in ("metrics", "resume")}}


def held_out_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]
                     ) -> dict[str, Any]:
    """Accuracy, macro F1, per-class F1 and the confusion matrix of a held-out split."""
    from sklearn.metrics import confusion_matrix, f1_score

    labels = list(range(len(classes)))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {"objects": int(len(y_true)),
            "accuracy": round(float(np.mean(y_true == y_pred)), 4) if len(y_true) else None,
            "macro_f1": round(float(np.mean(per_class)), 4),
            "f1": {c: round(float(f), 4) for c, f in zip(classes, per_class, strict=True)},
            "confusion": {"labels": classes,
                          "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()}}


def _write_card(folder: Path, table: pa.Table, classes: list[str],
                splits: dict[str, np.ndarray], y: np.ndarray, metrics: dict[str, Any],
                val_prob: np.ndarray, *, ds_cfg: ClassifyDataset, encoder: str, source: str,
                embedding: str) -> None:
    """``model_card.json`` + ``split.parquet`` of a classifier trained by fit_classifier."""
    from astroray.models.card import CONFIDENCE_QUANTILE, light_curve_domain, write_model_card

    seen = np.concatenate([splits["train"], splits["validation"]])
    domain = light_curve_domain(table.take(pa.array(seen)))
    domain["confidence"] = {
        "score": "1 - predicted_prob", "quantile": CONFIDENCE_QUANTILE,
        "threshold": (round(float(np.quantile(1.0 - val_prob, CONFIDENCE_QUANTILE)), 4)
                      if len(val_prob) else None),
        "on": f"{len(val_prob)} validation objects"}
    surveys = np.asarray(table.column("survey").to_pylist(), dtype=object)
    ids = np.asarray(table.column("object_id").to_pylist(), dtype=object)
    card = {
        "model_type": "astromer-classifier", "task": "classification", "classes": classes,
        "encoder": {"path": encoder, "source": source, "embedding": embedding},
        "training_data": {
            "dataset": ds_cfg.name, "paths": [*ds_cfg.paths, *ds_cfg.optional_paths],
            "surveys": dict(sorted(Counter(surveys[seen].tolist()).items())),
            "bands": domain["bands"],
            "class_counts": {name: {c: int((y[idx] == k).sum()) for k, c in enumerate(classes)}
                             for name, idx in splits.items()}},
        "held_out": {"split": "test", **metrics},
        "domain": domain,
    }
    write_model_card(folder, card, {name: list(zip(surveys[idx], ids[idx], strict=True))
                                    for name, idx in splits.items()})
