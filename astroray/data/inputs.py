"""The inputs group job configs share: ``paths``, ``optional_paths`` and a ``synthetic`` survey.

A config carrying the group calls :func:`check_inputs` in its ``__post_init__``; a job turns
the group into folders to read with :func:`resolve_inputs`, the one place where a synthetic
survey is generated (once, finished by the marker :data:`~astroray.data.synthetic.DONE`) and
survey files are ingested into canonical Parquet (once, finished by the ingest's published
``manifest.json``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astroray.config import check
from astroray.data.ingest import IngestConfig, ingest
from astroray.data.synthetic import SyntheticSurveyConfig, generate_survey

__all__ = ["ResolvedInputs", "check_inputs", "resolve_inputs"]

logger = logging.getLogger(__name__)


def check_inputs(cfg: Any) -> None:
    """Normalise and check the input fields a job config shares.

    ``paths`` and ``optional_paths`` become tuples, a ``synthetic`` mapping becomes a
    :class:`~astroray.data.synthetic.SyntheticSurveyConfig`, and at least one of the three must
    give some input.
    """
    for name in ("paths", "optional_paths"):  # a string or a list of strings, nothing else
        value = getattr(cfg, name)
        if isinstance(value, str | Path):
            value = (str(value),)
        check(isinstance(value, list | tuple)
              and all(isinstance(v, str | Path) for v in value), cfg, name, value,
              "a path or a list of paths")
        setattr(cfg, name, tuple(str(v) for v in value))
    if isinstance(cfg.synthetic, dict):
        cfg.synthetic = SyntheticSurveyConfig.from_dict(cfg.synthetic)
    check(cfg.synthetic is None or isinstance(cfg.synthetic, SyntheticSurveyConfig), cfg,
          "synthetic", cfg.synthetic, "a SyntheticSurveyConfig mapping or null")
    check(bool(cfg.paths) or bool(cfg.optional_paths) or cfg.synthetic is not None, cfg,
          "paths", cfg.paths, "some input: paths, optional_paths or synthetic")


@dataclasses.dataclass
class ResolvedInputs:
    """The folders and files an inputs group resolved to.

    Attributes:
        paths: what to read: canonical Parquet folders when ingested, otherwise the given
            paths that exist followed by the synthetic survey's folder.
        present: the given paths that exist (``paths`` and the optional paths found).
        skipped: the optional paths that are absent.
        inputs: one record per source: ``{"synthetic": settings}`` and ``{"paths": present}``
            (with ``written`` and ``failed`` when ingested).
        objects: objects in the Parquet generated or ingested (0 for files left as they are).
    """

    paths: list[str]
    present: list[str]
    skipped: list[str]
    inputs: list[dict[str, Any]]
    objects: int = 0


def resolve_inputs(paths: Sequence[str], optional_paths: Sequence[str],
                   synthetic: SyntheticSurveyConfig | None, workdir: str | Path, *,
                   to_parquet: bool = True) -> ResolvedInputs:
    """Turn an inputs group into what a job reads, doing each step once.

    The synthetic survey is generated into ``workdir/synthetic`` (as canonical Parquet with
    ``to_parquet``, otherwise in its own format) and reused while its marker holds the same
    settings. With ``to_parquet``, survey files (and the optional paths that exist) are
    ingested on Ray into ``workdir/ingested`` unless a published ingest is there already;
    without it they are returned as they are.

    Args:
        paths: survey files/folders or canonical Parquet.
        optional_paths: the same, skipped (with a log line) when missing.
        synthetic: a survey to generate, or None.
        workdir: where generated and ingested data go.
        to_parquet: make canonical Parquet of everything (generated surveys in Parquet,
            survey files ingested).

    Returns:
        The paths to read and what they came from.
    """
    workdir = Path(workdir)
    present = list(paths)
    skipped = []
    for path in optional_paths:
        if os.path.exists(path):
            present.append(path)
        else:
            skipped.append(path)
            logger.info("optional input %s is absent; skipped", path)
    resolved = ResolvedInputs(paths=[], present=present, skipped=skipped, inputs=[])
    generated = None
    if synthetic is not None:
        folder = workdir / "synthetic"
        done = generate_survey(synthetic.replace(format="parquet") if to_parquet else synthetic,
                               folder)
        generated = str(folder)
        resolved.objects += done["objects"]
        resolved.inputs.append({"synthetic": synthetic.to_dict()})
    if not to_parquet:
        resolved.paths = present + ([generated] if generated else [])
        if present:
            resolved.inputs.append({"paths": present})
        return resolved
    if generated:
        resolved.paths.append(generated)
    if present:
        target = workdir / "ingested"
        manifest = target / "manifest.json"
        if not manifest.is_file():
            summary = ingest(IngestConfig(paths=tuple(present)), target)
            logger.info("%s", summary.line())
        written = json.loads(manifest.read_text())
        resolved.paths.append(str(target / "data"))
        resolved.objects += int(written["written"])
        resolved.inputs.append({"paths": present, "written": written["written"],
                                "failed": written["failed"]})
    return resolved
