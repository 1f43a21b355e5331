"""Predictors: a saved model folder -> catalogue columns for a batch of canonical objects.

A predictor is built from a model folder (``config.json`` + ``model.safetensors``) and called on
a canonical batch (``batch_format="numpy"``, one row per object). It returns one row per object
it could process (``object_id`` plus its columns: class probabilities and predicted class for
classifiers, redshift for regressors, an optional embedding) and the ids it could not, each with
a reason. Predictors are registered by the folder's ``model_type``, so bulk inference and Serve
pick up every family (and every new head) the same way.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import torch

from astroray.infer.astromer import AstromerEmbedder
from astroray.models.astromer import AstromerClassifier, read_embeddings
from astroray.models.card import DomainCheck, read_model_card
from astroray.models.pretrained import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    read_config_json,
    read_safetensors_header,
)
from astroray.uncertainty import uncertainty_scores
from astroray.uncertainty.sampling import sample_object_probs

__all__ = ["DomainChecked", "Prediction", "Predictor", "get_predictor", "model_hash",
           "predictor_kind", "predictor_task", "prob_column", "register_predictor"]


class Prediction(Protocol):
    """What a predictor returns: rows for the objects it processed, and failures."""

    table: pa.Table
    failures: dict[str, str]


class _Prediction:
    def __init__(self, table: pa.Table, failures: dict[str, str]):
        self.table = table
        self.failures = failures


class Predictor(Protocol):
    """A loaded model: ``predictor(batch) -> Prediction``; ``kind`` is its input kind."""

    kind: str
    name: str

    def __call__(self, batch: dict[str, np.ndarray]) -> _Prediction:
        """Predict a canonical batch (``batch_format="numpy"``)."""


_PREDICTORS: dict[str, Callable[..., Predictor]] = {}


def register_predictor(model_type: str) -> Callable[[Callable[..., Predictor]],
                                                     Callable[..., Predictor]]:
    """Decorator: the predictor class for saved folders of ``model_type``."""
    def decorate(factory: Callable[..., Predictor]) -> Callable[..., Predictor]:
        _PREDICTORS[model_type] = factory
        return factory
    return decorate


def get_predictor(model_dir: str | Path, *, embedding: bool = False,
                  device: str | None = None) -> Predictor:
    """The predictor of a saved model folder.

    Args:
        model_dir: a folder written by ``save_pretrained`` (or a training job's model folder).
        embedding: also return the object's embedding (when the family has one).
        device: ``cuda`` / ``cpu``; None picks CUDA when available.

    Raises:
        FileNotFoundError: when the folder lacks ``config.json`` or the weights.
        ValueError: when no predictor is registered for the folder's model type.
    """
    path = Path(model_dir)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} not found: not a saved model folder")
    # A truncated or mismatched folder is one clear error naming the file, not a traceback
    # from deep inside safetensors or load_state_dict.
    read_safetensors_header(path / WEIGHTS_NAME)
    model_type = read_config_json(path).get("model_type")
    _load_builtin()
    if model_type not in _PREDICTORS:
        raise ValueError(f"{path}: no predictor for model_type {model_type!r}; "
                         f"known: {sorted(_PREDICTORS)}")
    predictor = _PREDICTORS[model_type](str(path), embedding=embedding, device=device)
    card = read_model_card(path)
    if card and card.get("domain"):
        bands = getattr(getattr(predictor, "config", None), "bands", None)
        return DomainChecked(predictor, DomainCheck(card["domain"], model_bands=bands))
    return predictor


class DomainChecked:
    """A predictor whose rows also say whether each object lies in the model's domain.

    Adds ``in_domain`` (bool), ``ood_score`` (``1 - predicted_prob`` for classifiers) and
    ``ood_reason`` (null inside) from the model card's ``domain`` section
    (:class:`astroray.models.card.DomainCheck`); every other attribute is the wrapped
    predictor's.
    """

    def __init__(self, predictor: Predictor, check: DomainCheck):
        self.predictor, self.check = predictor, check

    def __getattr__(self, name: str) -> Any:
        if name == "predictor":  # not set yet (unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.predictor, name)

    def __call__(self, batch: dict[str, np.ndarray]) -> _Prediction:
        """The wrapped predictor's rows plus the domain columns."""
        pred = self.predictor(batch)
        table = pred.table
        if table.num_rows == 0:
            return pred
        # Rows are keyed by the batch's object ids (bulk inference and Serve pass positions).
        position = {str(oid): i for i, oid in enumerate(np.asarray(batch["object_id"]))}
        rows = np.array([position[str(oid)] for oid in table.column("object_id").to_pylist()],
                        dtype=np.int64)
        prob = (table.column("predicted_prob").to_numpy(zero_copy_only=False)
                if "predicted_prob" in table.column_names else None)
        ok, score, reasons = self.check(batch, rows, prob)
        table = (table.append_column("in_domain", pa.array(ok, pa.bool_()))
                 .append_column("ood_score", pa.array(score.astype(np.float32)))
                 .append_column("ood_reason", pa.array(reasons, pa.string())))
        return _Prediction(table, pred.failures)


def predictor_kind(model_dir: str | Path) -> str:
    """The input kind (``lightcurve``, ``spectrum``) of a saved model, without loading it."""
    model_type = read_config_json(model_dir).get("model_type")
    _load_builtin()
    if model_type not in _PREDICTORS:
        raise ValueError(f"{model_dir}: no predictor for model_type {model_type!r}; "
                         f"known: {sorted(_PREDICTORS)}")
    factory = _PREDICTORS[model_type]
    kind_of = getattr(factory, "kind_of", None)  # families whose input depends on the folder
    return kind_of(model_dir) if kind_of is not None else factory.kind  # type: ignore


def predictor_task(model_dir: str | Path) -> str:
    """What a saved model outputs (``classification``, ``regression``, ``anomaly``).

    The folder's ``task`` when its config has one, else its predictor's, else classification.
    """
    raw = read_config_json(model_dir)
    if "task" in raw:
        return str(raw["task"])
    _load_builtin()
    factory = _PREDICTORS.get(raw.get("model_type"))
    return str(getattr(factory, "task", "classification"))


def model_hash(model_dir: str | Path) -> str:
    """Content hash of a model folder's config and weights (16 hex digits of SHA-256)."""
    h = hashlib.sha256()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        with open(Path(model_dir) / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def prob_column(label: str) -> str:
    """Catalogue column of a class probability: ``prob_`` + the label made identifier-safe."""
    return "prob_" + re.sub(r"[^0-9A-Za-z_]+", "_", str(label)).strip("_")


def _classifier_columns(ids: np.ndarray, probs: np.ndarray, labels: tuple[str, ...],
                        embedding: np.ndarray | None) -> pa.Table:
    """Rows of a classifier: one probability column per class, the argmax and its value."""
    cols: dict[str, Any] = {"object_id": pa.array(ids.astype(str), type=pa.string())}
    for j, label in enumerate(labels):
        cols[prob_column(label)] = pa.array(probs[:, j].astype(np.float32))
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    cols["predicted_class"] = pa.array([labels[i] for i in best], type=pa.string())
    cols["predicted_prob"] = pa.array(probs[np.arange(len(best)), best].astype(np.float32))
    if embedding is not None:
        cols["embedding"] = pa.FixedSizeListArray.from_arrays(
            pa.array(embedding.astype(np.float32).reshape(-1)), embedding.shape[1])
    return pa.table(cols)


def _uncertainty_columns(table: pa.Table, scores: dict[str, np.ndarray]) -> pa.Table:
    """``table`` with an ``uncertainty_<score>`` column per score (SMP, PV, BALD, entropy)."""
    for name, values in scores.items():
        if name != "mean":
            table = table.append_column(f"uncertainty_{name}",
                                        pa.array(np.asarray(values, np.float32)))
    return table


@register_predictor("astromer-classifier")
class AstromerClassifierPredictor:
    """Astromer encoder + classification head over multi-band light curves.

    Each object is cut into sequential windows of every band; the head reads the mean of the
    layer means over the object's windows (as in training). Objects without a window (every
    band shorter than the model's ``min_points``) are failures. A classifier saved with an
    uncertainty head (``config.uncertainty``) draws ``config.passes`` stochastic passes: the
    probabilities are their mean, and ``uncertainty_smp``, ``uncertainty_pv``,
    ``uncertainty_bald`` and ``uncertainty_entropy`` are added.
    """

    kind = "lightcurve"

    def __init__(self, model_dir: str, *, embedding: bool = False, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = AstromerClassifier.from_pretrained(model_dir).eval()
        self.config = model.config
        self.name = Path(model_dir).name
        self.labels = model.config.labels
        self.model = model.to(self.device)
        self.embedder = AstromerEmbedder(
            model.encoder, min_points=model.config.min_points,
            bands=None if model.config.bands is None else list(model.config.bands),
            layer_weights=model.head.weighted.logits.detach().tolist(), device=str(self.device))
        self.embedding = embedding

    def _sampled(self, windows: dict[str, np.ndarray], ok: np.ndarray
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Mean probabilities (n, C) and uncertainty scores of the objects with windows."""
        remap = np.cumsum(ok) - 1  # batch row -> position among the objects with windows
        win = {k: torch.from_numpy(np.ascontiguousarray(windows[k])).to(self.device)
               for k in ("times", "values", "mask")}
        obj = torch.from_numpy(remap[windows["row"]].astype(np.int64)).to(self.device)
        method = self.config.uncertainty
        with torch.inference_mode():
            probs = sample_object_probs(self.model, win, obj, int(ok.sum()), self.config.passes,
                                        dropout=method != "hsa", hsa=method != "mc_dropout")
        scores = uncertainty_scores(probs.cpu().numpy())
        return scores.pop("mean"), scores

    def __call__(self, batch: dict[str, np.ndarray]) -> _Prediction:
        scores, emb = None, None
        if self.config.uncertainty is not None and not self.embedding:
            # Sampled passes only: the deterministic embedding pass would be work thrown away.
            windows = self.embedder.windows(batch)
            ids = np.asarray(batch["object_id"]).astype(str)
            ok = np.bincount(windows["row"], minlength=len(ids)) > 0
        else:
            emb = self.embedder(batch)
            ids = np.asarray(emb.column("object_id").to_numpy(zero_copy_only=False))
            ok = np.asarray(emb.column("n_windows").to_numpy()) > 0
        failures = {str(i): f"no band has {self.config.min_points} or more valid points "
                            "(nothing to window)" for i in ids[~ok]}
        failures.update(_rejected(self.embedder, ids))
        if self.config.uncertainty is not None and ok.any():
            windows = windows if emb is None else self.embedder.windows(batch)
            probs, scores = self._sampled(windows, ok)
        elif emb is not None:
            means = read_embeddings(emb)  # (N, S, D), NaN for objects without windows
            with torch.inference_mode():
                x = torch.from_numpy(means[ok]).to(self.device)
                probs = torch.softmax(self.model.head(x).float(), dim=1).cpu().numpy()  # n, C
        else:
            probs = np.zeros((0, len(self.labels)), np.float32)
        vectors = read_embeddings(emb, "weighted_embedding")[ok] if self.embedding else None
        table = _uncertainty_columns(_classifier_columns(ids[ok], probs, self.labels, vectors),
                                     scores or {})
        return _Prediction(table, failures)


@register_predictor("astromer")
class AstromerEmbeddingPredictor:
    """A bare Astromer encoder: the catalogue holds its per-object embedding."""

    kind = "lightcurve"

    def __init__(self, model_dir: str, *, embedding: bool = True, device: str | None = None):
        self.name = Path(model_dir).name
        self.embedder = AstromerEmbedder(model_dir, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> _Prediction:
        emb = self.embedder(batch)
        ok = np.asarray(emb.column("n_windows").to_numpy()) > 0
        ids = np.asarray(emb.column("object_id").to_numpy(zero_copy_only=False))
        failures = {str(i): "no band has a valid point (nothing to window)" for i in ids[~ok]}
        failures.update(_rejected(self.embedder, ids))
        table = emb.filter(pa.array(ok)).select(["object_id", "n_windows", "weighted_embedding"])
        return _Prediction(table.rename_columns(["object_id", "n_windows", "embedding"]), failures)


def _rejected(embedder: Any, ids: np.ndarray) -> dict[str, str]:
    """Failure reasons of the objects whose windows float32 could not hold (last batch)."""
    rejected = getattr(embedder.windows, "rejected", {})
    return {str(ids[row]): reason for row, reason in rejected.items()}


def _load_builtin() -> None:
    """Families whose predictors live in their own modules register on import."""
    # ViT spectra, SwinV2 light curves; anomaly detectors; real/bogus stamps.
    for module in ("astroray.infer.vision", "astroray.infer.anomaly", "astroray.infer.stamps"):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
