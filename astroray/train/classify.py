"""Few-shot light-curve classification on Astromer embeddings, against two baselines.

Protocol (Astromer 1 and 2 papers): a frozen encoder turns every light curve into the masked
time-means of its input embedding and of every block output (averaged over the object's
windows and bands); a classifier learns softmax weights over these representations (the
"weighted per-sample embedding") and an MLP (1024-512-256, ReLU, LayerNorm). It is trained on
``n`` = 20 / 100 / 500 labelled objects per class, in 3 folds (independent draws of the
training objects), and scored by macro F1 on a fixed test set, split by object. Baselines:

* ``astromer_random``: the same classifier on an untrained (randomly initialised) encoder of
  the same architecture, which isolates what pretraining contributed;
* ``gru``: a 2-layer GRU trained from scratch on the windows (the papers' no-pretraining
  baseline; one random window per object and epoch), with object predictions averaged over
  all of an object's windows.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from astroray.config import Config, check, check_inputs, check_positive_ints
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.eval.plots import plot_confusion_matrix
from astroray.train._labelled import (
    fit_early_stopping,
    load_labelled,
    stratified_test,
    window_labelled,
)
from astroray.train.astromer import PretrainConfig

__all__ = ["ClassifyConfig", "ClassifyDataset", "GRUClassifier", "classify", "fit_classifier",
           "save_classifier"]

logger = logging.getLogger(__name__)

METHODS = ("astromer", "astromer_random", "gru")


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
    min_points: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.classes is not None:
            self.classes = tuple(self.classes)
        check(isinstance(self.name, str) and self.name != "" and "/" not in self.name, self,
              "name", self.name, "a non-empty name without '/'")
        check_inputs(self)
        check(isinstance(self.label_map, dict), self, "label_map", self.label_map,
              "a mapping of label renames")
        check(0.0 < self.test_fraction < 1.0, self, "test_fraction", self.test_fraction,
              "a number in (0, 1)")
        check(self.test_per_class is None or (isinstance(self.test_per_class, int)
                                              and self.test_per_class > 0),
              self, "test_per_class", self.test_per_class, "a positive integer or null")
        check(isinstance(self.min_points, int) and self.min_points >= 1, self, "min_points",
              self.min_points, "an integer >= 1")


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
    check(cfg.encoder is not None or cfg.pretrain is not None, cfg, "encoder", cfg.encoder,
          "a pretrained model folder, or a pretrain configuration")
    check(len(cfg.datasets) > 0, cfg, "datasets", cfg.datasets, "at least one data set")
    names = [d.name for d in cfg.datasets]
    check(len(set(names)) == len(names), cfg, "datasets", names, "distinct names")


@dataclasses.dataclass
class ClassifyConfig(Config):
    """Settings of ``jobs/classify_astromer.py``.

    Attributes:
        encoder: a pretrained model folder; None pretrains one first with ``pretrain``.
        pretrain: the pretraining run used when ``encoder`` is None: a mapping, or the path
            of a pretraining YAML (relative to the working directory).
        datasets: the labelled data sets.
        samples_per_class: training objects per class of each setting.
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
            features cannot be fitted at all).
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
    datasets: tuple[ClassifyDataset, ...] = ()
    samples_per_class: tuple[int, ...] = (20, 100, 500)
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
        check(len(self.samples_per_class) > 0 and all(isinstance(n, int) and n > 0
                                                      for n in self.samples_per_class),
              self, "samples_per_class", self.samples_per_class, "positive integers")
        check_positive_ints(self, "folds", "head_steps", "eval_every", "patience", "gru_hidden",
                            "gru_layers", "gru_steps", "batch_size")
        check(0.0 < self.val_fraction <= 1.0, self, "val_fraction", self.val_fraction,
              "a number in (0, 1]")
        for name in ("head_lr", "gru_lr", "actor_cpus"):
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
        encoder = self.encoder if self.encoder and Path(self.encoder).is_dir() else None
        return self.replace(encoder=encoder, pretrain=pretrain if encoder is None else None,
                            datasets=tuple(datasets), samples_per_class=(10,), folds=2,
                            head_steps=60, eval_every=10, gru_steps=10, gru_hidden=16,
                            head_hidden=(64, 32))


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
                              weight_decay=cfg.head_weight_decay)


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


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def _evaluate_dataset(ds_cfg: ClassifyDataset, cfg: ClassifyConfig, encoder: str,
                      workdir: Path) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    from astroray.train.metrics import macro_f1, mean_spread

    data = window_labelled(ds_cfg, encoder, workdir)
    if isinstance(data, dict):
        return data
    table, y, classes, test, pool = data.table, data.y, data.classes, data.test, data.pool
    win_obj, info, dropped = data.win_obj, data.info, data.dropped
    win_t = {k: torch.from_numpy(v) for k, v in data.windows.items()}
    t0 = time.perf_counter()
    feats = {
        "astromer": _embed_table(table, encoder, random_init=False, seed=cfg.seed,
                                 min_points=ds_cfg.min_points, actor_cpus=cfg.actor_cpus),
        "astromer_random": _embed_table(table, encoder, random_init=True, seed=cfg.seed,
                                        min_points=ds_cfg.min_points,
                                        actor_cpus=cfg.actor_cpus),
    }
    embed_seconds = time.perf_counter() - t0
    logger.info("%s: %d objects, %d windows embedded in %.0f s", ds_cfg.name, len(y),
                len(win_obj), embed_seconds)
    settings: dict[str, Any] = {}
    confusions: dict[str, np.ndarray] = {}
    kept: dict[str, Any] = {}  # the first fold's head at the largest setting run: saved
    for n in cfg.samples_per_class:
        n_val = max(2, int(round(cfg.val_fraction * n)))
        available = {classes[c]: int((y[pool] == c).sum()) for c in range(len(classes))}
        short = {k: v for k, v in available.items() if v < n + n_val}
        if short:
            settings[str(n)] = {"skipped": f"needs {n} + {n_val} (validation) objects per "
                                           f"class outside the test set; have {short}"}
            continue
        scores: dict[str, list[float]] = {m: [] for m in METHODS}
        seconds: dict[str, float] = dict.fromkeys(METHODS, 0.0)
        cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
        for fold in range(cfg.folds):
            fold_rng = np.random.default_rng((cfg.seed, n, fold))
            train, val = [], []
            for c in range(len(classes)):
                idx = fold_rng.permutation(pool[y[pool] == c])
                train.extend(idx[:n])
                val.extend(idx[n:n + n_val])
            train, val = np.array(train), np.array(val)
            seed = cfg.seed * 1000 + fold
            for method in ("astromer", "astromer_random"):
                t = time.perf_counter()
                head = _train_head(feats[method], y, train, val, len(classes), cfg, seed)
                with torch.no_grad():
                    pred = head(torch.from_numpy(feats[method][test])).argmax(1).numpy()
                scores[method].append(macro_f1(y[test], pred))
                seconds[method] += time.perf_counter() - t
                if method == "astromer":
                    cm += confusion_matrix(y[test], pred, labels=list(range(len(classes))))
                    if fold == 0:
                        kept = {"head": head, "samples_per_class": n}
            t = time.perf_counter()
            gru = _train_gru(win_t, win_obj, y, train, val, len(classes), cfg, seed)
            test_win = np.flatnonzero(np.isin(win_obj, test))
            logits = _gru_object_logits(gru, {k: v[test_win] for k, v in win_t.items()},
                                        win_obj[test_win], len(y))
            scores["gru"].append(macro_f1(y[test], logits[test].argmax(1).numpy()))
            seconds["gru"] += time.perf_counter() - t
        settings[str(n)] = {m: {**mean_spread(scores[m]), "seconds": round(seconds[m], 2)}
                            for m in METHODS}
        logger.info("%s, %d per class: macro F1 %s", ds_cfg.name, n, ", ".join(
            f"{m} {settings[str(n)][m]['mean']:.3f}" for m in METHODS))
        confusions[str(n)] = cm
    return {
        "classes": classes, "objects": int(len(y)), "dropped_without_windows": dropped,
        "test_objects": int(len(test)),
        "test_per_class": {classes[c]: int((y[test] == c).sum()) for c in range(len(classes))},
        "windows": int(len(win_obj)), "embed_seconds": round(embed_seconds, 2),
        "settings": settings, "data": info,
        "confusion": {k: v.tolist() for k, v in confusions.items()},
        "_head": kept,
    }


def save_classifier(encoder: str, head: nn.Module, classes: list[str], path: str | Path, *,
                    min_points: int) -> Path:
    """Save a trained head with its pretrained encoder as one ``astromer-classifier`` folder.

    The folder is what ``astroray infer`` and the Serve deployment load.
    """
    from astroray.infer.astromer import load_encoder
    from astroray.models.astromer import AstromerClassifier

    model = AstromerClassifier.from_parts(load_encoder(encoder), head, classes,
                                          min_points=min_points)
    return model.save_pretrained(path)


def classify(config: ClassifyConfig, out: str | Path) -> dict[str, Any]:
    """Run the few-shot evaluation; writes ``out/confusion_<dataset>.png`` when it can.

    When ``config.encoder`` is None, an encoder is pretrained first (``out/pretrain``).

    Returns:
        ``{"metrics", "table", "datasets", "encoder", "pretrain", "figures"}``: ``table`` has
        one row per (data set, setting) with the macro F1 mean and spread of the pretrained
        classifier and of both baselines.
    """
    from astroray.runtime import init_ray
    from astroray.train.astromer import pretrain

    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pretrained = None
    encoder = config.encoder
    if encoder is None:
        assert config.pretrain is not None  # checked in __post_init__
        pretrained = pretrain(config.pretrain, out / "pretrain")
        encoder = pretrained["model"]["dir"]
    elif not Path(encoder).is_dir():
        raise FileNotFoundError(f"ClassifyConfig.encoder = {encoder!r}: no such model folder")
    results, table, figures = {}, [], {}
    for ds_cfg in config.datasets:
        started = time.perf_counter()
        res = _evaluate_dataset(ds_cfg, config, encoder, out / "data" / ds_cfg.name)
        res["seconds"] = round(time.perf_counter() - started, 2)
        kept = res.pop("_head", None)
        if kept:
            res["classifier"] = {
                "dir": str(save_classifier(encoder, kept["head"], res["classes"],
                                           out / f"classifier_{ds_cfg.name}",
                                           min_points=ds_cfg.min_points)),
                "samples_per_class": kept["samples_per_class"], "fold": 0}
        results[ds_cfg.name] = res
        for n, row in res.get("settings", {}).items():
            if "skipped" in row:
                table.append({"dataset": ds_cfg.name, "samples_per_class": int(n),
                              "skipped": row["skipped"]})
                continue
            entry = {"dataset": ds_cfg.name, "samples_per_class": int(n)}
            for m in METHODS:
                entry[f"{m}_f1"] = round(row[m]["mean"], 4)
                entry[f"{m}_f1_std"] = round(row[m]["std"], 4)
            entry["pretrained_beats_baselines"] = bool(
                row["astromer"]["mean"] > max(row["astromer_random"]["mean"],
                                              row["gru"]["mean"]))
            table.append(entry)
        if res.get("confusion"):
            fig = plot_confusion_matrix(
                {f"{n} per class": cm for n, cm in res["confusion"].items()},
                res["classes"], out / f"confusion_{ds_cfg.name}.png",
                f"{ds_cfg.name}: pretrained Astromer + MLP (test set, summed over folds)")
            if fig is not None:
                figures[ds_cfg.name] = str(fig)
    metrics = {f"{r['dataset']}@{r['samples_per_class']}": {
        m: f"{r[f'{m}_f1']:.3f} +- {r[f'{m}_f1_std']:.3f}" for m in METHODS}
        for r in table if "skipped" not in r}
    return {"metrics": metrics, "table": table, "datasets": results, "encoder": encoder,
            "pretrain": pretrained and {k: pretrained[k] for k in ("metrics", "resume")},
            "figures": figures}


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
    from astroray.train.metrics import macro_f1

    init_ray()
    out = Path(out).resolve()
    pretrained, encoder = None, config.encoder
    if encoder is None:
        assert config.pretrain is not None  # checked in __post_init__
        pretrained = pretrain(config.pretrain, out / "pretrain")
        encoder = pretrained["model"]["dir"]
    ds_cfg = config.datasets[0]
    table, info = load_labelled(ds_cfg, out / "data" / ds_cfg.name)
    if table is None or table.num_rows == 0:
        raise ValueError(f"ClassifyDataset {ds_cfg.name!r}: no labelled objects ({info})")
    classes = sorted(set(table.column("label").to_pylist()))
    y = np.array([classes.index(v) for v in table.column("label").to_pylist()], np.int64)
    feats = _embed_table(table, encoder, random_init=False, seed=config.seed,
                         min_points=ds_cfg.min_points, actor_cpus=config.actor_cpus)
    usable = np.flatnonzero(np.isfinite(feats).all(axis=(1, 2)))  # objects with windows
    rng = np.random.default_rng(ds_cfg.seed)
    test = usable[stratified_test(y[usable], ds_cfg.test_fraction, ds_cfg.test_per_class,
                                   rng)]
    rest = rng.permutation(np.setdiff1d(usable, test))
    val = rest[stratified_test(y[rest], config.val_fraction, None, rng)]
    train = np.setdiff1d(rest, val)
    head = _train_head(feats, y, train, val, len(classes), config, config.seed)
    with torch.no_grad():
        pred = head(torch.from_numpy(feats[test])).argmax(1).numpy()
    path = save_classifier(encoder, head, classes, out / "model", min_points=ds_cfg.min_points)
    return {"dir": str(path), "classes": classes, "train": int(len(train)),
            "validation": int(len(val)), "test": int(len(test)),
            "test_macro_f1": round(macro_f1(y[test], pred), 4),
            "test_accuracy": round(float((pred == y[test]).mean()), 4), "encoder": encoder,
            "data": info,
            "pretrain": pretrained and {k: pretrained[k] for k in ("metrics", "resume")}}
