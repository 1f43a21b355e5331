"""What the survey writers share: chunked input, survey ids, units, CSV lines, FITS blocks.

Each format's writer sits beside its reader in :mod:`astroray.data.readers` and is registered
with :func:`~astroray.data.formats.register_writer`. Each writer takes a canonical table (or an
iterable of tables, written one after another, so that a large synthetic survey is written
chunk by chunk) and an output folder, writes files laid out like the survey's own (column names
and dtypes, FITS HDUs and header cards, the Avro schema), and returns the paths it wrote. A
synthetic catalogue written this way is ingested exactly like a real one, by the reader of the
same module.

Where a format fixes the form of object ids (MACHO ``field.tile.seq``, SDSS
``plate-mjd-fiber``, LAMOST's integer ``OBSID``), ids are derived deterministically from the
trailing number of the table's ids (or the row number), and a ``labels.csv`` beside the data
maps them back (``object_id`` = the survey id, ``synthetic_id`` = the original id) together
with the labels.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from astroray.data.readers._common import NJY_ZEROPOINT

_MAG_PER_LN = 2.5 / math.log(10.0)  # 1.0857: sigma_mag = 1.0857 sigma_flux / flux


_ZTF_FID = {"g": 1, "r": 2, "i": 3, "G": 1, "R": 2, "I": 3}


_LABELS = "labels.csv"


Tables = pa.Table | Iterable[pa.Table]


def _tables(data: Tables) -> Iterator[pa.Table]:
    if isinstance(data, pa.Table):
        yield data
    else:
        yield from data


def _folder(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _safe_name(object_id: str) -> str:
    return re.sub(r"[\s/\\:]+", "_", object_id)


def _metas(table: pa.Table) -> list[dict[str, Any]]:
    """Each row's ``meta``, with the ``period``/``ra``/``dec`` columns (where set) merged in.

    The writers look these up in ``meta`` (where the synthetic generators also keep them); the
    canonical columns win, so a table read from any reader writes its catalogue values.
    """
    out = []
    for text in table.column("meta").to_pylist():
        try:
            value = json.loads(text) if text else {}
        except json.JSONDecodeError:
            value = {}
        out.append(value if isinstance(value, dict) else {})
    for name in ("period", "ra", "dec"):
        if name in table.column_names:
            for meta, v in zip(out, table.column(name).to_pylist(), strict=True):
                if v is not None:
                    meta[name] = v
    return out


def _write_label_table(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> str | None:
    """Write a label CSV with the given column order, dropping optional all-empty columns."""
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=columns)
    keep = [c for i, c in enumerate(columns) if i < 2 or frame[c].notna().any()]
    frame[keep].to_csv(path, index=False)
    return str(path)


@dataclass
class _Curves:
    """A light-curve table as flat per-point arrays (object-major, time-sorted per object)."""

    ids: list[str]
    offsets: np.ndarray  # (n + 1,)
    time: np.ndarray  # (N,) MJD
    band_codes: np.ndarray  # (N,) indices into band_names
    band_names: list[str]
    value: np.ndarray  # (N,) magnitude or nJy, per the object's is_flux
    err: np.ndarray  # (N,)
    is_flux: np.ndarray  # (n,) bool
    labels: list[str | None]
    redshift: list[float | None]
    metas: list[dict[str, Any]]

    @property
    def row(self) -> np.ndarray:
        """Object index of every point, (N,)."""
        return np.repeat(np.arange(len(self.ids)), np.diff(self.offsets))

    @property
    def band(self) -> np.ndarray:
        """Band name of every point, (N,)."""
        return np.asarray(self.band_names, dtype=object)[self.band_codes]


def _flat(column: pa.ChunkedArray) -> pa.Array:
    return pc.list_flatten(column.combine_chunks())


def _curves(table: pa.Table) -> _Curves:
    n = table.num_rows
    time_col = table.column("time").combine_chunks()
    counts = pc.fill_null(pc.list_value_length(time_col), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    is_flux = np.asarray(table.column("mag").is_null().to_numpy(zero_copy_only=False))
    is_flux &= ~np.asarray(table.column("flux").is_null().to_numpy(zero_copy_only=False))
    value = np.empty(int(offsets[-1]), dtype=np.float64)
    point_flux = np.repeat(is_flux, counts)
    # Null rows contribute nothing to a flattened list column, so each flattened column lines
    # up with the points of the rows that hold it.
    value[~point_flux] = _flat(table.column("mag")).to_numpy(zero_copy_only=False)
    value[point_flux] = _flat(table.column("flux")).to_numpy(zero_copy_only=False)
    bands = _flat(table.column("band")).dictionary_encode()
    return _Curves(
        ids=[str(v) for v in table.column("object_id").to_pylist()],
        offsets=offsets,
        time=pc.list_flatten(time_col).to_numpy(zero_copy_only=False).astype(np.float64),
        band_codes=bands.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        band_names=[str(b) for b in bands.dictionary.to_pylist()],
        value=value,
        err=_flat(table.column("err")).to_numpy(zero_copy_only=False).astype(np.float64),
        is_flux=is_flux,
        labels=table.column("label").to_pylist(),
        redshift=table.column("redshift").to_pylist(),
        metas=_metas(table),
    )


def _as_magnitudes(c: _Curves) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mag, err, usable) per point: fluxes (nJy) become AB magnitudes where positive."""
    point_flux = np.repeat(c.is_flux, np.diff(c.offsets))
    positive = c.value > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(point_flux, NJY_ZEROPOINT - 2.5 * np.log10(np.where(positive, c.value, 1.0)),
                       c.value)
        err = np.where(point_flux, _MAG_PER_LN * c.err / np.where(positive, c.value, 1.0), c.err)
    usable = ~point_flux | positive
    return mag, err, usable


def _as_fluxes(c: _Curves) -> tuple[np.ndarray, np.ndarray]:
    """(flux, err) in nJy per point: magnitudes are taken as AB."""
    point_flux = np.repeat(c.is_flux, np.diff(c.offsets))
    from_mag = 10.0 ** (-0.4 * (np.where(point_flux, NJY_ZEROPOINT, c.value) - NJY_ZEROPOINT))
    flux = np.where(point_flux, c.value, from_mag)
    err = np.where(point_flux, c.err, c.err * from_mag / _MAG_PER_LN)
    return flux, err


def _id_numbers(ids: list[str], first_row: int) -> np.ndarray:
    """A number per object, for survey ids that must be numeric.

    When all ids share one shape (the same text with digits in the same places, e.g.
    ``syn-macho-000123`` or ``syn-sn-0003-e012``) and their digits are distinct, the number is
    their digits read as one integer (so chunks of one survey never collide); otherwise it is
    the row number, counted from ``first_row``.
    """
    shapes = {re.sub(r"\d", "#", oid) for oid in ids}
    if len(shapes) == 1 and "#" in next(iter(shapes)):
        digits = ["".join(re.findall(r"\d", oid)) for oid in ids]
        if all(len(d) <= 18 for d in digits):
            numbers = np.array([int(d) for d in digits], dtype=np.int64)
            if np.unique(numbers).size == numbers.size:
                return numbers
    return np.arange(first_row, first_row + len(ids), dtype=np.int64)


class _UniqueIds:
    """Remembers the survey ids a writer has used, so that derived ids never collide."""

    def __init__(self, what: str):
        self.what = what
        self.seen: set[str] = set()

    def add(self, survey_id: str, original: str) -> None:
        if survey_id in self.seen:
            raise ValueError(f"{self.what}: object {original!r} maps to id {survey_id!r}, "
                             f"which another object already uses; give distinct ids")
        self.seen.add(survey_id)


def _sky_position(number: int, meta: dict[str, Any], field: str = "lmc") -> tuple[float, float]:
    """RA, Dec (deg) from ``meta`` or, deterministically, from the object's number."""
    ra, dec = meta.get("ra"), meta.get("dec")
    if isinstance(ra, int | float) and isinstance(dec, int | float):
        return float(ra), float(dec)
    # Additive recurrences (golden-ratio steps) spread consecutive numbers over the field.
    u = ((number + 1) * 0.6180339887498949) % 1.0
    v = ((number + 1) * 0.7548776662466927) % 1.0
    if field == "lmc":
        return 69.0 + 21.0 * u, -72.0 + 6.0 * v
    return 360.0 * u, math.degrees(math.asin(2.0 * v - 1.0)) * 0.9


def _fixed(values: np.ndarray, digits: int) -> pa.Array:
    """Numbers as fixed-point decimals, so the CSV writer prints exactly ``digits`` decimals."""
    rounded = pc.round(pa.array(np.asarray(values, dtype=np.float64)), digits)
    return pc.cast(rounded, pa.decimal128(18, digits), safe=False)


def _csv_lines(columns: dict[str, pa.Array], delimiter: str = ",") -> tuple[bytes, np.ndarray]:
    """Format columns as CSV rows in one C++ call; returns the bytes and each row's start."""
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(columns), buf,
                    pacsv.WriteOptions(include_header=False, delimiter=delimiter,
                                       quoting_style="none"))
    data = buf.getvalue()
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return data, np.r_[0, ends + 1]


def _check_bands(c: _Curves, allowed: tuple[str, ...], writer: str, what: str) -> None:
    used = {c.band_names[b] for b in np.unique(c.band_codes).tolist()}
    bad = sorted(used - set(allowed))
    if bad:
        raise ValueError(f"{writer}: {what} has bands {list(allowed)} only; got {bad}")


# ZTF night ids count days from 2017-12-31 (MJD 57754); outside the ZTF era they wrap.
_ZTF_NID0 = 57754


def _ztf_ids(mjd: np.ndarray, rank: np.ndarray, rcid: np.ndarray) -> tuple[np.ndarray, ...]:
    """(nid, pid, candid) like ZTF's: pid from night, time of night and readout channel."""
    nid = np.mod(np.floor(mjd).astype(np.int64) - _ZTF_NID0, 10000)
    frac = np.floor((mjd - np.floor(mjd)) * 1e5).astype(np.int64)
    pid = nid * 10**9 + frac * 10**4 + rcid.astype(np.int64) * 100 + 15
    # The point's rank in its light curve keeps candids unique within an object.
    candid = pid * 10**6 + 15000 + np.mod(rank, 1000)
    return nid, pid, candid


def _rank(c: _Curves) -> np.ndarray:
    return np.arange(c.time.size) - np.repeat(c.offsets[:-1], np.diff(c.offsets))


@dataclass
class _Spectra:
    ids: list[str]
    offsets: np.ndarray
    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    z: list[float | None]
    z_err: list[float | None]
    labels: list[str | None]
    subclasses: list[str | None]
    metas: list[dict[str, Any]]


def _spectra(table: pa.Table) -> _Spectra:
    wave = table.column("wavelength").combine_chunks()
    counts = pc.fill_null(pc.list_value_length(wave), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(table.num_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])

    def flat(name: str, dtype: Any) -> np.ndarray:
        return _flat(table.column(name)).to_numpy(zero_copy_only=False).astype(dtype)

    return _Spectra(
        ids=[str(v) for v in table.column("object_id").to_pylist()], offsets=offsets,
        wavelength=pc.list_flatten(wave).to_numpy(zero_copy_only=False).astype(np.float64),
        flux=flat("flux", np.float32), ivar=flat("ivar", np.float32),
        mask=flat("mask", np.int32), z=table.column("z").to_pylist(),
        z_err=table.column("z_err").to_pylist(), labels=table.column("label").to_pylist(),
        subclasses=table.column("subclass").to_pylist(), metas=_metas(table))


def _log_grid(wave: np.ndarray) -> tuple[float, float]:
    """(COEFF0, COEFF1): log10 of the first pixel and the log10 step.

    Both are rounded to the precision float32 wavelengths carry, so that the SDSS grid gives
    3.5797 and 0.0001 exactly.
    """
    loglam = np.log10(np.asarray(wave, dtype=np.float64))
    step = float(np.median(np.diff(loglam))) if loglam.size > 1 else 0.0
    return round(float(loglam[0]), 6), float(f"{step:.5g}")


# FITS is written directly (80-character cards, 2880-byte blocks, big-endian data): astropy's
# HDU objects verify every card on write, which costs tens of milliseconds per small file. The
# tests open every written file with astropy and verify it.
_FITS_BLOCK = 2880


_TFORM = {"f4": "E", "f8": "D", "i2": "I", "i4": "J", "i8": "K", "u1": "B"}


def _fits_value(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int | np.integer):
        return f"{int(value):>20d}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            raise ValueError(f"FITS header values must be finite, got {value}")
        text = f"{float(value):.15G}"
        if "." not in text and "E" not in text:
            text += ".0"
        return f"{text:>20}"
    text = str(value).replace("'", "''")
    return f"'{text:<8}'".ljust(20)


def _card(key: str, value: Any = None, comment: str = "") -> bytes:
    """One 80-character FITS card (value cards only; strings short enough for one card)."""
    card = f"{key:<8}= {_fits_value(value)}"
    if comment:
        card += f" / {comment}"
    if len(card) > 80:
        card = card[:80]
    return card.ljust(80).encode("ascii", "replace")


def _header_block(cards: list[bytes]) -> bytes:
    raw = b"".join(cards) + b"END".ljust(80)
    return raw + b" " * (-len(raw) % _FITS_BLOCK)


def _data_block(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % _FITS_BLOCK)


def _primary_hdu(cards: list[tuple[str, Any, str]], image: np.ndarray | None = None) -> bytes:
    """A primary HDU: header cards and an optional image (big-endian float32)."""
    head = [_card("SIMPLE", True, "conforms to FITS standard")]
    if image is None:
        head += [_card("BITPIX", 8, "array data type"), _card("NAXIS", 0, "")]
    else:
        image = np.ascontiguousarray(image, dtype=">f4")
        head += [_card("BITPIX", -32, ""), _card("NAXIS", image.ndim, "")]
        # FITS axes run fastest first: NAXIS1 is the last numpy axis.
        head += [_card(f"NAXIS{k + 1}", n, "") for k, n in enumerate(image.shape[::-1])]
    head.append(_card("EXTEND", True, ""))
    head += [_card(k, v, c) for k, v, c in cards]
    block = _header_block(head)
    return block if image is None else block + _data_block(image.tobytes())


def _bintable_hdu(name: str, data: np.ndarray, cards: list[tuple[str, Any, str]] = ()) -> bytes:
    """A binary-table HDU from a big-endian structured array (one FITS row per element)."""
    head = [_card("XTENSION", "BINTABLE", "binary table extension"),
            _card("BITPIX", 8, "array data type"), _card("NAXIS", 2, ""),
            _card("NAXIS1", data.dtype.itemsize, "width of table in bytes"),
            _card("NAXIS2", data.shape[0], "number of rows in table"),
            _card("PCOUNT", 0, ""), _card("GCOUNT", 1, ""),
            _card("TFIELDS", len(data.dtype.names), "number of fields in each row")]
    for k, field in enumerate(data.dtype.names, start=1):
        base, shape = data.dtype[field].base, data.dtype[field].shape
        count = int(np.prod(shape)) if shape else 1
        if base.kind == "S":
            form = f"{base.itemsize}A"
        else:
            letter = _TFORM[f"{base.kind}{base.itemsize}"]
            form = f"{count}{letter}" if count != 1 else letter
        head += [_card(f"TTYPE{k}", field, ""), _card(f"TFORM{k}", form, "")]
    head.append(_card("EXTNAME", name, "name of this binary table extension"))
    head += [_card(k, v, c) for k, v, c in cards]
    return _header_block(head) + _data_block(np.ascontiguousarray(data).tobytes())
