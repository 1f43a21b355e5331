"""One light curve per CSV file: ``time,mag,magerr,band`` (or ``time,flux,fluxerr,band``).

Used by the SDSS Stripe 82 RR Lyrae release (``light-curves/<Num>.csv`` beside ``periods.csv``)
and the ZTF Bright Transient Survey (``light-curves/<ZTFID>.csv`` beside ``bts.csv``). The object
id is the file name. Times named ``jd``/``hjd``/``bjd`` (or any time column whose values are
Julian dates) are converted to MJD. Fluxes are taken to be nJy. The survey is ``ztf`` for ZTF
object ids (whose band spellings ``R``/``zr``/``ztfr`` become ``r``) and otherwise the name of
the data set's folder (the folder above ``light-curves/``), unless given in the read options.
Labels, redshifts, periods and positions come from the label table beside the files
(``periods.csv``: ``Type``, ``Per``; ``bts.csv``: ``type``, ``redshift``, sexagesimal
``RA``/``Dec``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from astroray.data import _io
from astroray.data.readers._common import (
    JD_OFFSET,
    ZTF_BAND_ALIASES,
    ZTF_ID,
    clean_light_curve,
    light_curve_record,
)
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

TIME_MJD = ("time", "mjd", "MJD", "t")
TIME_JD = ("jd", "JD", "hjd", "HJD", "bjd", "BJD")
MAG = ("mag", "magnitude", "Mag", "MAG")
MAG_ERR = ("magerr", "mag_err", "magErr", "e_mag", "emag", "err", "sigma", "MAGERR")
FLUX = ("flux", "Flux", "FLUX")
FLUX_ERR = ("fluxerr", "flux_err", "fluxErr", "e_flux", "eflux", "FLUXERR", "err")
BAND = ("band", "filter", "passband", "Band", "FILTER", "BAND")
# One object per file: files are small, so threads inside pyarrow only add overhead.
_READ = pacsv.ReadOptions(use_threads=False)
_CONVERT = pacsv.ConvertOptions(strings_can_be_null=True)


def _columns(fh: FileHead) -> list[str]:
    return [c.strip() for c in fh.first_line.split(",")]


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in columns), None)


def _sniff(fh: FileHead) -> bool:
    columns = _columns(fh)
    if len(columns) < 2 or "objectId" in columns:
        return False  # broker detection tables are the alerce format
    has_time = _pick(columns, TIME_MJD + TIME_JD) is not None
    # A time column says "light curve"; the reader then reports any other missing column.
    return has_time and fh.stem.lower().endswith((".csv", ".txt"))


def _object_id(name: str) -> str:
    """The file name without its extension(s): ``1.3444.614.csv`` -> ``1.3444.614``."""
    stem = name[:-3] if name.endswith(".gz") else name
    for ext in (".csv", ".txt", ".CSV", ".TXT"):
        if stem.endswith(ext):
            return stem[: -len(ext)]
    return stem.rsplit(".", 1)[0]


def _survey_for(object_id: str, path: str, options: ReadOptions) -> str:
    if options.survey:
        return options.survey
    if ZTF_ID.match(object_id):
        return "ztf"
    folder = _io.dirname(path)
    if _io.basename(folder) in ("light-curves", "light_curves", "lightcurves", "lcs", "data"):
        folder = _io.dirname(folder)
    return _io.basename(folder) or "unknown"


@register_reader(
    "csv",
    kinds=("lightcurve",),
    sniff=_sniff,
    description="one light curve per CSV file: time,mag,magerr,band or time,flux,fluxerr,band",
)
def read_csv(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read one object per CSV file."""
    for path in unit.paths:
        name = _io.basename(path)
        object_id = _object_id(name)
        try:
            table = pacsv.read_csv(io.BytesIO(_io.read_bytes(path)), read_options=_READ,
                                   convert_options=_CONVERT)
        except pa.ArrowInvalid as exc:
            yield ReadFailure(path, object_id, f"{name}: malformed CSV: {exc}")
            continue
        columns = table.column_names
        t_col = _pick(columns, TIME_MJD + TIME_JD)
        b_col = _pick(columns, BAND)
        m_col, f_col = _pick(columns, MAG), _pick(columns, FLUX)
        is_flux = m_col is None and f_col is not None
        v_col = f_col if is_flux else m_col
        e_col = _pick(columns, FLUX_ERR if is_flux else MAG_ERR)
        missing = [role for role, col in (("time", t_col), ("band", b_col),
                                          ("mag or flux", v_col), ("uncertainty", e_col))
                   if col is None]
        if missing:
            yield ReadFailure(path, object_id,
                              f"{name}: missing column(s) {', '.join(missing)}; has {columns}")
            continue
        try:
            time = _numeric(table, t_col)
            value = _numeric(table, v_col)
            err = _numeric(table, e_col)
        except ValueError as exc:
            yield ReadFailure(path, object_id, f"{name}: {exc}")
            continue
        band = np.array(table.column(b_col).cast(pa.string()).fill_null("").to_pylist(),
                        dtype=object).astype(str)
        band = np.char.strip(band)
        meta: dict = {"value_unit": "nJy" if is_flux else "mag"}
        finite_time = time[np.isfinite(time)]
        if t_col in TIME_JD or (finite_time.size and finite_time[0] > 2_000_000):
            time = time - JD_OFFSET
            meta["time_converted_from"] = "JD"
        survey = _survey_for(object_id, path, options)
        if survey == "ztf":
            band = np.array([ZTF_BAND_ALIASES.get(b, b) for b in band.tolist()], dtype=str)
        # Magnitude catalogues flag missing points with sentinels (Stripe 82: mag 99.994,
        # error 99.999); a real magnitude or its error is never that large.
        invalid = None if is_flux else (np.abs(value) >= _MAG_SENTINEL) | (
            err >= _MAG_SENTINEL)
        cols, dropped = clean_light_curve(time, value, err, band, invalid=invalid)
        yield light_curve_record(object_id=object_id, survey=survey, source=path, cols=cols,
                                 n_dropped=dropped, is_flux=is_flux, meta=meta)


#: |magnitude| or magnitude error at or above this is a survey's "no data" sentinel (99, 99.99).
_MAG_SENTINEL = 90.0


def _numeric(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    if pa.types.is_null(column.type):
        return np.full(len(column), np.nan)
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        sample = next((v for v in column.to_pylist() if v is not None), None)
        raise ValueError(f"column {name!r} is not numeric (e.g. {sample!r})")
    return column.cast(pa.float64()).fill_null(np.nan).to_numpy()
