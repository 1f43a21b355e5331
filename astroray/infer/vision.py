"""Vision-family predictors: render inputs on the actor's device, then ViT/SwinV2.

A fine-tuned vision model folder holds ``render.json`` beside its weights (the input kind,
the render config, the band order and the length cap it was trained with), so that bulk
inference and Serve draw exactly the pictures the model learned from. A model trained on
folded light curves (``render.fold``) folds every object the same way: at its ``period``
column, or at the best Lomb-Scargle period searched here once per object (a periodogram each,
~0.1-0.2 s of CPU); the period used and its Lomb-Scargle power come out as the ``period`` and
``period_power`` columns (null power: a catalogue period; null period: too few points to
search, drawn against time).

:class:`VisionPredictor` is the lighter Ray Data stage that fine-tuning uses to score its
held-out objects: it takes arrays already prepared by
:func:`~astroray.models.vision.processing.prepare_arrays` (:func:`predict_arrays` runs it over
chosen rows).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import torch
from ray.data.extensions import ArrowTensorArray

from astroray.infer.predictors import (
    _classifier_columns,
    _Prediction,
    _uncertainty_columns,
    register_predictor,
)
from astroray.models.device import autocast
from astroray.models.pretrained import read_config_json
from astroray.models.vision import VisionTransformer
from astroray.models.vision.processing import (
    prepare_arrays,
    read_render_spec,
    render_batch,
    render_config,
)
from astroray.uncertainty import uncertainty_scores

__all__ = ["VisionCataloguePredictor", "VisionPredictor", "arrays_dataset", "predict_arrays"]

_KINDS = {"spectra": "spectrum", "lightcurves": "lightcurve"}


@register_predictor("vision")
class VisionCataloguePredictor:
    """Render canonical spectra or light curves and classify them (or regress redshift).

    A classifier saved with an uncertainty head (``config.uncertainty``: MC Dropout) gives the
    mean probabilities of its passes and the ``uncertainty_smp``, ``uncertainty_pv``,
    ``uncertainty_bald`` and ``uncertainty_entropy`` columns.
    """

    kind = "spectrum"  # per folder: see kind_of

    @staticmethod
    def kind_of(model_dir: str | Path) -> str:
        """The canonical record kind this model reads (from its render spec)."""
        return _KINDS[read_render_spec(model_dir)["kind"]]

    def __init__(self, model_dir: str, *, embedding: bool = False, device: str | None = None):
        spec = read_render_spec(model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = VisionTransformer.from_pretrained(model_dir).to(self.device).eval()
        self.spec_kind = spec["kind"]
        self.kind = _KINDS[self.spec_kind]
        self.render_cfg = render_config(self.spec_kind, spec["render"])
        self.max_length = int(spec["max_length"])
        self.bands = None if spec.get("bands") is None else tuple(spec["bands"])
        self.embedding = embedding
        self.name = Path(model_dir).name

    def __call__(self, batch: dict[str, np.ndarray]) -> _Prediction:
        """Predict a canonical batch (``batch_format="numpy"``)."""
        names = [k for k in batch if not k.startswith("_")]
        table = pa.table({k: pa.array(list(batch[k])) for k in names})
        folded = self.spec_kind == "lightcurves" and self.render_cfg.folded
        arrays, _ = prepare_arrays(table, self.spec_kind, max_length=self.max_length,
                                   bands=self.bands, render=self.render_cfg if folded else None)
        ids = np.asarray(batch["object_id"]).astype(str)
        ok = arrays["length"] > 0
        failures = {i: "no valid pixel or point to draw" for i in ids[~ok]}
        tensors = {k: torch.as_tensor(v[ok], device=self.device) for k, v in arrays.items()}
        with torch.inference_mode():
            images = render_batch(tensors, self.spec_kind, self.render_cfg)  # (B, 3, H, W)
            with autocast(self.device):
                out = self.model.predict(images)
                feats = self.model.features(images).float() if self.embedding else None
        vectors = None if feats is None else feats.cpu().numpy()
        if "probs" in out:
            labels = tuple(self.model.config.labels)
            table = _classifier_columns(ids[ok], out["probs"].float().cpu().numpy(), labels,
                                        vectors)
            if "samples" in out:  # an uncertainty head (MC Dropout)
                table = _uncertainty_columns(
                    table, uncertainty_scores(out["samples"].float().cpu().numpy()))
        else:
            cols = {"object_id": pa.array(ids[ok], pa.string()),
                    "redshift": pa.array(out["value"].float().cpu().numpy())}
            if vectors is not None:
                cols["embedding"] = pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1)), vectors.shape[1])
            table = pa.table(cols)
        if folded:  # the period each picture was folded at, for the catalogue
            for name in ("period", "period_power"):  # NaN (none) becomes null
                table = table.append_column(name, pa.array(arrays[name][ok], pa.float64(),
                                                           from_pandas=True))
        return _Prediction(table, failures)


class VisionPredictor:
    """Ray Data stage: render prepared arrays and predict with a saved vision model.

    Args:
        model_dir: a saved :class:`~astroray.models.vision.VisionTransformer` folder.
        kind: ``spectra`` or ``lightcurves``.
        render: the render config fields (a mapping).
        device: torch device; None: CUDA when available, else CPU.
    """

    def __init__(self, model_dir: str, kind: str, render: dict[str, Any],
                 device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = VisionTransformer.from_pretrained(model_dir).to(self.device).eval()
        self.render_cfg = render_config(kind, render)
        self.kind = kind

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add ``pred`` (class index or value) and ``seconds`` (per object) to the batch."""
        started = time.perf_counter()
        tensors = {k: torch.as_tensor(np.array(v), device=self.device)
                   for k, v in batch.items() if k in ("wavelength", "flux", "length", "time",
                                                      "value", "err", "band", "is_mag",
                                                      "period")}
        with torch.inference_mode():
            images = render_batch(tensors, self.kind, self.render_cfg)
            with autocast(self.device):
                out = self.model.predict(images)
        pred = out["label"] if "label" in out else out["value"]
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        n = max(len(pred), 1)
        result = {"row": batch["row"], "pred": pred.float().cpu().numpy(),
                  "seconds": np.full(len(pred), (time.perf_counter() - started) / n)}
        if "samples" in out:  # MC Dropout: every pass's probabilities, (B, T * K)
            samples = out["samples"].float().cpu().numpy()  # (T, B, K)
            result["samples"] = samples.transpose(1, 0, 2).reshape(len(pred), -1)
        return result


def arrays_dataset(arrays: dict[str, np.ndarray], rows: np.ndarray, blocks: int) -> Any:
    """A Ray Dataset of the given rows with tensor columns (a few blocks, for sharding).

    Args:
        arrays: equal-length arrays (N, ...) such as :func:`prepare_arrays` gives.
        rows: the rows to keep, in order.
        blocks: most blocks (at most one per row).
    """
    tables = []
    for part in np.array_split(rows, max(1, min(blocks, rows.size))):
        cols = {k: (ArrowTensorArray.from_numpy(np.ascontiguousarray(v[part])) if v.ndim > 1
                    else pa.array(v[part])) for k, v in arrays.items()}
        tables.append(pa.table(cols))
    ds = ray.data.from_arrow(tables)
    ds.context.enable_progress_bars = False
    return ds


def predict_arrays(model_dir: str, arrays: dict[str, np.ndarray], rows: np.ndarray, kind: str,
                   render: dict[str, Any], *, batch_size: int, num_cpus: float, use_gpu: bool
                   ) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Predictions for ``rows`` (in that order), objects per second, sampled probabilities.

    One :class:`VisionPredictor` actor renders and predicts on its own device.

    Args:
        model_dir: a saved vision model folder.
        arrays: prepared arrays of every object (:func:`prepare_arrays`).
        rows: the objects to predict, in the order wanted.
        kind: ``spectra`` or ``lightcurves``.
        render: the render config fields.
        batch_size: images per prediction batch.
        num_cpus: CPUs of the actor.
        use_gpu: give the actor one GPU.

    Returns:
        ``(pred, objects_per_second, samples)``: samples is (T, N, K) for a model with an
        uncertainty head (MC Dropout), else None.
    """
    ds = arrays_dataset({**arrays, "row": np.arange(len(arrays["length"]))}, rows, 4)
    out = ds.map_batches(VisionPredictor, batch_format="numpy", batch_size=batch_size,
                         fn_constructor_kwargs={"model_dir": model_dir, "kind": kind,
                                                "render": render},
                         compute=ray.data.ActorPoolStrategy(size=1),
                         num_cpus=num_cpus, num_gpus=1 if use_gpu else 0)
    res = out.to_pandas()
    order = {int(r): i for i, r in enumerate(res["row"].to_numpy())}
    index = [order[int(r)] for r in rows]
    pred = res["pred"].to_numpy()[index]
    seconds = float(res["seconds"].sum())
    samples = None
    if "samples" in res:
        flat = np.stack(res["samples"].to_numpy()[index])  # (N, T * K)
        samples = flat.reshape(len(rows), _passes(model_dir), -1).transpose(1, 0, 2)  # T, N, K
    return pred, (len(rows) / seconds if seconds > 0 else float("nan")), samples


def _passes(model_dir: str) -> int:
    """Stochastic passes of a saved model's uncertainty head (1 without one)."""
    return int(read_config_json(model_dir).get("passes", 1))
