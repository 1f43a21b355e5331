"""Catalogue predictor of the vision family: render inputs on the actor's device, then ViT/SwinV2.

A fine-tuned vision model folder holds ``render.json`` beside its weights (the input kind,
the render config, the band order and the length cap it was trained with), so that bulk
inference and Serve draw exactly the pictures the model learned from. A model trained on
folded light curves (``render.fold``) folds every object the same way: at its ``period``
column, or at the best Lomb-Scargle period searched here once per object (a periodogram each,
~0.1-0.2 s of CPU); the period used and its Lomb-Scargle power come out as the ``period`` and
``period_power`` columns (null power: a catalogue period; null period: too few points to
search, drawn against time).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from astroray.infer.predictors import (
    _classifier_columns,
    _Prediction,
    _uncertainty_columns,
    register_predictor,
)

__all__ = ["VisionCataloguePredictor"]

_KINDS = {"spectra": "spectrum", "lightcurves": "lightcurve"}


def _render_spec(model_dir: str | Path) -> dict[str, Any]:
    from astroray.train.vision import RENDER_SPEC

    path = Path(model_dir) / RENDER_SPEC
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a vision model needs the render spec its "
                                "fine-tuning job writes beside it")
    return json.loads(path.read_text())


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
        return _KINDS[_render_spec(model_dir)["kind"]]

    def __init__(self, model_dir: str, *, embedding: bool = False, device: str | None = None):
        from astroray.models.vision import VisionTransformer
        from astroray.render import LightCurveRenderConfig, SpectrumRenderConfig

        spec = _render_spec(model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = VisionTransformer.from_pretrained(model_dir).to(self.device).eval()
        self.spec_kind = spec["kind"]
        self.kind = _KINDS[self.spec_kind]
        cls = SpectrumRenderConfig if self.spec_kind == "spectra" else LightCurveRenderConfig
        self.render_cfg = cls.from_dict(spec["render"])
        self.max_length = int(spec["max_length"])
        self.bands = None if spec.get("bands") is None else tuple(spec["bands"])
        self.embedding = embedding
        self.name = Path(model_dir).name

    def __call__(self, batch: dict[str, np.ndarray]) -> _Prediction:
        """Predict a canonical batch (``batch_format="numpy"``)."""
        from astroray.train.trainer import autocast
        from astroray.train.vision import prepare_arrays, render_batch

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
                from astroray.uncertainty import uncertainty_scores

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
