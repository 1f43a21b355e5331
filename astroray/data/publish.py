"""The output folder of ``astroray ingest``: owned, locked, and published by one atomic swap.

``data``, ``stamps``, ``errors`` and ``manifest.json`` are symbolic links into
``OUT/_ingest/current``, itself a link to one complete version ``OUT/_ingest/v-<time>-<id>/``
holding all four. Readers keep reading ``OUT/data`` and ``OUT/manifest.json``; a reader that
must see the data and the manifest of one version while another run may publish resolves the
version folder once (:func:`published`).

**The swap is atomic.** A run writes its whole tree (data, stamps, errors, manifest) into
``OUT/_ingest/staging-<id>/``, renames it to a version folder, then replaces the ``current``
link with one ``os.replace``: a reader sees the old complete result or the new one, never a
mix, and a manifest always sits beside the rows it counts. Old versions are removed after the
switch. A run that is killed leaves the old result and a staging folder that the next run
removes (ingest is cheap to redo; staging is not resumed). A lock file stops two runs writing
into one folder at once. A folder written by an astroray before this layout (real ``data/``
folders beside ``manifest.json``) is taken over on its next run: its entries are moved aside,
the manifest first, and the links made, the manifest last, so that no manifest ever stands
beside rows it does not describe. A run that can read nothing (exit 2) publishes a version
holding only its errors table into a folder without a result; a published result is never
replaced by such a run (its errors table goes to ``OUT/_ingest/failed/``, named in the error).

**The output folder is ours alone.** ``OUT`` is refused, with a message naming the folder and
what is in the way, when it is a file, when it lies inside an input folder (the next run would
read its own output), or when it holds anything astroray did not write: an empty or new folder,
a previous ingest, the ``logs/`` of the ``astroray`` command and the run's own inputs (a
synthetic survey generated into ``OUT/input``) are fine. ``IngestConfig.overwrite``
(``--overwrite``) replaces what stands in the way under astroray's names (``data``,
``stamps``, ``errors``, ``manifest.json``, ``_ingest``); other entries are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from astroray.data import fileio

__all__ = ["CURRENT", "IngestError", "MARKER", "OURS", "PUBLISHED", "check_output", "published"]

logger = logging.getLogger("astroray.data.ingest")  # the ingest's log, as before the split

#: astroray's own folder inside ``OUT``; ``_`` keeps every walker (ours, Ray Data, Spark) out.
OURS = "_ingest"
#: The file that says ``OUT/_ingest`` was written by astroray.
MARKER = "astroray-ingest.json"
#: The link to the published version.
CURRENT = "current"
_LOCK = "lock"
#: Where a run that could read nothing leaves its errors when a result is published already.
_FAILED = "failed"
#: What ``OUT`` shows of the published version, linked in this order (manifest last).
PUBLISHED = ("data", "stamps", "errors", "manifest.json")
_LAYOUT = 2
_VERSION = re.compile(r"^v-\d{8}T\d{6}-[0-9a-f]{8}$")
_LEFTOVER = re.compile(r"^(staging|trash)-[0-9a-f]{8}$|^\.link-[0-9a-f]{8}$")
#: A link being swapped in (``os.replace`` of a new link); left only by a killed run.
_LINK_TMP = re.compile(r"^\.link-[0-9a-f]{8}$")
_OLD_STAGING = re.compile(r"^\.staging-[0-9a-f]{8}$")
_LOG_FILE = re.compile(r"^[\w.-]+\.log(\.\d+)?$")


class IngestError(RuntimeError):
    """The ingest could not run at all (no input, inputs of incompatible kinds, a bad OUT)."""


def published(out: str | Path) -> Path:
    """The folder holding one complete published version of the ingest in ``out``.

    Resolve it once and read ``data``, ``stamps``, ``errors`` and ``manifest.json`` under it
    to see one version even while another run publishes. A folder written before the
    versioned layout is its own version.
    """
    current = Path(out) / OURS / CURRENT
    return Path(os.path.realpath(current)) if os.path.lexists(current) else Path(out)


def _local(path: str) -> str | None:
    if path.startswith("file://"):
        return path[len("file://"):]
    return None if fileio.is_uri(path) else path


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _only_files(folder: str, ok: re.Pattern[str] | None = None) -> str | None:
    """The first entry of ``folder`` (recursively) that is not a Parquet file we write."""
    for root, dirs, names in os.walk(folder):
        for name in sorted(dirs):
            return os.path.join(root, name)
        for name in sorted(names):
            ours = (name.endswith(".parquet") and not name.startswith(".")) or (
                name.startswith(".") and name.endswith(".tmp"))  # write_errors' temporary
            if ok is not None:
                ours = ok.match(name) is not None
            if not ours:
                return os.path.join(root, name)
    return None


def _is_legacy_manifest(path: str) -> bool:
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"kind", "written", "config"} <= set(data)


def _has_marker(folder: str) -> bool:
    try:
        with open(os.path.join(folder, MARKER)) as fh:
            marker = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("written_by") == "astroray ingest"


def _is_our_link(out: str, name: str) -> bool:
    path = os.path.join(out, name)
    return os.path.islink(path) and os.readlink(path) == f"{OURS}/{CURRENT}/{name}"


def _check_ours(folder: str) -> list[tuple[str, str]]:
    """What in ``OUT/_ingest`` astroray did not write (empty when all of it is ours)."""
    if os.path.islink(folder) or not os.path.isdir(folder):
        return [(folder, "not a folder astroray wrote")]
    if not _has_marker(folder):
        return [(folder, f"no {MARKER} saying astroray wrote it")]
    problems = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name, path = entry.name, entry.path
        if name in (MARKER, _LOCK) and entry.is_file(follow_symlinks=False):
            continue
        if name == _FAILED and entry.is_dir(follow_symlinks=False):
            stray = _only_files(path)
            if stray is not None:
                problems.append((stray, "not a Parquet file astroray wrote"))
            continue
        if name == CURRENT and entry.is_symlink() and _VERSION.match(os.readlink(path)):
            continue
        if _LEFTOVER.match(name):
            continue  # a killed run's staging, removed by the next run
        if _VERSION.match(name) and entry.is_dir(follow_symlinks=False):
            for inner in sorted(os.scandir(path), key=lambda e: e.name):
                if inner.name == "manifest.json" and inner.is_file(follow_symlinks=False):
                    continue
                if inner.name in ("data", "stamps", "errors") and inner.is_dir(
                        follow_symlinks=False):
                    stray = _only_files(inner.path)
                    if stray is not None:
                        problems.append((stray, "not a Parquet file astroray wrote"))
                    continue
                problems.append((inner.path, "not part of an ingest version"))
            continue
        problems.append((path, "not written by astroray ingest"))
    return problems


def _survey_output(out: str, inputs: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """What in ``out`` astroray did not write, and the entries a run must replace.

    Returns:
        (problems, in_the_way): ``(path, why)`` of what astroray did not write (empty when
        ``out`` is all ours), and the names of ``PUBLISHED`` entries that are not yet our
        links (an earlier layout's, or foreign ones).

    Raises:
        IngestError: an entry the run would replace holds one of its inputs.
    """
    # An earlier layout's folders are ours beside its manifest, or beside our _ingest/ when a
    # run taking them over was killed after moving the manifest aside.
    legacy = (_is_legacy_manifest(os.path.join(out, "manifest.json"))
              or _has_marker(os.path.join(out, OURS)))
    problems: list[tuple[str, str]] = []
    in_the_way: list[str] = []
    for entry in sorted(os.scandir(out), key=lambda e: e.name):
        name, path = entry.name, entry.path
        holds_input = any(_inside(i, os.path.realpath(path)) for i in inputs)
        if name in PUBLISHED:
            if _is_our_link(out, name):
                continue
            if holds_input:
                raise IngestError(f"output folder {out}: {path} holds an input of this run and "
                                  "would be replaced by the output; choose another output "
                                  "folder")
            in_the_way.append(name)
            if not legacy:
                problems.append((path, "not written by astroray ingest"))
            elif name == "manifest.json":
                if not _is_legacy_manifest(path):
                    problems.append((path, "not a manifest astroray wrote"))
            elif entry.is_symlink() or not entry.is_dir():
                problems.append((path, "not a folder astroray wrote"))
            elif (stray := _only_files(path)) is not None:
                problems.append((stray, "not a Parquet file astroray wrote"))
        elif name == OURS:
            problems += _check_ours(path)
        elif holds_input:
            continue  # this run's own input (a synthetic survey generated into OUT/input)
        elif name == "logs" and entry.is_dir(follow_symlinks=False):
            stray = _only_files(path, _LOG_FILE)  # the astroray command's own ray.log
            if stray is not None:
                problems.append((stray, "not a log file astroray wrote"))
        elif not (_OLD_STAGING.match(name) and entry.is_dir(follow_symlinks=False)
                  or _LINK_TMP.match(name) and entry.is_symlink()):
            problems.append((path, "not written by astroray ingest"))
    return problems, in_the_way


def check_output(out: str | Path, inputs: Sequence[str] = (), *,
                 overwrite: bool = False) -> list[str]:
    """Check that an ingest may write into ``out``.

    Args:
        out: the output folder (created when absent).
        inputs: the run's input paths (local ones are compared with ``out``).
        overwrite: accept what stands in the way under astroray's names, to be replaced.

    Returns:
        The names of the entries of ``out`` that the run replaces although they are not its
        links (a folder written before the versioned layout, or, with ``overwrite``, foreign
        content).

    Raises:
        IngestError: ``out`` is a file, lies inside an input folder, holds what astroray did
            not write (without ``overwrite``), or would replace an input; the message names
            the folder and the obstacle.
    """
    out = os.path.abspath(str(out))
    if os.path.lexists(out) and not os.path.isdir(out):
        what = "a broken link" if os.path.islink(out) else "a file"
        raise IngestError(f"output folder {out} is {what}, not a folder; give a new or empty "
                          "folder (or one astroray ingest wrote)")
    real_out = os.path.realpath(out)
    local = [(p, os.path.realpath(q)) for p in inputs if (q := _local(str(p))) is not None]
    for given, real in local:
        if os.path.isdir(real) and _inside(real_out, real):
            raise IngestError(f"output folder {out} lies inside the input folder {given}: the "
                              "next run would read its own output; choose an output folder "
                              "outside the inputs")
    if not os.path.isdir(out):
        return []
    problems, in_the_way = _survey_output(out, [real for _, real in local])
    if problems and not overwrite:
        first, why = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IngestError(
            f"output folder {out} holds what astroray ingest did not write: {first} ({why})"
            f"{more}; choose a new or empty folder, or pass --overwrite (IngestConfig."
            "overwrite) to replace data/, stamps/, errors/, manifest.json and _ingest/ there "
            "(other entries are left alone)")
    if problems:
        logger.warning("output folder %s: replacing what astroray did not write (overwrite): "
                       "%s", out, ", ".join(p for p, _ in problems[:5]))
    return in_the_way


@contextlib.contextmanager
def _locked(ours: str, out: str) -> Iterator[None]:
    """Hold ``OUT/_ingest/lock``: one run at a time writes into a folder."""
    with open(os.path.join(ours, _LOCK), "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise IngestError(f"output folder {out}: another astroray ingest is writing "
                                  "there; wait for it to finish") from None
            raise
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepare_ours(out: str, overwrite: bool) -> str:
    """Create (or take over, with ``overwrite``) ``OUT/_ingest`` with its marker."""
    ours = os.path.join(out, OURS)
    try:
        os.makedirs(out, exist_ok=True)
        if os.path.lexists(ours) and not (os.path.isdir(ours) and not os.path.islink(ours)
                                          and _has_marker(ours)):
            # Not ours: check_output let it through only with overwrite.
            if not overwrite:
                raise IngestError(f"output folder {out}: {ours} was not written by astroray")
            _remove(ours)
        os.makedirs(ours, exist_ok=True)
        marker = os.path.join(ours, MARKER)
        if not os.path.isfile(marker):
            _write_json(marker, {"written_by": "astroray ingest", "layout": _LAYOUT})
    except OSError as exc:
        raise IngestError(f"output folder {out}: cannot create it: "
                          f"{exc.strerror or exc}") from None
    return ours


def _clean_leftovers(out: str, ours: str) -> None:
    """Remove what killed runs left: staging, moved-aside entries, unpublished versions."""
    current = os.path.join(ours, CURRENT)
    live = os.readlink(current) if os.path.islink(current) else None
    for entry in os.scandir(ours):
        if _LEFTOVER.match(entry.name) or (_VERSION.match(entry.name) and entry.name != live):
            _remove(entry.path)
    for entry in os.scandir(out):
        if (_OLD_STAGING.match(entry.name) and entry.is_dir(follow_symlinks=False)
                or _LINK_TMP.match(entry.name) and entry.is_symlink()):
            _remove(entry.path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _write_json(path: str, data: Any) -> None:
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _link(target: str, path: str) -> None:
    """Point the link ``path`` at ``target`` in one step (``os.replace`` of a new link)."""
    tmp = os.path.join(os.path.dirname(path), f".link-{uuid.uuid4().hex[:8]}")
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _publish(out: str, ours: str, stage: str, in_the_way: Sequence[str]) -> str:
    """Rename the complete staging tree to a version and point ``current`` at it.

    Returns:
        The version's name.
    """
    version = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    os.rename(stage, os.path.join(ours, version))
    _link(version, os.path.join(ours, CURRENT))  # the switch: one atomic rename
    # OUT's own links are made once and then only followed; an earlier layout's entries
    # (or, with overwrite, foreign ones) are moved aside first, manifest first, so that a
    # manifest never stands beside rows it does not describe.
    trash = os.path.join(ours, f"trash-{uuid.uuid4().hex[:8]}")
    for name in sorted(in_the_way, key=lambda n: n != "manifest.json"):
        os.makedirs(trash, exist_ok=True)
        os.rename(os.path.join(out, name), os.path.join(trash, name))
    has = {name: os.path.lexists(os.path.join(ours, version, name)) for name in PUBLISHED}
    for name in PUBLISHED:  # data, stamps, errors, then the manifest
        path = os.path.join(out, name)
        if has[name]:
            if not os.path.islink(path) or os.readlink(path) != f"{OURS}/{CURRENT}/{name}":
                _link(f"{OURS}/{CURRENT}/{name}", path)
        elif os.path.islink(path):
            os.remove(path)  # no stamps this time: no link to an absent folder
    # Then the old versions go (and, after overwrite, whatever else stood in _ingest/).
    for entry in os.scandir(ours):
        if entry.name not in (version, CURRENT, MARKER, _LOCK):
            _remove(entry.path)
    return version
