"""The anomaly-detection protocol of MCDSVDD (Perez-Carrasco et al. 2023), on Ray.

Per data set, each class is held out in turn as the anomaly: over ``folds`` stratified folds
of the objects, the detectors train on the other classes of the training folds (inliers only)
and score the test fold, whose held-out-class objects are the anomalies. The AUROC of each
method (MCDSVDD, single-centre Deep SVDD, autoencoder reconstruction error, Isolation Forest,
One-Class SVM) is reported per held-out class as mean and standard deviation over folds.
Every (held-out class, fold) runs as one Ray task. A final detector with every class as an
inlier is trained and saved per data set, for bulk inference and Serve.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from astroray.config import Config, check, check_name, check_positive_ints
from astroray.data.inputs import check_inputs
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.features import feature_names
from astroray.infer.astromer import AstromerEmbedder
from astroray.models.anomaly import (
    baseline_scores,
    embedding_inputs,
    feature_inputs,
    fit_detector,
    pretrain_autoencoder,
    train_svdd,
)
from astroray.models.anomaly.config import INPUT_TRANSFORMS, INPUTS, MCDSVDDConfig
from astroray.models.anomaly.train import DetectorTrainConfig
from astroray.models.astromer import load_encoder
from astroray.train.astromer import prepare_light_curves

__all__ = ["METHODS", "AnomalyConfig", "AnomalyDataset", "anomaly_table", "load_inputs",
           "run_anomaly"]

logger = logging.getLogger(__name__)

#: Methods compared, in table order.
METHODS = ("mcdsvdd", "deep_svdd", "autoencoder", "isolation_forest", "ocsvm")


@dataclasses.dataclass
class AnomalyDataset(Config):
    """One labelled light-curve data set of the protocol.

    Attributes:
        name: the data set's name in the tables.
        paths: survey files/folders or canonical Parquet (labelled).
        optional_paths: the same, used when present.
        synthetic: a synthetic survey generated as input.
        bands: band order of the feature columns; None: the sorted bands present.
        classes: the classes used (each held out in turn); None: every class with at least
            ``min_class_size`` scorable objects.
        min_class_size: fewest objects of a class that takes part.
        min_points: fewest valid points an object needs.
    """

    name: str = "synthetic"
    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: SyntheticSurveyConfig | None = None
    bands: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    min_class_size: int = 10
    min_points: int = 5

    def __post_init__(self) -> None:
        if self.bands is not None:
            self.bands = tuple(self.bands)
        if self.classes is not None:
            self.classes = tuple(str(c) for c in self.classes)
            check(len(self.classes) >= 2, self, "classes", self.classes,
                  "null or at least two classes")
        check_name(self)
        check_inputs(self)
        check_positive_ints(self, "min_class_size", "min_points")


@dataclasses.dataclass
class AnomalyConfig(Config):
    """Settings of ``jobs/anomaly.py``.

    Attributes:
        datasets: the data sets (each held-out class of each is one row of its table).
        input: ``features`` or ``embeddings`` (Astromer, of :attr:`encoder`).
        encoder: a saved Astromer folder or a registry name (random initialisation, with a
            warning), for ``embeddings`` input.
        hidden: encoder widths before the latent layer (paper: 512-256-128).
        latent_dim: latent width z.
        bias: biases and affine BatchNorm in the encoder's hidden layers (the authors');
            False: our earlier bias-free variant (see :class:`MCDSVDDConfig`).
        input_transform: ``uniform`` (the authors': [0, 1], missing -1) or ``normal`` (our
            earlier variant: standard normal, missing 0), for every method.
        train: optimisation of the autoencoder and SVDD stages.
        folds: stratified folds per held-out class.
        trees: Isolation Forest trees.
        nu: One-Class SVM nu.
        task_cpus: CPUs per (held-out class, fold) task (fractional: several per core).
        feature_chunk: light curves per feature-extraction task.
        seed: seed of the folds and of the models.
    """

    datasets: tuple[AnomalyDataset, ...] = ()
    input: str = "features"
    encoder: str | None = None
    hidden: tuple[int, ...] = (512, 256, 128)
    latent_dim: int = 32
    bias: bool = True
    input_transform: str = "uniform"
    train: DetectorTrainConfig = dataclasses.field(default_factory=DetectorTrainConfig)
    folds: int = 3
    trees: int = 200
    nu: float = 0.1
    task_cpus: float = 1.0
    feature_chunk: int = 250
    seed: int = 0

    def __post_init__(self) -> None:
        self.datasets = tuple(d if isinstance(d, AnomalyDataset) else AnomalyDataset.from_dict(d)
                              for d in self.datasets)
        if isinstance(self.train, dict):
            self.train = DetectorTrainConfig.from_dict(self.train)
        self.hidden = tuple(self.hidden)
        check(len(self.datasets) > 0, self, "datasets", self.datasets, "at least one data set")
        names = [d.name for d in self.datasets]
        check(len(set(names)) == len(names), self, "datasets", names, "distinct names")
        check(self.input in INPUTS, self, "input", self.input, f"one of {INPUTS}")
        check(isinstance(self.bias, bool), self, "bias", self.bias, "true or false")
        check(self.input_transform in INPUT_TRANSFORMS, self, "input_transform",
              self.input_transform, f"one of {INPUT_TRANSFORMS}")
        check(self.input != "embeddings" or (isinstance(self.encoder, str) and self.encoder),
              self, "encoder", self.encoder, "an Astromer folder or registry name "
              "(embeddings input)")
        check(all(isinstance(h, int) and h > 0 for h in self.hidden), self, "hidden",
              self.hidden, "positive integers")
        check_positive_ints(self, "latent_dim", "folds", "trees", "feature_chunk")
        check(self.folds >= 2, self, "folds", self.folds, "an integer >= 2")
        check(isinstance(self.nu, int | float) and 0 < self.nu <= 1, self, "nu", self.nu,
              "a number in (0, 1]")
        check(isinstance(self.task_cpus, int | float) and self.task_cpus > 0, self,
              "task_cpus", self.task_cpus, "a positive number")

    def smoke(self) -> AnomalyConfig:
        """This configuration shrunk to run in about a minute on 2 CPUs."""
        datasets = []
        for d in self.datasets:
            syn = d.synthetic
            if syn is not None:
                syn = syn.replace(n=min(syn.n, 150 if syn.kind == "transients" else 180))
            datasets.append(d.replace(synthetic=syn, min_class_size=min(d.min_class_size, 6)))
        encoder = self.encoder
        if self.input == "embeddings" and not Path(str(encoder)).is_dir():
            encoder = "astromer-tiny"
        return self.replace(datasets=tuple(datasets), hidden=(64, 32, 16), latent_dim=8,
                            folds=2, trees=50, encoder=encoder,
                            train=self.train.replace(pretrain_epochs=min(
                                self.train.pretrain_epochs, 15), epochs=min(self.train.epochs,
                                                                            15)))


def _read_table(parquet: list[str]) -> Any:

    columns = ["object_id", "time", "band", "mag", "flux", "err", "label"]
    tables = []
    for folder in parquet:
        files = sorted(Path(folder).rglob("*.parquet")) if Path(folder).is_dir() else [folder]
        for f in files:
            t = pq.read_table(f)
            tables.append(t.select([c for c in columns if c in t.column_names]))
    return pa.concat_tables(tables, promote_options="default")


def _features_task(table: Any, bands: tuple[str, ...], min_points: int
                   ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:

    return feature_inputs(table, bands, min_points=min_points)


def load_inputs(dataset: AnomalyDataset, config: AnomalyConfig, workdir: str | Path,
                encoder: Any = None) -> dict[str, Any]:
    """Canonical light curves of a data set and the detectors' raw inputs.

    Features are computed on Ray tasks of ``feature_chunk`` light curves; embeddings by the
    encoder in this process (one model load).

    Args:
        dataset: the data set.
        config: the protocol (its ``input`` and ``feature_chunk``).
        workdir: where the canonical Parquet goes.
        encoder: the Astromer (embeddings input).

    Returns:
        ``{"x", "labels", "ids", "bands", "feature_names", "info", "skipped"}``: raw inputs
        (N, F) and labels (N,) of the usable objects, and what was read and left out (with
        reasons, counted).
    """
    import ray  # lazy: ray

    info = prepare_light_curves(dataset.paths, dataset.optional_paths, dataset.synthetic,
                                workdir)
    table = _read_table(info["parquet"])
    if "label" not in table.column_names:
        raise ValueError(f"data set {dataset.name!r}: no labels (the protocol needs classes)")
    labels_all = np.array([str(v) for v in table.column("label").to_pylist()], dtype=object)
    has_label = np.array([v is not None for v in table.column("label").to_pylist()])
    bands = dataset.bands
    if bands is None:
        bands = tuple(sorted({str(b) for bs in table.column("band").to_pylist() for b in bs}))
    n = table.num_rows
    chunks = [(lo, min(lo + config.feature_chunk, n))
              for lo in range(0, n, config.feature_chunk)]
    if config.input == "features":
        task = ray.remote(num_cpus=1)(_features_task)
        parts = ray.get([task.remote(table.slice(lo, hi - lo), bands, dataset.min_points)
                         for lo, hi in chunks])
        names = feature_names(list(bands))
    else:

        embedder = AstromerEmbedder(encoder, min_points=dataset.min_points,
                                    bands=list(bands), device="cpu")
        parts = [embedding_inputs(table.slice(lo, hi - lo), embedder,
                                  min_points=dataset.min_points, bands=bands)
                 for lo, hi in chunks]
        names = None
    x = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, len(names or [])))
    ok = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, bool)
    skipped: dict[str, int] = {}
    for part in parts:
        for reason in part[2].values():
            key = reason.split(";")[-1].strip()
            skipped[key] = skipped.get(key, 0) + 1
    ok &= has_label
    skipped["no label"] = int((~has_label).sum())
    counts = {c: int((labels_all[ok] == c).sum()) for c in sorted(set(labels_all[ok]))}
    classes = dataset.classes or tuple(c for c, k in counts.items()
                                       if k >= max(dataset.min_class_size, config.folds))
    missing = [c for c in classes if counts.get(c, 0) < config.folds]
    if missing or len(classes) < 2:
        raise ValueError(f"data set {dataset.name!r}: classes {missing or list(classes)} have "
                         f"too few objects for {config.folds} folds (counts {counts})")
    keep = ok & np.isin(labels_all, list(classes))
    skipped["class not used"] = int((ok & ~keep).sum())
    return {"x": x[keep], "labels": labels_all[keep].astype(str),
            "ids": np.asarray(table.column("object_id").to_pylist(), dtype=object)[keep],
            "bands": bands, "classes": classes, "feature_names": names,
            "info": {k: v for k, v in info.items() if k != "parquet"} | {
                "parquet": info["parquet"], "objects_read": n, "objects_used": int(keep.sum()),
                "class_counts": {c: counts[c] for c in classes}},
            "skipped": {k: v for k, v in skipped.items() if v}}


def _detector_config(config: AnomalyConfig, data: dict[str, Any], labels: tuple[str, ...],
                     encoder: Any, min_points: int) -> MCDSVDDConfig:
    names = data["feature_names"]
    return MCDSVDDConfig(
        input=config.input, input_dim=int(data["x"].shape[1]),
        feature_names=None if names is None else tuple(names), bands=tuple(data["bands"]),
        labels=labels, hidden=config.hidden, latent_dim=config.latent_dim,
        bias=config.bias, input_transform=config.input_transform, min_points=min_points,
        encoder=None if encoder is None else encoder.config)


def _fold_task(x: np.ndarray, labels: np.ndarray, train_idx: np.ndarray,
               test_idx: np.ndarray, held_out: str, fold: int, detector: dict[str, Any],
               train: dict[str, Any], trees: int, nu: float, seed: int) -> dict[str, Any]:
    """Train every method on the inliers of the training folds; AUROC on the test fold."""
    from sklearn.metrics import roc_auc_score  # lazy: scikit-learn

    torch.set_num_threads(1)
    started = time.perf_counter()
    tr = train_idx[labels[train_idx] != held_out]
    inliers = tuple(c for c in detector["labels"] if c != held_out)
    # The inputs are already computed: the fold's models need no Astromer of their own.
    cfg = MCDSVDDConfig.from_dict({**detector, "labels": inliers, "encoder": None,
                                   "input": "features", "feature_names": None})
    tcfg = DetectorTrainConfig.from_dict({**train, "seed": seed + fold})
    ae, _ = pretrain_autoencoder(x[tr], cfg, tcfg)
    multi, _ = train_svdd(ae, x[tr], labels[tr], tcfg)
    single, _ = train_svdd(ae, x[tr], labels[tr], tcfg, centres="single")
    xt = x[test_idx]
    scores = {"mcdsvdd": multi.score(xt)[0], "deep_svdd": single.score(xt)[0],
              "autoencoder": ae.reconstruction_error(xt),
              **baseline_scores(x[tr], xt, seed=seed + fold, trees=trees, nu=nu,
                                transform=cfg.input_transform)}
    truth = labels[test_idx] == held_out
    return {"held_out": held_out, "fold": fold, "train": int(tr.size),
            "test": int(test_idx.size), "anomalies": int(truth.sum()),
            "auroc": {m: float(roc_auc_score(truth, scores[m])) for m in METHODS},
            "seconds": time.perf_counter() - started}


def _final_task(x: np.ndarray, labels: np.ndarray, detector: dict[str, Any],
                train: dict[str, Any], encoder_state: dict[str, Any] | None,
                path: str) -> dict[str, Any]:
    """Train the detector with every class as an inlier and save it."""
    torch.set_num_threads(1)
    cfg = MCDSVDDConfig.from_dict(detector)
    model, history = fit_detector(x, labels, cfg, DetectorTrainConfig.from_dict(train))
    if encoder_state is not None:
        model.astromer.load_state_dict(encoder_state)
    model.save_pretrained(path)
    return {"path": path, "pretrain_loss": history["pretrain_loss"][-1],
            "svdd_loss": history["svdd_loss"][-1], "score_scale": model.config.score_scale,
            "seconds": history["pretrain_seconds"] + history["svdd_seconds"]}


def anomaly_table(rows: list[dict[str, Any]], classes: tuple[str, ...]
                  ) -> list[dict[str, Any]]:
    """Per held-out class, mean and standard deviation over folds of each method's AUROC."""
    table = []
    for c in classes:
        folds = [r for r in rows if r["held_out"] == c]
        row: dict[str, Any] = {"held_out": c, "folds": len(folds),
                               "anomalies": int(sum(r["anomalies"] for r in folds)),
                               "test": int(sum(r["test"] for r in folds))}
        for m in METHODS:
            values = np.array([r["auroc"][m] for r in folds])
            row[m] = float(values.mean())
            row[f"{m}_std"] = float(values.std())
        table.append(row)
    mean = {"held_out": "mean", "folds": table[0]["folds"] if table else 0,
            "anomalies": sum(r["anomalies"] for r in table),
            "test": sum(r["test"] for r in table)}
    for m in METHODS:
        mean[m] = float(np.mean([r[m] for r in table]))
        mean[f"{m}_std"] = float(np.std([r[m] for r in table]))
    return [*table, mean]


def _markdown(tables: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["# Anomaly detection: AUROC per held-out class (mean +- std over folds)", ""]
    for name, table in tables.items():
        lines += [f"## {name}", "", "| held-out class | " + " | ".join(METHODS) + " |",
                  "| --- |" + " --- |" * len(METHODS)]
        for row in table:
            cells = [f"{row[m]:.3f} +- {row[m + '_std']:.3f}" for m in METHODS]
            lines.append(f"| {row['held_out']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("The last row of each table is the mean over held-out classes (+- their "
                 "spread).")
    return "\n".join(lines) + "\n"


def run_anomaly(config: AnomalyConfig, out: str | Path) -> dict[str, Any]:
    """Run the protocol on every data set; writes tables and one detector per data set.

    Writes ``out/anomaly_table.md``, ``out/anomaly_table.csv``, ``out/folds.json`` and
    ``out/detectors/<data set>/`` (a saved detector with every class as an inlier).

    Returns:
        ``{"tables", "folds", "datasets", "detectors", "encoder"}``.
    """
    import ray  # lazy: ray
    from sklearn.model_selection import StratifiedKFold  # lazy: scikit-learn

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    encoder = None
    if config.input == "embeddings":

        encoder = load_encoder(str(config.encoder))
    fold_task = ray.remote(num_cpus=config.task_cpus)(_fold_task)
    final_task = ray.remote(num_cpus=config.task_cpus)(_final_task)
    train = config.train.to_dict()
    pending: dict[str, list[Any]] = {}
    finals: dict[str, Any] = {}
    datasets: dict[str, Any] = {}
    for ds in config.datasets:
        started = time.perf_counter()
        data = load_inputs(ds, config, out / "data" / ds.name, encoder)
        logger.info("anomaly: %s: %d objects of %s, inputs %s in %.1f s", ds.name,
                    len(data["labels"]), data["classes"], data["x"].shape,
                    time.perf_counter() - started)
        detector = _detector_config(config, data, tuple(data["classes"]), encoder,
                                    ds.min_points).to_dict()
        x_ref, y_ref = ray.put(data["x"]), ray.put(data["labels"])
        skf = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
        splits = list(skf.split(data["x"], data["labels"]))
        pending[ds.name] = [fold_task.remote(x_ref, y_ref, tr, te, c, k, detector, train,
                                             config.trees, config.nu, config.seed)
                            for c in data["classes"] for k, (tr, te) in enumerate(splits)]
        state = None if encoder is None else {k: v.cpu() for k, v in
                                              encoder.state_dict().items()}
        finals[ds.name] = final_task.remote(x_ref, y_ref, detector, train, state,
                                            str(out / "detectors" / ds.name))
        datasets[ds.name] = {"classes": list(data["classes"]), "bands": list(data["bands"]),
                             "inputs": int(data["x"].shape[1]), **data["info"],
                             "skipped": data["skipped"],
                             "prepare_seconds": time.perf_counter() - started}
    folds = {name: ray.get(refs) for name, refs in pending.items()}
    detectors = {name: ray.get(ref) for name, ref in finals.items()}
    tables = {name: anomaly_table(rows, tuple(datasets[name]["classes"]))
              for name, rows in folds.items()}
    (out / "anomaly_table.md").write_text(_markdown(tables))
    csv = ["dataset,held_out,method,auroc_mean,auroc_std,folds"]
    for name, table in tables.items():
        for row in table:
            csv += [f"{name},{row['held_out']},{m},{row[m]:.6f},{row[m + '_std']:.6f},"
                    f"{row['folds']}" for m in METHODS]
    (out / "anomaly_table.csv").write_text("\n".join(csv) + "\n")
    (out / "folds.json").write_text(json.dumps(folds, indent=2))
    return {"tables": tables, "folds": folds, "datasets": datasets, "detectors": detectors,
            "encoder": config.encoder if config.input == "embeddings" else None,
            "files": {"markdown": str(out / "anomaly_table.md"),
                      "csv": str(out / "anomaly_table.csv"),
                      "folds": str(out / "folds.json")}}
