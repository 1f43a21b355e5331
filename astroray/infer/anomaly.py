"""The anomaly detector's predictor: light curves -> ``anomaly_score`` catalogue columns.

Registered for saved :class:`~astroray.models.anomaly.MCDSVDD` folders (``model_type``
``mcdsvdd``), so that bulk inference (:mod:`astroray.infer.catalogue`) and Serve
(``POST /v1/lightcurves/anomaly``) score light curves the same way: the detector's inputs
(features in its band order, or the embedding of the Astromer encoder it carries), its stored
quantile transform, then the distance to the nearest centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from astroray.infer.astromer import AstromerEmbedder
from astroray.infer.predictors import _Prediction, register_predictor
from astroray.models.anomaly import MCDSVDD, embedding_inputs, feature_inputs

__all__ = ["AnomalyPredictor"]


@register_predictor("mcdsvdd")
class AnomalyPredictor:
    """A saved MCDSVDD / Deep SVDD detector over multi-band light curves.

    Columns: ``anomaly_score`` (distance to the nearest centre over the median training
    score: about 1 for a typical inlier, larger for anomalies) and ``anomaly_nearest_class``
    (the inlier class of that centre; null for a single centre), and with ``embedding`` the
    latent vector. Objects with too few valid points in the detector's bands are failures
    with the reason.
    """

    kind = "lightcurve"
    task = "anomaly"

    def __init__(self, model_dir: str, *, embedding: bool = False, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = MCDSVDD.from_pretrained(model_dir).eval().to(self.device)
        self.config = self.model.config
        self.name = Path(model_dir).name
        self.bands = self.config.bands
        self.inlier_classes = self.config.labels
        self.embedding = embedding
        self.embedder = None
        if self.config.input == "embeddings":
            self.embedder = AstromerEmbedder(
                self.model.astromer, min_points=self.config.min_points,
                bands=None if self.bands is None else list(self.bands), device=str(self.device))

    def __call__(self, batch: dict[str, np.ndarray]) -> _Prediction:
        """Score a canonical batch (``batch_format="numpy"``); failures name the reason."""
        ids = np.asarray(batch["object_id"]).astype(str)
        if self.embedder is None:
            x, ok, reasons = feature_inputs(batch, self.bands, min_points=self.config.min_points)
        else:
            x, ok, reasons = embedding_inputs(batch, self.embedder,
                                              min_points=self.config.min_points,
                                              bands=self.bands)
        failures = {ids[i]: reason for i, reason in reasons.items()}
        for i in np.flatnonzero(ok & ~np.isfinite(x).any(axis=1)):
            failures[ids[i]] = "no input feature of this object is defined"
            ok[i] = False
        scores, nearest, latents = self.model.score(x[ok])
        cols = {"object_id": pa.array(ids[ok], pa.string()),
                "anomaly_score": pa.array(scores.astype(np.float32))}
        if self.config.centres == "per_class":
            cols["anomaly_nearest_class"] = pa.array(
                [self.config.labels[int(k)] for k in nearest], pa.string())
        else:
            cols["anomaly_nearest_class"] = pa.nulls(len(scores), pa.string())
        if self.embedding:
            cols["embedding"] = pa.FixedSizeListArray.from_arrays(
                pa.array(latents.astype(np.float32).reshape(-1)), self.config.latent_dim)
        return _Prediction(pa.table(cols), failures)
