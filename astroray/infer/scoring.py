"""Scoring a catalogue honestly: held-out labelled objects only, per survey and per domain.

A labelled catalogue row is scored when its label is one of the model's classes and the
model never saw it: objects of the model card's ``train`` and ``validation`` splits (keyed by
``survey`` and ``object_id``) are left out and counted, with the reason. Objects whose label is
not among the model's classes cannot be classified right; they measure the out-of-domain flag
instead (the share flagged ``in_domain = false``). A model without a card cannot tell its
training objects apart, so nothing is scored and the report says why.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.metrics import confusion_matrix, macro_f1
from astroray.models.card import read_model_card, read_split
from astroray.models.pretrained import read_config_json

__all__ = ["ScoredCatalogue", "score_catalogue", "subset_metrics"]


def _column(table: pa.Table, name: str) -> np.ndarray | None:
    if name not in table.column_names:
        return None
    return np.asarray(table.column(name).to_pylist(), dtype=object)


def subset_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]
                   ) -> dict[str, Any]:
    """Accuracy, macro F1 (over the classes present among the true labels) and confusion.

    Macro F1 averages over the classes that occur in ``y_true`` only: a held-out subset that
    holds two of six classes (the Stripe 82 RR Lyrae under a six-class model) is scored on
    those two; predictions of the other classes still count as errors.
    """
    if not len(y_true):
        return {"objects": 0, "accuracy": None, "macro_f1": None}
    present = sorted(set(y_true.tolist()), key=classes.index)
    return {"objects": int(len(y_true)),
            "accuracy": round(float(np.mean(y_true == y_pred)), 4),
            "macro_f1": round(macro_f1(y_true, y_pred, labels=present), 4),
            "classes": present,
            "confusion": confusion_matrix(y_true, y_pred, labels=classes)[0].tolist()}


class ScoredCatalogue:
    """What :func:`score_catalogue` found: the held-out rows and the counts left out.

    Attributes:
        scored: whether held-out objects could be told apart (the model has a card).
        why_not: the reason when not.
        classes: the model's classes.
        held_out: catalogue rows of held-out labelled objects among the model's classes.
        left_out: labelled objects not scored, counted by reason.
        foreign: labelled objects whose class the model does not know, by label, with the
            number flagged out of domain.
        metrics: overall, per survey and per domain (in / out / unknown) of the held-out rows.
        card_metrics: the held-out metrics the model card records from training.
    """

    def __init__(self) -> None:
        self.scored = False
        self.why_not: str | None = None
        self.classes: list[str] = []
        self.held_out: pa.Table | None = None
        self.left_out: dict[str, int] = {}
        self.foreign: dict[str, dict[str, int]] = {}
        self.metrics: dict[str, Any] = {}
        self.card_metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no rows)."""
        return {"scored": self.scored, "why_not": self.why_not, "classes": self.classes,
                "held_out_objects": 0 if self.held_out is None else self.held_out.num_rows,
                "left_out": self.left_out, "foreign_labels": self.foreign,
                "metrics": self.metrics, "model_card_held_out": self.card_metrics}

    def line(self) -> str:
        """One line for a console summary."""
        parts = []
        if self.card_metrics and self.card_metrics.get("macro_f1") is not None:
            parts.append(f"held-out macro F1 {self.card_metrics['macro_f1']:.3f} on "
                         f"{self.card_metrics.get('objects')} test objects (model card)")
        overall = self.metrics.get("all") or {}
        if overall.get("objects"):
            parts.append(f"{overall['objects']} labelled catalogue objects never trained on: "
                         f"macro F1 {overall['macro_f1']:.3f}, accuracy "
                         f"{overall['accuracy']:.3f}")
        elif not self.scored and self.why_not:
            parts.append(f"not scored: {self.why_not}")
        n_foreign = sum(v["objects"] for v in self.foreign.values())
        if n_foreign:
            flagged = sum(v["flagged"] for v in self.foreign.values())
            parts.append(f"{flagged} of {n_foreign} objects of classes it does not know flagged "
                         "out of domain")
        return "; ".join(parts)


def score_catalogue(cat: pa.Table, model_dir: str | Path) -> ScoredCatalogue:
    """Score a catalogue's labelled rows that ``model_dir`` never trained on.

    Args:
        cat: catalogue rows (``object_id``, ``survey``, ``label``, ``predicted_class``, and
            ``in_domain`` when the model has a card).
        model_dir: the model folder the catalogue was made with.
    """
    out = ScoredCatalogue()
    try:
        raw = read_config_json(model_dir)
    except (OSError, ValueError):
        raw = {}
    card = read_model_card(model_dir) if Path(model_dir).is_dir() else None
    out.classes = list((card or {}).get("classes") or raw.get("labels") or [])
    out.card_metrics = (card or {}).get("held_out")
    labels, pred = _column(cat, "label"), _column(cat, "predicted_class")
    if labels is None or pred is None or not out.classes:
        out.why_not = ("the catalogue has no known labels" if labels is None
                       else "the model is not a classifier")
        return out
    has_label = np.array([v is not None for v in labels], dtype=bool)
    known = has_label & np.isin(labels, out.classes)
    foreign = has_label & ~known
    in_domain = _column(cat, "in_domain")
    for label in sorted(set(labels[foreign].tolist())):
        rows = foreign & (labels == label)
        flagged = int(sum(1 for v in in_domain[rows] if v is False)) if in_domain is not None \
            else 0
        out.foreign[str(label)] = {"objects": int(rows.sum()), "flagged": flagged}
    if foreign.any():
        out.left_out["label not among the model's classes"] = int(foreign.sum())
    split = read_split(model_dir) if card is not None else None
    if split is None:
        out.why_not = ("the model has no model card (split.parquet), so objects it was trained "
                       "on cannot be told apart; nothing is scored")
        if known.any():
            out.left_out["no model card: training objects unknown"] = int(known.sum())
        return out
    seen = {f"{s}/{o}": sp for s, o, sp in zip(split.column("survey").to_pylist(),
                                              split.column("object_id").to_pylist(),
                                              split.column("split").to_pylist(), strict=True)}
    keys = [f"{s}/{o}" for s, o in zip(cat.column("survey").to_pylist(),
                                       cat.column("object_id").to_pylist(), strict=True)]
    used = np.array([seen.get(k) in ("train", "validation") for k in keys], dtype=bool)
    for sp, n in Counter(seen[k] for k, u, kn in zip(keys, used, known, strict=True)
                         if u and kn).items():
        reason = ("trained on (train split)" if sp == "train"
                  else "used for early stopping (validation split)")
        out.left_out[reason] = n
    held = known & ~used
    out.scored = True
    out.held_out = cat.filter(pa.array(held))
    y, p = labels[held], pred[held]
    out.metrics["all"] = subset_metrics(y, p, out.classes)
    surveys = np.asarray(cat.column("survey").to_pylist(), dtype=object)[held]
    out.metrics["survey"] = {str(s): subset_metrics(y[surveys == s], p[surveys == s],
                                                    out.classes)
                             for s in sorted(set(surveys.tolist()))}
    if in_domain is not None:
        dom = in_domain[held]
        out.metrics["domain"] = {
            name: subset_metrics(y[mask], p[mask], out.classes)
            for name, mask in (("in domain", np.array([v is True for v in dom], bool)),
                               ("out of domain", np.array([v is False for v in dom], bool)))
            if mask.any()}
    return out
