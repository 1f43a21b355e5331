"""Synthetic surveys on disk: the settings, and writing a kind in a real survey format.

:func:`make_survey` generates a kind in chunks and writes it with the writer registered for the
format (:func:`astroray.data.formats.get_writer`, beside the format's reader), so that a
synthetic catalogue is ingested exactly like a real one; :func:`generate_survey` does so once
into a folder, finished by the marker :data:`DONE`. The formats a kind can be written in
(:data:`SURVEY_FORMATS`) are read from the registered writers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astroray.config import Config, check
from astroray.data.formats import get_writer, list_writers
from astroray.data.synthetic._common import (
    _chunked,
)
from astroray.data.synthetic.periodic import periodic_variables
from astroray.data.synthetic.sn_series import sn_spectral_series
from astroray.data.synthetic.spectrum import spectra
from astroray.data.synthetic.stamp import _STAMP_SURVEYS, stamps
from astroray.data.synthetic.transient import _TRANSIENT_SURVEYS, transients

__all__ = ["DONE", "SURVEY_FORMATS", "SyntheticSurveyConfig", "generate_survey", "make_survey"]

#: The record kind each synthetic kind generates.
RECORD_KINDS = {"periodic": "lightcurve", "transients": "lightcurve", "spectra": "spectrum",
                "sn_series": "spectrum", "stamps": "stamp"}


class _SurveyFormats(Mapping[str, tuple[str, ...]]):
    """Formats (reader names) each synthetic kind can be written in, read from the registry.

    A kind goes to every format with a writer of its record kind, except that transients exist
    only in the surveys their generator models (ZTF, LSST/ELAsTiCC, ATLAS): a format whose bands
    cover none of theirs (MACHO's B and R, OGLE's I and V) does not take them.
    """

    def __getitem__(self, kind: str) -> tuple[str, ...]:
        presets = ([_DEFAULT_BANDS[s] for s in _TRANSIENT_SURVEYS] if kind == "transients"
                   else None)
        formats = []
        for name in list_writers(RECORD_KINDS[kind]):
            bands = get_writer(name).bands
            if presets is None or bands is None or any(set(b) <= set(bands) for b in presets):
                formats.append(name)
        return tuple(formats)

    def __iter__(self) -> Iterator[str]:
        return iter(RECORD_KINDS)

    def __len__(self) -> int:
        return len(RECORD_KINDS)


#: Formats (reader names) each synthetic kind can be written in: ``{kind: formats}``.
SURVEY_FORMATS: Mapping[str, tuple[str, ...]] = _SurveyFormats()


@dataclasses.dataclass
class SyntheticSurveyConfig(Config):
    """A synthetic survey to generate and write in a real survey format.

    Attributes:
        kind: ``periodic``, ``transients``, ``spectra``, ``stamps`` or ``sn_series``.
        n: number of objects (supernovae for ``sn_series``, alerts for ``stamps``).
        format: file format, a reader name allowed for the kind (see :data:`SURVEY_FORMATS`).
        seed: random seed.
        survey: survey preset of the generator (None: the natural one for the format, e.g.
            ``macho`` for MACHO files, ``ztf`` for ALeRCE tables, ``lsst`` for ELAsTiCC).
        bands: bands of light curves (None: the survey's own).
        chunk_size: objects generated and written at a time (bounds the memory used).
    """

    kind: str = "periodic"
    n: int = 1000
    format: str = "csv"
    seed: int = 0
    survey: str | None = None
    bands: tuple[str, ...] | None = None
    chunk_size: int = 2000

    def __post_init__(self) -> None:
        cls = type(self)
        check(self.kind in SURVEY_FORMATS, cls, "kind", self.kind,
              f"one of {tuple(SURVEY_FORMATS)}")
        check(isinstance(self.n, int) and not isinstance(self.n, bool) and self.n > 0, cls,
              "n", self.n, "a positive integer")
        check(self.format in SURVEY_FORMATS[self.kind], cls, "format", self.format,
              f"for kind {self.kind!r}, one of {SURVEY_FORMATS[self.kind]}")
        check(isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0,
              cls, "seed", self.seed, "a non-negative integer")
        check(self.survey is None or (isinstance(self.survey, str) and self.survey != ""),
              cls, "survey", self.survey, "a non-empty string or null")
        if self.bands is not None:
            if isinstance(self.bands, str):
                self.bands = (self.bands,)
            self.bands = tuple(self.bands)
            check(len(self.bands) > 0 and all(isinstance(b, str) and b for b in self.bands)
                  and len(set(self.bands)) == len(self.bands), cls, "bands", self.bands,
                  "distinct non-empty band names")
            check(self.kind in ("periodic", "transients"), cls, "bands", self.bands,
                  "null unless kind is periodic or transients")
        if self.kind == "stamps":
            check(self.survey in (None, *_STAMP_SURVEYS), cls, "survey", self.survey,
                  f"null or one of {tuple(_STAMP_SURVEYS)} for stamps")
        check(isinstance(self.chunk_size, int) and not isinstance(self.chunk_size, bool)
              and self.chunk_size > 0, cls, "chunk_size", self.chunk_size,
              "a positive integer")


_DEFAULT_BANDS = {"macho": ("B", "R"), "ogle": ("I", "V"), "atlas": ("c", "o"),
                  "ztf": ("g", "r", "i"), "lsst": tuple("ugrizY"), "elasticc": tuple("ugrizY")}


def _survey_defaults(config: SyntheticSurveyConfig) -> tuple[str, tuple[str, ...] | None]:
    fmt = config.format
    if config.kind == "periodic":
        survey = config.survey or {"alerce": "ztf", "ztf_avro": "ztf", "elasticc": "lsst",
                                   "ogle": "ogle", "atlas": "atlas"}.get(fmt, "macho")
        bands = _DEFAULT_BANDS.get(survey, ("B", "R"))
        if survey == "ztf":
            bands = ("g", "r")
    elif config.kind == "transients":
        survey = config.survey or {"elasticc": "lsst", "atlas": "atlas"}.get(fmt, "ztf")
        bands = _DEFAULT_BANDS.get(survey, ("g", "r", "i"))
    elif config.kind == "stamps":
        survey = config.survey or ("B" if fmt == "ztf_avro" else "A")
        bands = None
    else:
        survey = config.survey or "sdss"
        bands = None
    return survey, config.bands or bands


def _generate(config: SyntheticSurveyConfig, survey: str, bands: tuple[str, ...] | None,
              kind: str | None = None, stream: int = 0, **extra: Any) -> Iterator[pa.Table]:
    """Chunks of the survey, generated lazily (each from its own random stream)."""
    kind = kind or config.kind
    # A second generator in the same survey (alert light curves beside stamps) gets a seed of
    # its own, so that the two do not replay the same random numbers.
    seed = config.seed if stream == 0 else int(
        np.random.SeedSequence([config.seed, stream]).generate_state(1)[0])
    for lo, hi in _chunked(config.n, config.chunk_size):
        m = hi - lo
        if kind == "periodic":
            yield periodic_variables(m, seed=seed, bands=bands, survey=survey, start=lo)
        elif kind == "transients":
            yield transients(m, seed=seed, bands=bands, survey=survey, start=lo)
        elif kind == "spectra":
            yield spectra(m, seed=seed, survey=survey, start=lo)
        elif kind == "stamps":
            yield stamps(m, seed=seed, survey=survey, start=lo, **extra)
        else:
            yield sn_spectral_series(m, seed=seed, start=lo)


def make_survey(config: SyntheticSurveyConfig, out_dir: str | Path) -> list[str]:
    """Generate a synthetic survey and write it in a real survey format.

    Objects are generated and written ``config.chunk_size`` at a time. Alerts
    (``ztf_avro``) pair light curves with stamp triplets: for kind ``stamps``, real/bogus
    triplets of survey ``B`` (ZTF-like) with supernova light curves; for light-curve kinds,
    real triplets. Label tables are written beside the data by each writer.

    Args:
        config: what to generate and in which format.
        out_dir: folder to write into (created when missing).

    Returns:
        The paths written.
    """
    write = get_writer(config.format).write
    survey, bands = _survey_defaults(config)
    fmt = config.format
    if fmt == "ztf_avro":
        if config.kind == "stamps":
            lcs = _generate(config, "ztf", ("g", "r", "i"), kind="transients", stream=1)
            cutouts = _generate(config, survey, None)
        else:
            lcs = _generate(config, survey, bands)
            cutouts = _generate(config, "B", None, kind="stamps", stream=1, real_fraction=1.0)
        return write(lcs, cutouts, out_dir, seed=config.seed)
    return write(_generate(config, survey, bands), out_dir)


#: The completion marker of a generated survey: written last, inside its folder, holding the
#: survey's settings, the files written (relative to the folder) and the Parquet rows.
DONE = "_DONE.json"


def generate_survey(config: SyntheticSurveyConfig, folder: str | Path) -> dict[str, Any]:
    """Generate a synthetic survey into ``folder`` once (a finished survey is not redone).

    The survey is finished when ``folder/_DONE.json`` (:data:`DONE`) holds these settings; any
    other content of the folder (a run killed half-way, other settings) is removed and the
    survey generated again. Generation is seeded, so a folder always holds the same files.

    Args:
        config: what to generate and in which format.
        folder: the survey's own folder.

    Returns:
        The marker's content: ``{"synthetic": settings, "files": [paths], "objects": n}``,
        ``files`` as absolute paths and ``objects`` the rows of the Parquet files written
        (0 when the format is not Parquet).
    """
    folder = Path(folder)
    done = folder / DONE
    spec = config.to_dict()
    record = json.loads(done.read_text()) if done.is_file() else None
    if record is None or record.get("synthetic") != spec:
        shutil.rmtree(folder, ignore_errors=True)
        written = make_survey(config, folder)
        objects = sum(pq.ParquetFile(p).metadata.num_rows for p in written
                      if str(p).endswith(".parquet"))
        record = {"synthetic": spec, "objects": objects,
                  "files": [os.path.relpath(p, folder) for p in written]}
        partial = folder / f".{DONE}.partial"
        partial.write_text(json.dumps(record))
        os.replace(partial, done)
    return {**record, "files": [str(folder / f) for f in record["files"]]}
