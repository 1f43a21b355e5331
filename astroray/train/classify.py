"""Astromer classifiers: their settings, the head, fitting, saving.

A frozen encoder turns every light curve into the masked time-means of its input embedding
and of every block output (averaged over the object's windows); a head learns softmax weights
over these representations (the "weighted per-sample embedding") and an MLP (1024-512-256,
ReLU, LayerNorm). :func:`fit_classifier` trains one such classifier on a labelled data set for
catalogues and serving and saves it with :func:`save_classifier`; :class:`GRUClassifier` is
the papers' no-pretraining baseline model. The embedding of a table is
:func:`astroray.infer.astromer.embed_table`; the imputation of missing per-band features and
the lookup of published weights are the Astromer family's
(:func:`~astroray.models.astromer.impute_embeddings`,
:func:`~astroray.models.astromer.published_folder`).

This is library code: ``astroray infer`` (a catalogue trains its classifier from a
:class:`ClassifyConfig`), and the demo use it. The few-shot protocol built on
it (folds, baselines, tables: ``jobs/classify_astromer.py``) is the study
:mod:`astroray.studies.few_shot`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from astroray.config import Config, check, check_positive_ints
from astroray.infer.astromer import embed_table
from astroray.metrics import confusion_matrix, macro_f1, per_class_f1
from astroray.models.astromer import (
    AstromerClassifier,
    AstromerClassifierHead,
    impute_embeddings,
    load_encoder,
    published_folder,
)
from astroray.models.astromer.published import PUBLISHED
from astroray.models.card import CONFIDENCE_QUANTILE, light_curve_domain, write_model_card
from astroray.runtime import init_ray
from astroray.train.astromer import PretrainConfig, pretrain
from astroray.train.labelled import (
    ClassifyDataset,
    fit_early_stopping,
    load_labelled,
    stratified_test,
)

__all__ = ["ClassifyConfig", "ClassifyDataset", "GRUClassifier", "fit_classifier",
           "held_out_metrics", "save_classifier", "train_head"]

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
        datasets = [d.smoke(synthetic_n=180) for d in self.datasets]
        pretrain = self.pretrain.smoke() if self.pretrain is not None else None

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


def train_head(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
               num_classes: int, cfg: ClassifyConfig, seed: int) -> nn.Module:
    """Train the Astromer classifier head on frozen embeddings, with early stopping.

    The head (:class:`~astroray.models.astromer.AstromerClassifierHead`: weighted per-sample
    embedding and MLP) is fitted by cross-entropy on the ``train`` objects and stopped on the
    loss of the ``val`` objects, with ``cfg``'s optimiser settings.

    Args:
        x: (N, S, D) embeddings of every object, finite (see
            :func:`~astroray.models.astromer.impute_embeddings`).
        y: (N,) class indices.
        train: indices of the training objects.
        val: indices of the validation objects (early stopping; with ``train`` they give the
            standardisation statistics when ``cfg.standardize``).
        num_classes: output classes.
        cfg: the head's settings (``head_hidden``, ``head_dropout``, ``standardize``,
            ``batch_size``, ``head_steps``, ``eval_every``, ``patience``, ``head_lr``,
            ``head_optimizer``, ``head_weight_decay``).
        seed: seed of the initialisation and of the batch order.

    Returns:
        The trained head (the state of the best validation loss).
    """
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


# ------------------------------------------------------------------------------------------
# Fitting and saving
# ------------------------------------------------------------------------------------------


def save_classifier(encoder: str, head: nn.Module, classes: list[str], path: str | Path, *,
                    min_points: int, embedding: str = "band_mean") -> Path:
    """Save a trained head with its pretrained encoder as one ``astromer-classifier`` folder.

    The folder is what ``astroray infer`` and the Serve deployment load; a head trained on one
    band (``band:NAME``) keeps that band only.
    """
    if embedding == "band_concat":
        raise ValueError("a classifier on concatenated per-band embeddings cannot be saved "
                         "for inference (use band_mean or band:NAME)")
    bands = [embedding.split(":", 1)[1]] if embedding.startswith("band:") else None
    model = AstromerClassifier.from_parts(load_encoder(encoder), head, classes,
                                          min_points=min_points, bands=bands)
    return model.save_pretrained(path)


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
    init_ray()
    out = Path(out).resolve()
    pretrained, encoder = None, config.encoder
    source = "given"
    if encoder is not None and not Path(encoder).is_dir():
        folder, why = published_folder(encoder)
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
    feats = embed_table(table, encoder, random_init=False, seed=config.seed,
                        min_points=ds_cfg.min_points, actor_cpus=config.actor_cpus,
                        embedding=config.embedding)
    usable = np.flatnonzero(np.isfinite(feats).any(axis=(1, 2)))  # objects with windows
    rng = np.random.default_rng(ds_cfg.seed)
    test = usable[stratified_test(y[usable], ds_cfg.test_fraction, ds_cfg.test_per_class,
                                   rng)]
    rest = rng.permutation(np.setdiff1d(usable, test))
    val = rest[stratified_test(y[rest], config.val_fraction, None, rng)]
    train = np.setdiff1d(rest, val)
    feats = impute_embeddings(feats, np.concatenate([train, val]))
    head = train_head(feats, y, train, val, len(classes), config, config.seed)
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
    labels = list(range(len(classes)))
    per_class = per_class_f1(y_true, y_pred, labels)
    return {"objects": int(len(y_true)),
            "accuracy": round(float(np.mean(y_true == y_pred)), 4) if len(y_true) else None,
            "macro_f1": round(macro_f1(y_true, y_pred, labels), 4),
            "f1": {c: round(float(f), 4) for c, f in zip(classes, per_class, strict=True)},
            "confusion": {"labels": classes,
                          "matrix": confusion_matrix(y_true, y_pred,
                                                             labels)[0].tolist()}}


def _write_card(folder: Path, table: pa.Table, classes: list[str],
                splits: dict[str, np.ndarray], y: np.ndarray, metrics: dict[str, Any],
                val_prob: np.ndarray, *, ds_cfg: ClassifyDataset, encoder: str, source: str,
                embedding: str) -> None:
    """``model_card.json`` + ``split.parquet`` of a classifier trained by fit_classifier."""
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
