"""Classify from Python, in this process, without Ray: ``load_model`` and ``predict``.

::

    import astroray
    model = astroray.load_model("out/demo/catalogue/train/model")   # or "astromer1-macho"
    rows = astroray.predict(model, "../shared/data/real/rrlyrae_stripe82")
    rows[["object_id", "predicted_class", "predicted_prob", "in_domain"]].head()

The rows are those ``astroray infer`` writes into its catalogue, computed by the same code
(:class:`astroray.infer.catalogue.PredictBatch`: the predictor of the folder's model type, the
object-by-object retry of a failing batch, the domain flags of the model card), so that both
agree row for row on the same inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.data.fileio import numpy_batch
from astroray.data.registry import read_files
from astroray.data.schema import ERROR_SCHEMA, conform, error_table
from astroray.infer.catalogue import PredictBatch
from astroray.infer.predictors import get_predictor, model_hash, predictor_task
from astroray.models import resolve_model_path
from astroray.models.card import read_model_card

__all__ = ["Model", "load_model", "predict"]

logger = logging.getLogger(__name__)


@dataclass
class Model:
    """A saved model loaded for prediction.

    Attributes:
        path: the model folder.
        name: its name in catalogues (the folder's name).
        hash: content hash of its config and weights (as in catalogues).
        kind: the input kind it reads (``lightcurve``, ``spectrum``, ``stamp``).
        task: what it outputs (``classification``, ``regression``, ``anomaly``).
        card: its model card (None for folders saved without one).
        predictor: the loaded predictor (bulk inference and Serve use the same).
    """

    path: str
    name: str
    hash: str
    kind: str
    task: str
    card: dict[str, Any] | None
    predictor: Any

    @property
    def labels(self) -> list[str] | None:
        """The classes of a classifier (None otherwise)."""
        labels = getattr(self.predictor, "labels", None)
        return None if labels is None else list(labels)

    def predict(self, data: Any, **kwargs: Any) -> Any:
        """Shorthand for :func:`predict` ``(self, data, **kwargs)``."""
        return predict(self, data, **kwargs)


def load_model(model: str | Path, *, device: str | None = None,
               embedding: bool = False) -> Model:
    """Load a saved model folder, or published weights by name, for :func:`predict`.

    Args:
        model: a folder written by a training job (``config.json`` + ``model.safetensors``)
            or a published name (``astromer1-macho``).
        device: ``cpu`` / ``cuda``; None: CUDA when available.
        embedding: also return each object's embedding (families that have one).

    Raises:
        FileNotFoundError: when the folder does not exist or is not a saved model.
        ValueError: when no predictor is registered for the folder's model type.
    """
    path = str(Path(resolve_model_path(model)).resolve())
    predictor = get_predictor(path, embedding=embedding, device=device)
    return Model(path=path, name=Path(path).name, hash=model_hash(path), kind=predictor.kind,
                 task=predictor_task(path), card=read_model_card(path), predictor=predictor)


def _as_table(data: Any, kind: str, *, format: str | None,
              labels: Sequence[str] | None) -> tuple[pa.Table, pa.Table]:
    """``data`` as a canonical table of ``kind`` and the errors of reading it."""
    if isinstance(data, (str, Path)) or (isinstance(data, Sequence)
                                         and not isinstance(data, (pa.Table, bytes))
                                         and all(isinstance(p, (str, Path)) for p in data)):
        paths = [str(data)] if isinstance(data, (str, Path)) else [str(p) for p in data]
        if not paths:
            raise ValueError("predict: no input (an empty list of paths)")
        missing = [p for p in paths if "://" not in p and not Path(p).exists()]
        if missing:
            raise FileNotFoundError(f"predict: no such file or folder: {missing[0]}")
        return read_files(paths, format=format, kind=kind, labels=list(labels or []) or None)
    if isinstance(data, pa.Table):
        return conform(data, kind), error_table([])
    try:
        import pandas as pd  # lazy: pandas
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return conform(pa.Table.from_pandas(data, preserve_index=False), kind), error_table([])
    raise TypeError(f"predict: data must be a canonical Arrow table, a pandas DataFrame, a "
                    f"path or a list of paths, not {type(data).__name__}")


def predict(model: Model | str | Path, data: Any, *, batch_size: int = 256,
            format: str | None = None, labels: Sequence[str] | None = None,
            as_arrow: bool = False, return_errors: bool = False) -> Any:
    """Catalogue rows of ``data`` under ``model``, in this process (no Ray).

    Args:
        model: a :class:`Model` from :func:`load_model`, or what it takes.
        data: a canonical Arrow table, a pandas DataFrame with the canonical columns, a file
            or folder in any supported format, or a list of them.
        batch_size: objects per model call.
        format: reader for every file (None: sniff each).
        labels: label tables to join to files by object id.
        as_arrow: return ``pyarrow.Table`` rather than ``pandas.DataFrame``.
        return_errors: also return the objects that could not be read or scored (the
            errors table of bulk inference: ``source``, ``object_id``, ``stage``, ``error``).

    Returns:
        The rows (one per object scored: ids, survey, known label, position, model, class
        probabilities, predicted class, domain flags ...), or ``(rows, errors)``.
    """
    if not isinstance(model, Model):
        model = load_model(model)
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"predict: batch_size = {batch_size!r} is invalid: expected a "
                         "positive integer")
    table, errors = _as_table(data, model.kind, format=format, labels=labels)
    stage = PredictBatch(model.path, embedding=False, model_hash=model.hash, out=None,
                         predictor=model.predictor)
    good, bad = [], [errors]
    for start in range(0, table.num_rows, batch_size):
        chunk = table.slice(start, batch_size)
        batch = numpy_batch(chunk)
        batch["_shard"] = np.array(["local"] * chunk.num_rows, dtype=object)
        out = stage(batch)
        failed = out.column("_error").is_valid().to_numpy(zero_copy_only=False)
        if (~failed).any():
            good.append(out.filter(pa.array(~failed)).drop_columns(
                [c for c in ("_shard", "_error", "_stage") if c in out.column_names]))
        if failed.any():
            f = out.filter(pa.array(failed))
            bad.append(pa.table({"source": f.column("source"), "object_id": f.column("object_id"),
                                 "stage": f.column("_stage"), "error": f.column("_error"),
                                 "kind": pa.array([model.kind] * f.num_rows, pa.string())},
                                schema=ERROR_SCHEMA))
    rows = (pa.concat_tables(good, promote_options="default") if good
            else pa.table({"object_id": pa.array([], pa.string())}))
    errs = pa.concat_tables(bad)
    if errs.num_rows:
        logger.warning("predict: %d object(s) could not be read or scored (return_errors=True "
                       "lists them)", errs.num_rows)
    if not as_arrow:
        rows, errs = rows.to_pandas(), errs.to_pandas()
    return (rows, errs) if return_errors else rows
