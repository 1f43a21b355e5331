"""Catalogue predictor of the stamp family: real/bogus scores of alert triplets.

Bulk inference and Serve call it on canonical stamp batches (``batch_format="numpy"``): the
science, reference and difference cutouts of each row (flat, row-major, ``height`` x
``width``) are stacked, cropped and scored by a :class:`~astroray.models.stamps.StampClassifier`.
A row whose cutouts do not hold ``height * width`` pixels, are smaller than the model's crop,
or whose crop has a channel without any finite pixel is a failure naming the object; NaN pixels
otherwise are filled by the model (with the channel's median: background).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from astroray.infer.predictors import _classifier_columns, _Prediction, register_predictor
from astroray.models.stamps import CHANNELS, StampClassifier

__all__ = ["StampPredictor", "stack_stamps"]


def _shape(batch: dict[str, Any], name: str, i: int) -> int | None:
    values = batch.get(name)
    if values is None or values[i] is None:
        return None
    return int(values[i])


def stack_stamps(batch: dict[str, Any], crop_size: int
                 ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Central crops (N, 3, S, S) of the valid rows of a canonical stamp batch.

    Args:
        batch: ``science``, ``reference``, ``difference`` (flat cutouts), ``height``,
            ``width`` per row (a table's ``to_pydict()`` or a numpy batch).
        crop_size: side S of the crop taken from each cutout's centre.

    Returns:
        (crops, rows, failures): float32 crops (NaN kept) of the rows that can be scored,
        those rows' indices, and a reason per row that cannot.
    """
    n = len(batch["science"])
    crops, rows, failures = [], [], {}
    for i in range(n):
        h, w = _shape(batch, "height", i), _shape(batch, "width", i)
        if h is None or w is None:
            failures[i] = "stamp has no height/width"
            continue
        if h < crop_size or w < crop_size:
            failures[i] = f"stamp is {h}x{w}, smaller than the model's {crop_size}x{crop_size} crop"
            continue
        planes, why = [], None
        for name in CHANNELS:
            values = batch[name][i]
            flat = None if values is None else np.asarray(values, dtype=np.float32)
            if flat is None or flat.size != h * w:
                got = "no pixels" if flat is None else f"{flat.size} pixels"
                why = f"{name} cutout has {got}, expected {h}x{w} = {h * w}"
                break
            top, left = (h - crop_size) // 2, (w - crop_size) // 2
            crop = flat.reshape(h, w)[top:top + crop_size, left:left + crop_size]
            if not np.isfinite(crop).any():
                why = f"{name} cutout has no finite pixel in its central {crop_size}x{crop_size}"
                break
            planes.append(crop)
        if why is not None:
            failures[i] = why
            continue
        crops.append(np.stack(planes))  # (3, S, S)
        rows.append(i)
    stacked = (np.stack(crops) if crops
               else np.zeros((0, len(CHANNELS), crop_size, crop_size), np.float32))
    return stacked, np.asarray(rows, dtype=np.int64), failures


@register_predictor("stamp-cnn")
class StampPredictor:
    """Real/bogus scores of stamps: class probabilities, ``real_score`` and the predicted class.

    Columns: ``object_id``, ``stamp_id`` (when the batch has one: an object has one stamp per
    alert), ``prob_<label>`` per class, ``predicted_class``, ``predicted_prob``, ``real_score``
    (the probability of the config's ``real_label``), and ``embedding`` (the normalised
    feature) when asked for.
    """

    kind = "stamp"

    def __init__(self, model_dir: str, *, embedding: bool = False, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = StampClassifier.from_pretrained(model_dir).to(self.device).eval()
        self.config = self.model.config
        self.embedding = embedding
        self.name = Path(model_dir).name

    def __call__(self, batch: dict[str, np.ndarray]) -> _Prediction:
        """Score a canonical stamp batch (``batch_format="numpy"``)."""
        ids = np.asarray(batch["object_id"]).astype(str)
        crops, rows, bad = stack_stamps(batch, self.config.crop_size)
        # Keyed by object id; the errors table bulk inference writes names the object.
        failures = {ids[i]: why for i, why in bad.items()}
        with torch.inference_mode():
            x = torch.from_numpy(crops).to(self.device)  # (N, 3, S, S), the crop is a no-op
            images = self.model.preprocess(x)
            probs = self.model.predict_images(images).cpu().numpy()  # (N, K)
            vectors = None
            if self.embedding:
                feats = torch.nn.functional.normalize(self.model.embed(images), dim=1)
                vectors = feats.cpu().numpy()
        table = _classifier_columns(ids[rows], probs, self.config.labels, vectors)
        if "stamp_id" in batch:
            stamp_ids = [None if s is None else str(s)
                         for s in np.asarray(batch["stamp_id"], dtype=object)[rows]]
            table = table.add_column(1, "stamp_id", pa.array(stamp_ids, pa.string()))
        real = probs[:, self.config.real_index] if len(rows) else np.zeros(0, np.float32)
        table = table.append_column("real_score", pa.array(real.astype(np.float32)))
        return _Prediction(table, failures)
