"""Model cards: what a saved model was trained on, how it scored, and where it may be trusted.

A classifier folder carries ``model_card.json`` beside ``config.json`` and
``model.safetensors``, and ``split.parquet`` (``survey``, ``object_id``, ``split``: ``train``,
``validation`` or ``test``) naming every labelled object it saw. The card holds:

* ``training_data``: the inputs, their surveys, bands and class counts per split;
* ``held_out``: the metrics on the test split (objects never trained on), with a digest of
  its ids;
* ``domain``: what "like the training data" means for this model: its surveys, its bands, the
  range of median cadences (days between consecutive points of one band) and of point counts,
  and the classifier's own confidence threshold (``1 - predicted_prob`` above the 95th
  percentile of the validation objects' is "not confident").

:class:`DomainCheck` turns the ``domain`` section into a per-object ``in_domain`` flag with a
reason, the same way in bulk inference, Serve and :func:`astroray.predict`. Reports use the
split to score held-out objects only.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["CARD_NAME", "SPLIT_NAME", "DomainCheck", "digest_ids", "light_curve_domain",
           "read_model_card", "read_split", "write_model_card"]

CARD_NAME = "model_card.json"
SPLIT_NAME = "split.parquet"

#: Median cadences and point counts are accepted this many times beyond the training range:
#: a survey at a somewhat different cadence is still the same kind of data, one at a tenth
#: or ten times the cadence is not.
CADENCE_SLACK = 3.0
#: Quantile of the validation objects' ``1 - predicted_prob`` above which a prediction is
#: flagged as not confident (so about 5% of in-domain objects are flagged by construction).
CONFIDENCE_QUANTILE = 0.95


def digest_ids(keys: Iterable[str]) -> str:
    """SHA-256 (16 hex digits) of sorted ``survey/object_id`` keys: a split's fingerprint."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def _median_cadence(time: np.ndarray, band: np.ndarray) -> float:
    """Median gap (days) between consecutive points of the same band; NaN with one point."""
    gaps = []
    for b in np.unique(band):
        t = np.sort(time[band == b])
        if t.size > 1:
            gaps.append(np.diff(t))
    if not gaps:
        return float("nan")
    return float(np.median(np.concatenate(gaps)))


def _object_stats(times: Iterable[Any], bands: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per object: median cadence (days) and number of points."""
    cadence, points = [], []
    for t, b in zip(times, bands, strict=True):
        t = np.asarray(t if t is not None else [], dtype=np.float64)
        b = np.asarray(b if b is not None else [], dtype=object)
        cadence.append(_median_cadence(t, b) if t.size else float("nan"))
        points.append(t.size)
    return np.asarray(cadence, np.float64), np.asarray(points, np.float64)


def light_curve_domain(table: pa.Table) -> dict[str, Any]:
    """The ``domain`` section of a light-curve model's card from its training objects.

    Args:
        table: canonical light curves (``survey``, ``time``, ``band``) the model learnt from.
    """
    surveys = Counter(table.column("survey").to_pylist()) if "survey" in table.column_names \
        else Counter()
    bands: Counter[str] = Counter()
    for row in table.column("band").to_pylist():
        bands.update(set(row or []))
    cadence, points = _object_stats(table.column("time").to_pylist(),
                                    table.column("band").to_pylist())
    finite = cadence[np.isfinite(cadence) & (cadence > 0)]

    def q(values: np.ndarray, p: float) -> float | None:
        return float(np.quantile(values, p)) if values.size else None

    return {"kind": "lightcurve", "surveys": sorted(surveys), "bands": sorted(bands),
            "cadence_days": [q(finite, 0.01), q(finite, 0.99)],
            "points": [q(points, 0.01), q(points, 0.99)],
            "cadence_slack": CADENCE_SLACK}


def write_model_card(folder: str | Path, card: Mapping[str, Any],
                     split: Mapping[str, Iterable[tuple[str, str]]] | None = None) -> Path:
    """Write ``model_card.json`` (and ``split.parquet`` from ``{split: [(survey, id)]}``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = dict(card)
    if split is not None:
        rows = [(s, str(sv), str(oid)) for s, keys in split.items() for sv, oid in keys]
        pq.write_table(pa.table({"survey": [r[1] for r in rows],
                                 "object_id": [r[2] for r in rows],
                                 "split": [r[0] for r in rows]}), folder / SPLIT_NAME)
        data["splits"] = {s: {"objects": sum(1 for r in rows if r[0] == s),
                              "ids_sha256": digest_ids(f"{r[1]}/{r[2]}" for r in rows
                                                       if r[0] == s)}
                          for s in split}
    path = folder / CARD_NAME
    path.write_text(json.dumps(data, indent=2, default=_json_default))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_model_card(folder: str | Path) -> dict[str, Any] | None:
    """The folder's model card, or None when it has none (folders saved before cards)."""
    path = Path(folder) / CARD_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def read_split(folder: str | Path) -> pa.Table | None:
    """The folder's ``split.parquet`` (``survey``, ``object_id``, ``split``), or None."""
    path = Path(folder) / SPLIT_NAME
    return pq.read_table(path) if path.is_file() else None


class DomainCheck:
    """Per object: does it lie inside what the model was trained on, and if not, why.

    Checks, in order (the first failure is the reason): the survey is one the model was
    trained on; every band the model reads is one it was trained on; the median cadence and
    the number of points are within :data:`CADENCE_SLACK` times the training range; the
    classifier is confident (``1 - predicted_prob`` at most the stored threshold).
    """

    def __init__(self, domain: Mapping[str, Any], *, model_bands: Iterable[str] | None = None):
        self.domain = dict(domain)
        self.surveys = set(self.domain.get("surveys") or [])
        self.bands = set(self.domain.get("bands") or [])
        self.model_bands = set(model_bands) if model_bands else None
        self.slack = float(self.domain.get("cadence_slack", CADENCE_SLACK))
        self.threshold = (self.domain.get("confidence") or {}).get("threshold")

    def _range(self, name: str) -> tuple[float, float] | None:
        lo, hi = (self.domain.get(name) or [None, None])[:2]
        if lo is None or hi is None:
            return None
        return float(lo) / self.slack, float(hi) * self.slack

    def __call__(self, batch: Mapping[str, np.ndarray], rows: np.ndarray,
                 predicted_prob: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """Flags of the batch rows ``rows``.

        Args:
            batch: the canonical numpy batch (``survey``, ``time``, ``band`` per row).
            rows: positions in ``batch`` of the objects to check.
            predicted_prob: their winning probability (None: no confidence check).

        Returns:
            ``in_domain`` (bool), ``ood_score`` (``1 - predicted_prob``, NaN without one) and
            the reason of each object outside (None inside).
        """
        n = len(rows)
        surveys = [str(v) for v in np.asarray(batch["survey"])[rows]] \
            if "survey" in batch else [None] * n
        times = [batch["time"][i] for i in rows] if "time" in batch else [None] * n
        bands = [batch["band"][i] for i in rows] if "band" in batch else [None] * n
        cadence, points = _object_stats(times, bands) if "time" in batch else \
            (np.full(n, np.nan), np.full(n, np.nan))
        cad_range, pts_range = self._range("cadence_days"), self._range("points")
        score = (1.0 - np.asarray(predicted_prob, np.float64)) if predicted_prob is not None \
            else np.full(n, np.nan)
        reasons: list[str | None] = []
        for i in range(n):
            reasons.append(self._reason(surveys[i], bands[i], cadence[i], points[i], score[i],
                                        cad_range, pts_range))
        ok = np.array([r is None for r in reasons], dtype=bool)
        return ok, score, reasons

    def _reason(self, survey: str | None, bands: Any, cadence: float, points: float,
                score: float, cad_range: tuple[float, float] | None,
                pts_range: tuple[float, float] | None) -> str | None:
        # "api" is the survey of a Serve request that named none: unknown, not foreign.
        if self.surveys and survey not in (None, "", "api") and survey not in self.surveys:
            return f"survey {survey} not in training ({', '.join(sorted(self.surveys))})"
        if bands is not None and self.bands:
            seen = set(np.asarray(bands, dtype=object).tolist())
            read = seen & self.model_bands if self.model_bands else seen
            unknown = sorted(read - self.bands)
            if unknown or not read:
                return (f"bands {','.join(sorted(seen))} not in training bands "
                        f"({','.join(sorted(self.bands))})")
        if cad_range is not None and np.isfinite(cadence) and not (
                cad_range[0] <= cadence <= cad_range[1]):
            return (f"median cadence {cadence:.3g} d outside the training range "
                    f"({cad_range[0]:.3g}-{cad_range[1]:.3g} d)")
        if pts_range is not None and np.isfinite(points) and not (
                pts_range[0] <= points <= pts_range[1]):
            return (f"{int(points)} points outside the training range "
                    f"({pts_range[0]:.0f}-{pts_range[1]:.0f})")
        if self.threshold is not None and np.isfinite(score) and score > self.threshold:
            return f"not confident (1 - p = {score:.2f} > {float(self.threshold):.2f})"
        return None
