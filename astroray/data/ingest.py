"""``astroray ingest``: survey files -> canonical Parquet dataset + errors table, on Ray.

Output layout of ``OUT``::

    OUT/data/        canonical Parquet (light curves or spectra)
    OUT/stamps/      canonical stamp Parquet (alert packets only)
    OUT/errors/      Parquet errors tables: source, object_id, stage, error
    OUT/manifest.json  what was read, counts, labels, timing

Labels are canonical class names (:mod:`astroray.data.taxonomy`, applied by every reader at the
ingest boundary); the summary counts them per class, and counts apart the labels the taxonomy
does not know (kept as given in the data), so that a new spelling is seen, not lost.

Everything is first written under a hidden staging folder inside ``OUT`` and moved into place
when the run has finished, so a reader of ``OUT`` never sees a half-written dataset.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astroray.config import IngestConfig
from astroray.data.datasource import read_errors, read_survey, write_errors
from astroray.data.registry import ReadPlan, plan_read
from astroray.data.schema import error_table
from astroray.data.taxonomy import count_unknown

__all__ = ["IngestError", "IngestSummary", "count_labels", "ingest", "prepare_inputs",
           "primary_kind"]

logger = logging.getLogger(__name__)


class IngestError(RuntimeError):
    """The ingest could not run at all (no input, inputs of incompatible kinds)."""


@dataclass
class IngestSummary:
    """Counts and locations of one ingest run."""

    out: str
    kind: str
    written: int
    failed: int
    stamps_written: int = 0
    stamps_failed: int = 0
    files: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    inputs: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    unknown_labels: dict[str, int] = field(default_factory=dict)

    @property
    def read(self) -> int:
        """Records seen: written or failed."""
        return self.written + self.failed

    def line(self) -> str:
        """The one-line summary printed at the end of a run."""
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        noun = {"lightcurve": "light curves", "spectrum": "spectra", "stamp": "stamps"}
        text = (f"ingest: {noun.get(self.kind, self.kind)}: read {self.read}, "
                f"written {self.written}, failed {self.failed}")
        if self.stamps_written or self.stamps_failed:
            text += f"; stamps written {self.stamps_written}, failed {self.stamps_failed}"
        if self.unknown_labels:
            n_unknown = sum(self.unknown_labels.values())
            shown = ", ".join(f"{k!r} {v}" for k, v in list(self.unknown_labels.items())[:3])
            text += f"; {n_unknown} unknown label(s) kept as given ({shown})"
        return text + f" ({self.files} files, {self.seconds:.1f} s, {rate:.0f}/s) -> {self.out}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {**asdict(self), "read": self.read}


def primary_kind(plan: ReadPlan) -> str:
    """The record kind the planned files hold; raises when they mix kinds."""
    if not plan.kinds:
        raise IngestError("no readable input files" + (
            f" ({len(plan.errors)} file(s) failed: {plan.errors[0]['error']})"
            if plan.errors else ""))
    if len(plan.kinds) > 1:
        detail = ", ".join(f"{n} {k} file(s)" for k, n in sorted(plan.kinds.items()))
        raise IngestError(f"inputs mix record kinds ({detail}); ingest each kind into its own "
                          "output folder")
    return next(iter(plan.kinds))


def prepare_inputs(config: IngestConfig, workdir: str | Path) -> IngestConfig:
    """Generate the config's synthetic survey into ``workdir`` when it names no paths.

    Returns:
        The config with ``paths`` pointing at the generated survey (unchanged when it had
        paths).
    """
    if config.paths or config.synthetic is None:
        return config
    from astroray.data.synthetic import make_survey

    make_survey(config.synthetic, workdir)
    return config.replace(paths=(str(workdir),))


def _count_rows(folder: str) -> int:
    if not os.path.isdir(folder):
        return 0
    return sum(pq.ParquetFile(os.path.join(folder, f)).metadata.num_rows
               for f in os.listdir(folder) if f.endswith(".parquet"))


def count_labels(folders: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Label counts of written canonical Parquet, and the labels the taxonomy does not know.

    Reads only the ``label`` column.

    Returns:
        (labels, unknown): ``{label: objects}`` (nulls left out), most common first, and the
        part of it whose labels are not canonical names.
    """
    columns = []
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".parquet"):
                columns.append(pq.read_table(os.path.join(folder, name),
                                             columns=["label"]).column("label"))
    if not columns:
        return {}, {}
    labels = pa.chunked_array([c for col in columns for c in col.chunks], type=pa.string())
    counts = {c["values"]: int(c["counts"]) for c in pc.value_counts(labels).to_pylist()
              if c["values"] is not None}
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return ordered, count_unknown(labels)


def ingest(config: IngestConfig, out: str | Path) -> IngestSummary:
    """Read every input of ``config`` on Ray and write the canonical dataset to ``out``.

    Ray must be initialised (``astroray.ray_utils.ensure_ray``). Records that fail go to
    ``out/errors``; the run still succeeds.

    Raises:
        IngestError: when there is nothing to read or the inputs mix record kinds.
    """
    t0 = time.perf_counter()
    out = os.path.abspath(str(out))
    plan = plan_read(list(config.paths), format=config.format, labels=list(config.labels) or None)
    try:
        kind = primary_kind(plan)
    except IngestError:
        if plan.errors and not plan.kinds:
            # Nothing readable, but every file that was tried is still accounted for.
            errors_dir = os.path.join(out, "errors")
            shutil.rmtree(errors_dir, ignore_errors=True)
            write_errors(error_table(plan.errors), errors_dir, "errors-plan.parquet")
        raise
    os.makedirs(out, exist_ok=True)
    stage = os.path.join(out, f".staging-{uuid.uuid4().hex[:8]}")
    errors_dir = os.path.join(stage, "errors")
    os.makedirs(errors_dir)
    try:
        ds = read_survey([], kind, plan=plan, errors_dir=errors_dir, survey=config.survey,
                         override_num_blocks=config.num_blocks, num_cpus=config.read_cpus)
        ds.write_parquet(os.path.join(stage, "data"))
        if kind != "stamp" and any(u.provides("stamp") for u in plan.units):
            stamp_plan = plan.for_kind("stamp")
            stamp_plan.errors = []  # the non-alert files are not stamp failures
            stamps = read_survey([], "stamp", plan=stamp_plan, errors_dir=errors_dir,
                                 survey=config.survey, num_cpus=config.read_cpus)
            stamps.write_parquet(os.path.join(stage, "stamps"))
        error_kinds = read_errors(errors_dir).column("kind").to_pylist()
        labels, unknown = count_labels([os.path.join(stage, "data")])
        summary = IngestSummary(
            out=out, kind=kind,
            written=_count_rows(os.path.join(stage, "data")),
            failed=sum(1 for k in error_kinds if k != "stamp"),
            stamps_written=_count_rows(os.path.join(stage, "stamps")),
            stamps_failed=sum(1 for k in error_kinds if k == "stamp"),
            files=sum(len(u.paths) for u in plan.units) + len(plan.errors),
            formats=dict(plan.formats), inputs=[str(p) for p in config.paths],
            labels=labels, unknown_labels=unknown,
        )
        for name in ("data", "stamps", "errors"):
            target = os.path.join(out, name)
            if os.path.exists(target):
                shutil.rmtree(target)
            source = os.path.join(stage, name)
            if os.path.exists(source):
                os.replace(source, target)
            elif name != "stamps":
                os.makedirs(target)
        summary.seconds = time.perf_counter() - t0
        manifest = {**summary.to_dict(), "config": config.to_dict(),
                    "label_tables": plan.label_tables, "plan_seconds": plan.seconds}
        with open(os.path.join(out, "manifest.json"), "w") as fh:
            json.dump(manifest, fh, indent=2)
        return summary
    finally:
        shutil.rmtree(stage, ignore_errors=True)

