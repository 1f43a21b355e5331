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

Fill values are dropped and counted in ``n_dropped`` with the NaN/inf points
(:func:`~astroray.data.readers._common.sentinel_points`): magnitudes with ``|mag| >= 90``
(99.999, -99) or an error >= 9.9; fluxes or flux errors of exactly -999, -9999, -99999 or of
1e30 and more. A value that is not a number is an error row quoting the value, its column and
its line.

:func:`write_csv`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from astroray.data import fileio
from astroray.data.formats import (
    FileHead,
    ReadFailure,
    ReadOptions,
    ReadUnit,
    register_reader,
    register_writer,
)
from astroray.data.readers._common import (
    JD_OFFSET,
    ZTF_BAND_ALIASES,
    ZTF_ID,
    clean_light_curve,
    light_curve_record,
    sentinel_points,
)
from astroray.data.readers._writing import (
    _LABELS,
    Tables,
    _csv_lines,
    _curves,
    _folder,
    _safe_name,
    _tables,
    _write_label_table,
)

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
    folder = fileio.dirname(path)
    if fileio.basename(folder) in ("light-curves", "light_curves", "lightcurves", "lcs", "data"):
        folder = fileio.dirname(folder)
    return fileio.basename(folder) or "unknown"


@register_reader(
    "csv",
    kinds=("lightcurve",),
    sniff=_sniff,
    description="one light curve per CSV file: time,mag,magerr,band or time,flux,fluxerr,band",
)
def read_csv(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read one object per CSV file."""
    for path in unit.paths:
        name = fileio.basename(path)
        object_id = _object_id(name)
        data = fileio.read_bytes(path)
        try:
            table = pacsv.read_csv(io.BytesIO(data), read_options=_READ,
                                   convert_options=_CONVERT)
        except pa.ArrowInvalid as exc:
            yield ReadFailure(path, object_id, f"{name}: malformed CSV: {_malformed(exc, data)}")
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
            time = _numeric(table, t_col, data)
            value = _numeric(table, v_col, data)
            err = _numeric(table, e_col, data)
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
        # Catalogues flag missing points with fill values (Stripe 82: mag 99.994, error
        # 99.999; -99; flux -999): dropped and counted like NaN.
        invalid = sentinel_points(value, err, is_flux=is_flux)
        cols, dropped = clean_light_curve(time, value, err, band, invalid=invalid)
        yield light_curve_record(object_id=object_id, survey=survey, source=path, cols=cols,
                                 n_dropped=dropped, is_flux=is_flux, meta=meta)


def _line_of_row(data: bytes, row: int) -> int:
    """The 1-based line of the file holding data row ``row`` (0-based, after the header).

    pyarrow skips empty lines, so they are skipped here too (a quoted field spanning lines
    would shift the count; light-curve tables have none).
    """
    seen = -1  # the header is the first non-empty line
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.rstrip(b"\r"):
            if seen == row:
                return number
            seen += 1
    return 0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric(table: pa.Table, name: str, data: bytes) -> np.ndarray:
    """A column as float64 (nulls as NaN).

    Raises:
        ValueError: the column holds text; the message quotes the first value that is not a
            number and its line.
    """
    column = table.column(name)
    if pa.types.is_null(column.type):
        return np.full(len(column), np.nan)
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        # pyarrow typed the whole column as text because of some values: name the first.
        values = column.cast(pa.string()).to_pylist()
        row = next((i for i, v in enumerate(values) if v is not None and not _is_number(v)),
                   None)
        if row is None:  # every value parses on its own (e.g. "1e5" and "0x10" mixed)
            raise ValueError(f"column {name!r} is not numeric")
        raise ValueError(f"column {name!r} is not numeric: {values[row]!r} on line "
                         f"{_line_of_row(data, row)}")
    return column.cast(pa.float64()).fill_null(np.nan).to_numpy()


def _malformed(exc: pa.ArrowInvalid, data: bytes) -> str:
    """The parse error of pyarrow, said plainly where it is cryptic."""
    text = str(exc)
    if "straddling" in text or "block" in text:
        # A single line longer than pyarrow's block (1 MiB): no light-curve table has one.
        number, line = max(enumerate(data.split(b"\n"), start=1), key=lambda nl: len(nl[1]))
        return (f"line {number} is {len(line):,} bytes long (over "
                f"{_READ.block_size // 2**20} MiB); not a table of observations")
    return text


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


@register_writer("csv", kinds=("lightcurve",))
def write_csv(table: Tables, out_dir: str | Path) -> list[str]:
    """One CSV light curve per object, as the Stripe 82 RR Lyrae and ZTF BTS releases.

    Writes ``<out_dir>/light-curves/<object_id>.csv`` with header ``time,mag,magerr,band``
    (``time,flux,fluxerr,band`` for light curves in nJy), and ``<out_dir>/labels.csv`` with
    ``object_id,label`` plus ``redshift`` and ``period`` when known. Read back by the ``csv``
    reader (:mod:`astroray.data.readers.csv`), which takes the object id from the file name
    (up to its first dot) and the survey from the folder name ``out_dir``.

    Returns:
        The paths written (light curves, then the label table).
    """
    out = _folder(out_dir)
    folder = out / "light-curves"
    folder.mkdir(exist_ok=True)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    for chunk in _tables(table):
        c = _curves(chunk)
        data, starts = _csv_lines({
            "time": pa.array(c.time, type=pa.float64()),
            "value": pa.array(c.value.astype(np.float32)),
            "err": pa.array(c.err.astype(np.float32)),
            "band": pa.array(c.band_names, type=pa.string()).take(pa.array(c.band_codes)),
        })
        for i, oid in enumerate(c.ids):
            lo, hi = int(starts[c.offsets[i]]), int(starts[c.offsets[i + 1]])
            head = b"time,flux,fluxerr,band\n" if c.is_flux[i] else b"time,mag,magerr,band\n"
            path = folder / f"{_safe_name(oid)}.csv"
            path.write_bytes(head + data[lo:hi])
            paths.append(str(path))
            labels.append({"object_id": oid, "label": c.labels[i], "redshift": c.redshift[i],
                           "period": c.metas[i].get("period")})
    written = _write_label_table(out / _LABELS, labels, ["object_id", "label", "redshift",
                                                          "period"])
    return paths + ([written] if written else [])
