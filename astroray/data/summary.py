"""Per-survey summaries of canonical datasets (the demo's table, manifests, reports).

Labels are shown as the tables hold them: canonical class names (:mod:`astroray.data.taxonomy`);
a label the taxonomy does not know is counted in ``unknown_labels`` and marked with ``?`` in
the text table.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from astroray.data.taxonomy import is_canonical

__all__ = ["format_table", "summarise"]

_LENGTH_COLUMN = {"lightcurve": "time", "spectrum": "wavelength", "stamp": "science"}


def summarise(table: pa.Table, kind: str) -> list[dict[str, Any]]:
    """One row per survey: objects, median points (or pixels), bands, labels, redshifts.

    ``labels`` holds the four most common labels; ``unknown_labels`` the number of objects
    whose label is not a canonical class name.

    Args:
        table: a canonical table of ``kind``.
        kind: ``lightcurve``, ``spectrum`` or ``stamp``.
    """
    rows = []
    surveys = table.column("survey").to_pylist()
    for survey in sorted(set(surveys)):
        sub = table.filter(pc.equal(table.column("survey"), survey))
        lengths = pc.list_value_length(sub.column(_LENGTH_COLUMN[kind])).to_numpy(
            zero_copy_only=False)
        labels = Counter(v for v in sub.column("label").to_pylist() if v is not None)
        row: dict[str, Any] = {
            "kind": kind, "survey": survey, "objects": sub.num_rows,
            "median_length": float(np.median(lengths)) if lengths.size else 0.0,
            "labelled": sum(labels.values()),
            "labels": dict(labels.most_common(4)),
            "unknown_labels": sum(n for v, n in labels.items() if not is_canonical(v)),
        }
        if kind == "lightcurve":
            bands = pc.unique(pc.list_flatten(sub.column("band"))).to_pylist()
            row["bands"] = "".join(sorted(bands)) if all(len(b) == 1 for b in bands) else ",".join(
                sorted(bands))
            z = sub.column("redshift")
        elif kind == "spectrum":
            z = sub.column("z")
        else:
            z = None
        if z is not None:
            row["with_redshift"] = len(z) - z.null_count
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of :func:`summarise` rows."""
    header = ["kind", "survey", "objects", "median pts", "bands", "z", "labels (top 4)"]
    lines = []
    for r in rows:
        labels = ", ".join(f"{k}{'' if is_canonical(k) else '?'} {v}"
                           for k, v in r["labels"].items()) or "-"
        lines.append([r["kind"], r["survey"], str(r["objects"]), f"{r['median_length']:.0f}",
                      r.get("bands", "-"), str(r.get("with_redshift", "-")), labels])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)
