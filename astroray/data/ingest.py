"""``astroray ingest``: survey files -> canonical Parquet dataset + errors table, on Ray.

Output layout of ``OUT``::

    OUT/data/          canonical Parquet (light curves or spectra)
    OUT/stamps/        canonical stamp Parquet (alert packets only; absent otherwise)
    OUT/errors/        Parquet errors tables: source, object_id, stage, error, kind
    OUT/manifest.json  what was read, counts, labels, skipped paths, duplicates, timing
    OUT/_ingest/       astroray's own: the published versions and the pointer to one

How ``OUT`` is owned, locked and replaced by one atomic swap: :mod:`astroray.data.publish`.

**Duplicate object ids** (one survey and id in several records: the same star in two files,
two alert packets of one object) are kept, since they are different inputs; they are counted
in the summary line ("N duplicate object id(s) (same survey and id in several files)") and the
manifest (``duplicate_ids``, ``duplicate_rows`` and, for the first 1,000 ids, their sources),
and each copy after the first (in sorted source order) is an errors-table row of stage
``duplicate``: "duplicate of <object_id> from <source>". Those rows are not failures:
``failed`` does not count them. Stamps are not checked (an object has one stamp per alert).

**Paths passed over** by the walk (hidden or ``_`` names, broken links, links to a folder or
file reached already, pipes) are counted per reason in the manifest (``skipped``) and the
summary line, and listed (``skipped_paths``, first 1,000).

Labels are canonical class names (:mod:`astroray.data.taxonomy`, applied by every reader at the
ingest boundary); the summary counts them per class, and counts apart the labels the taxonomy
does not know (kept as given in the data), so that a new spelling is seen, not lost.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astroray.config import Config, check, check_cpus, check_positive_ints
from astroray.data import fileio
from astroray.data.datasource import read_errors, read_survey, write_errors
from astroray.data.publish import (
    _FAILED,
    _LAYOUT,
    CURRENT,
    IngestError,
    _clean_leftovers,
    _locked,
    _prepare_ours,
    _publish,
    _remove,
    _write_json,
    check_output,
    published,
)
from astroray.data.registry import ReadPlan, list_formats, plan_read
from astroray.data.schema import error_table
from astroray.data.synthetic import SyntheticSurveyConfig, generate_survey
from astroray.data.taxonomy import count_unknown

__all__ = ["IngestConfig", "IngestError", "IngestSummary", "check_output", "count_labels", "ingest",
           "prepare_inputs", "primary_kind", "published"]

logger = logging.getLogger(__name__)

#: Paths listed by name in the manifest (skipped paths, duplicate ids); the rest are counted.
_LISTED = 1000


@dataclass
class IngestConfig(Config):
    """Settings of ``astroray ingest`` / ``jobs/ingest.py``.

    Attributes:
        paths: input files or folders (local paths or URIs).
        format: reader name for every file; None sniffs each file.
        labels: label tables to join instead of those found beside the data.
        survey: override the survey name readers infer.
        synthetic: a :class:`~astroray.data.synthetic.SyntheticSurveyConfig` (or its mapping)
            generated as input when ``paths`` is empty.
        task_cpus: CPUs per read task (fractional values let more tasks share a core).
        num_blocks: number of read tasks; None lets Ray decide.
        overwrite: replace what stands in the way in the output folder (``data/``,
            ``errors/``, ``stamps/``, ``manifest.json`` and ``_ingest/`` that astroray did
            not write); without it such a folder is refused (``--overwrite`` on the CLI).
        max_depth: folder levels the walk of ``paths`` may enter below an input folder
            before it stops with an error.
        max_files: files the walk of ``paths`` may find before it stops with an error.
    """

    paths: tuple[str, ...] = ()
    format: str | None = None
    labels: tuple[str, ...] = ()
    survey: str | None = None
    # Typed loosely so that a bad mapping's error names the SyntheticSurveyConfig field.
    synthetic: Any = None
    task_cpus: float = 1.0
    num_blocks: int | None = None
    overwrite: bool = False
    max_depth: int = 32
    max_files: int = 10_000_000

    def __post_init__(self) -> None:
        for name in ("paths", "labels"):  # a string or a list of strings, nothing else
            value = getattr(self, name)
            if isinstance(value, str | Path):
                value = (str(value),)
            check(isinstance(value, list | tuple)
                  and all(isinstance(v, str | Path) for v in value), self, name, value,
                  "a path or a list of paths")
            setattr(self, name, tuple(str(v) for v in value))
        if self.synthetic is not None:
            if isinstance(self.synthetic, dict):
                self.synthetic = SyntheticSurveyConfig.from_dict(self.synthetic)
            check(isinstance(self.synthetic, SyntheticSurveyConfig), self, "synthetic",
                  self.synthetic, "a SyntheticSurveyConfig mapping or null")
        check(bool(self.paths) or self.synthetic is not None, self, "paths", self.paths,
              "at least one input path (or a synthetic survey)")
        if self.format is not None:
            check(self.format in list_formats(), self, "format", self.format,
                  f"one of {list_formats()}")
        check_cpus(self, "task_cpus")
        check(self.num_blocks is None or (isinstance(self.num_blocks, int)
                                          and self.num_blocks > 0),
              self, "num_blocks", self.num_blocks, "a positive integer or null")
        check(isinstance(self.overwrite, bool), self, "overwrite", self.overwrite,
              "true or false")
        check(isinstance(self.max_depth, int) and not isinstance(self.max_depth, bool)
              and self.max_depth >= 0, self, "max_depth", self.max_depth,
              "a non-negative integer")
        check_positive_ints(self, "max_files")


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
    duplicate_ids: int = 0
    duplicate_rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

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
        if self.duplicate_ids:
            text += (f"; {self.duplicate_ids} duplicate object id(s) (same survey and id in "
                     "several files)")
        if self.unknown_labels:
            n_unknown = sum(self.unknown_labels.values())
            shown = ", ".join(f"{k!r} {v}" for k, v in list(self.unknown_labels.items())[:3])
            text += f"; {n_unknown} unknown label(s) kept as given ({shown})"
        if self.skipped:
            reasons = ", ".join(f"{n} {reason}" for reason, n in self.skipped.items())
            text += f"; {sum(self.skipped.values())} path(s) skipped ({reasons})"
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
        example = {}
        for unit in sorted(plan.units, key=lambda u: u.paths[0]):
            example.setdefault(unit.kind, unit.paths[0])
        detail = "; ".join(f"{n} {k} file(s), e.g. {example.get(k, '?')}"
                           for k, n in sorted(plan.kinds.items()))
        raise IngestError(f"inputs mix record kinds ({detail}); ingest each kind into its own "
                          "output folder")
    return next(iter(plan.kinds))


def prepare_inputs(config: IngestConfig, workdir: str | Path) -> IngestConfig:
    """Generate the config's synthetic survey into ``workdir`` when it names no paths.

    The survey is generated once (:func:`~astroray.data.synthetic.generate_survey`): a rerun
    into the same ``workdir`` reads the files already there.

    Returns:
        The config with ``paths`` pointing at the generated survey (unchanged when it had
        paths).
    """
    if config.paths or config.synthetic is None:
        return config
    generate_survey(config.synthetic, workdir)
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


# ---- duplicates ----------------------------------------------------------------------------


def find_duplicates(folder: str, kind: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records of ``folder`` that share a survey and an object id.

    Reads only the ``survey``, ``object_id`` and ``source`` columns.

    Returns:
        (errors, groups): an error row of stage ``duplicate`` for every copy after the first
        (copies ordered by source path), and one ``{survey, object_id, sources}`` per id met
        more than once.
    """
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.endswith(".parquet")) if os.path.isdir(folder) else []
    if not files:
        return [], []
    table = pa.concat_tables([pq.read_table(f, columns=["survey", "object_id", "source"])
                              for f in files])
    counts = table.group_by(["survey", "object_id"]).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts.column("count_all"), 1))
    if not dup.num_rows:
        return [], []
    # Only the rows of the duplicated ids are looked at in Python.
    rows = table.filter(pc.is_in(table.column("object_id"),
                                 value_set=dup.column("object_id").combine_chunks()))
    keys = set(zip(dup.column("survey").to_pylist(), dup.column("object_id").to_pylist(),
                   strict=True))
    sources: dict[tuple[str, str], list[str]] = {}
    for row in rows.to_pylist():
        key = (row["survey"], row["object_id"])
        if key in keys:
            sources.setdefault(key, []).append(row["source"] or "")
    errors, groups = [], []
    for (survey, object_id), paths in sorted(sources.items()):
        paths.sort()
        groups.append({"survey": survey, "object_id": object_id, "sources": paths})
        errors.extend(
            {"source": path, "object_id": object_id, "stage": "duplicate", "kind": kind,
             "error": f"{fileio.basename(path)}: duplicate of {object_id} ({survey}) from "
                      f"{paths[0]}; both rows kept"}
            for path in paths[1:])
    return errors, groups


def _manifest(summary: IngestSummary, config: IngestConfig, plan: ReadPlan,
              groups: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {**summary.to_dict(), "config": config.to_dict(),
            "label_tables": plan.label_tables, "plan_seconds": plan.seconds,
            "skipped_paths": [{"path": s.path, "reason": s.reason, "detail": s.detail}
                              for s in plan.skipped[:_LISTED]],
            "duplicates": groups[:_LISTED], "layout": _LAYOUT, **extra}


def ingest(config: IngestConfig, out: str | Path) -> IngestSummary:
    """Read every input of ``config`` on Ray and write the canonical dataset to ``out``.

    Ray must be initialised (``astroray.ray_utils.ensure_ray``). Records that fail go to
    ``out/errors``; the run still succeeds. See the module's notes for the output folder's
    rules and the atomic swap.

    Raises:
        IngestError: when ``out`` cannot be used, there is nothing to read or the inputs mix
            record kinds (nothing is written then, except an errors-only version when no
            input could be read).
        astroray.data.fileio.PathLimitError: when the walk of the inputs exceeds
            ``config.max_depth`` or ``config.max_files``.
    """
    t0 = time.perf_counter()
    out = os.path.abspath(str(out))
    in_the_way = check_output(out, config.paths, overwrite=config.overwrite)
    plan = plan_read(list(config.paths), format=config.format,
                     labels=list(config.labels) or None, max_depth=config.max_depth,
                     max_files=config.max_files)
    try:
        kind = primary_kind(plan)
    except IngestError as exc:
        if plan.errors and not plan.kinds:
            # Nothing readable, but every file that was tried is still accounted for.
            where = _publish_failure(config, out, plan, in_the_way, str(exc), t0)
            raise IngestError(f"{exc}; errors table: {where}") from None
        raise
    ours = _prepare_ours(out, config.overwrite)
    with _locked(ours, out):
        _clean_leftovers(out, ours)
        stage = os.path.join(ours, f"staging-{uuid.uuid4().hex[:8]}")
        errors_dir = os.path.join(stage, "errors")
        os.makedirs(errors_dir)
        try:
            summary, groups = _write(config, plan, kind, stage, out)
            summary.seconds = time.perf_counter() - t0
            _write_json(os.path.join(stage, "manifest.json"),
                        _manifest(summary, config, plan, groups))
            _publish(out, ours, stage, in_the_way)
            return summary
        finally:
            _remove(stage)  # gone when published; a failed run's partial tree goes too


def _write(config: IngestConfig, plan: ReadPlan, kind: str, stage: str,
           out: str) -> tuple[IngestSummary, list[dict[str, Any]]]:
    """Read and write the whole tree of one run into ``stage``; returns its summary."""
    errors_dir = os.path.join(stage, "errors")
    ds = read_survey([], kind, plan=plan, errors_dir=errors_dir, survey=config.survey,
                     override_num_blocks=config.num_blocks, num_cpus=config.task_cpus)
    ds.write_parquet(os.path.join(stage, "data"))
    os.makedirs(os.path.join(stage, "data"), exist_ok=True)  # an empty dataset writes none
    if kind != "stamp" and any(u.provides("stamp") for u in plan.units):
        stamp_plan = plan.for_kind("stamp")
        stamp_plan.errors = []  # the non-alert files are not stamp failures
        stamps = read_survey([], "stamp", plan=stamp_plan, errors_dir=errors_dir,
                             survey=config.survey, num_cpus=config.task_cpus)
        stamps.write_parquet(os.path.join(stage, "stamps"))
    error_kinds = read_errors(errors_dir).column("kind").to_pylist()
    duplicates, groups = find_duplicates(os.path.join(stage, "data"), kind)
    if duplicates:
        write_errors(error_table(duplicates), errors_dir, "errors-duplicate.parquet")
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
        duplicate_ids=len(groups), duplicate_rows=len(duplicates),
        skipped=plan.skipped_counts(),
    )
    return summary, groups


def _publish_failure(config: IngestConfig, out: str, plan: ReadPlan, in_the_way: Sequence[str],
                     message: str, t0: float) -> str:
    """Account for the files of a run that could read nothing.

    Into a folder without a result, a version holding only the errors table is published
    (``OUT/errors`` names every file tried). A published result is never replaced by such a
    run (a mistyped path must not wipe a dataset): the errors table then goes to
    ``OUT/_ingest/failed/``, removed by the next run that publishes.

    Returns:
        Where the errors table is.
    """
    ours = _prepare_ours(out, config.overwrite)
    with _locked(ours, out):
        _clean_leftovers(out, ours)
        errors = error_table(plan.errors)
        if os.path.lexists(os.path.join(ours, CURRENT)) or (
                in_the_way and not config.overwrite):
            failed = os.path.join(ours, _FAILED)
            _remove(failed)
            write_errors(errors, failed, "errors-plan.parquet")
            return failed
        stage = os.path.join(ours, f"staging-{uuid.uuid4().hex[:8]}")
        try:
            write_errors(errors, os.path.join(stage, "errors"), "errors-plan.parquet")
            os.makedirs(os.path.join(stage, "data"))
            summary = IngestSummary(out=out, kind="none", written=0, failed=len(plan.errors),
                                    files=len(plan.errors), inputs=[str(p) for p in config.paths],
                                    skipped=plan.skipped_counts(),
                                    seconds=time.perf_counter() - t0)
            _write_json(os.path.join(stage, "manifest.json"),
                        _manifest(summary, config, plan, [], error=message))
            _publish(out, ours, stage, in_the_way)
        finally:
            _remove(stage)
        return os.path.join(out, "errors")
