"""ELAsTiCC (simulated LSST) light curves as Parquet.

The light-curve chunk has index ``SNID`` and columns ``MJD``, ``BAND``, ``FLUXCAL``,
``FLUXCALERR``.
``FLUXCAL`` has the SNANA zero point 27.5; it is converted to nJy (zero point 31.4). The
metadata table beside the light curves (``*_metadata_chunk.parquet``, index ``SNID``) is joined
as a label table: ``REDSHIFT_HELIO`` becomes ``redshift`` (-9 means unknown), ``RA`` and
``DEC``/``DECL`` (when the release has them; the sample here does not) ``ra``/``dec``, a
``TRUE_CLASS``/``SNTYPE`` column the label (ELAsTiCC's numeric classId such as 2222 map to
canonical names through the taxonomy's ``elasticc`` survey spellings), and every other column
goes into ``meta``.

Points whose ``FLUXCAL`` or ``FLUXCALERR`` is a fill value (exactly -999, -9999 or -99999, or
1e30 and more; :func:`~astroray.data.readers._common.sentinel_points`) are dropped and counted
in ``n_dropped``, like non-finite ones; negative fluxes are real (difference photometry) and
kept.

:func:`write_elasticc`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
    NJY_ZEROPOINT,
    clean_light_curve,
    light_curve_record,
    sentinel_points,
)
from astroray.data.readers._writing import (
    Tables,
    _as_fluxes,
    _Curves,
    _curves,
    _folder,
    _tables,
)

SNANA_ZEROPOINT = 27.5
FLUXCAL_TO_NJY = 10.0 ** (0.4 * (NJY_ZEROPOINT - SNANA_ZEROPOINT))
REQUIRED = ("SNID", "MJD", "BAND", "FLUXCAL", "FLUXCALERR")


def _sniff(fh: FileHead) -> bool:
    if fh.head[:4] != b"PAR1":
        return False
    try:
        fs, inner = fileio.resolve(fh.path)
        names = set(pq.read_schema(inner, filesystem=fs).names)
    except Exception:  # noqa: BLE001 - not a readable Parquet file: not ours
        return False
    return {"MJD", "BAND", "FLUXCAL"} <= names


@register_reader(
    "elasticc",
    kinds=("lightcurve",),
    sniff=_sniff,
    description="ELAsTiCC Parquet light curves (SNID, MJD, BAND, FLUXCAL, FLUXCALERR)",
)
def read_elasticc(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read every SNID of an ELAsTiCC light-curve chunk."""
    for path in unit.paths:
        name = fileio.basename(path)
        table = pq.read_table(io.BytesIO(fileio.read_bytes(path)))
        missing = [c for c in REQUIRED if c not in table.column_names]
        if missing:
            yield ReadFailure(path, None, f"{name}: missing column(s) {missing}")
            continue
        snid = table.column("SNID").cast(pa.string())
        order = pc.sort_indices(pa.table({"s": snid, "t": table.column("MJD")}),
                                sort_keys=[("s", "ascending"), ("t", "ascending")])
        snid = snid.take(order).to_numpy(zero_copy_only=False).astype(str)
        mjd = table.column("MJD").take(order).cast(pa.float64()).fill_null(np.nan).to_numpy()
        band = table.column("BAND").take(order).cast(pa.string()).fill_null("").to_numpy(
            zero_copy_only=False).astype(str)
        flux = table.column("FLUXCAL").take(order).cast(pa.float64()).fill_null(np.nan).to_numpy()
        err = table.column("FLUXCALERR").take(order).cast(pa.float64()).fill_null(
            np.nan).to_numpy()
        # One light curve per run of equal SNIDs (the table is sorted by SNID, then time).
        starts = np.flatnonzero(np.r_[True, snid[1:] != snid[:-1]])
        stops = np.r_[starts[1:], snid.size]
        for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
            # Fill values are looked for in the file's own units, before the conversion.
            cols, dropped = clean_light_curve(
                mjd[lo:hi], flux[lo:hi] * FLUXCAL_TO_NJY, err[lo:hi] * FLUXCAL_TO_NJY,
                np.char.strip(band[lo:hi]),
                invalid=sentinel_points(flux[lo:hi], err[lo:hi], is_flux=True))
            yield light_curve_record(object_id=snid[lo], survey=options.survey or "elasticc",
                                     source=path, cols=cols, n_dropped=dropped, is_flux=True,
                                     meta={"value_unit": "nJy"})


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


_FLUXCAL_PER_NJY = 10.0 ** (-0.4 * (NJY_ZEROPOINT - SNANA_ZEROPOINT))


_ELASTICC_BANDS = "ugrizY"


_ZPHOT_QUANTILES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@register_writer("elasticc", kinds=("lightcurve",), bands=tuple(_ELASTICC_BANDS))
def write_elasticc(table: Tables, out_dir: str | Path, *, name: str = "synthetic") -> list[str]:
    """ELAsTiCC-style Parquet: a light-curve chunk and its metadata chunk.

    ``<name>_lc_chunk.parquet``: pandas index ``SNID`` (string) and columns ``MJD`` (float64),
    ``BAND`` (string), ``FLUXCAL``, ``FLUXCALERR`` (float32, SNANA zero point 27.5, converted
    from nJy; magnitudes are taken as AB). ``<name>_metadata_chunk.parquet``: index ``SNID``
    and the 57 columns of the ELAsTiCC metadata with their dtypes (``REDSHIFT_HELIO``,
    ``MWEBV``, ``PEAKMJD``, host-galaxy columns with SNANA's -9/-99/-9999 sentinels where
    unknown, ...), plus ``TRUE_CLASS`` (the label) when labels exist. An iterable of tables is
    written as numbered chunk pairs (``<name>-0000_lc_chunk.parquet``, ...). Read back by the
    ``elasticc`` reader (:mod:`astroray.data.readers.elasticc`), which joins the metadata.

    Returns:
        The paths written, light-curve and metadata chunk of each table.
    """
    out = _folder(out_dir)
    paths: list[str] = []
    single = isinstance(table, pa.Table)
    for k, chunk in enumerate(_tables(table)):
        stem = name if single else f"{name}-{k:04d}"
        c = _curves(chunk)
        flux, err = _as_fluxes(c)
        lc = pd.DataFrame({
            "SNID": pd.Series(np.asarray(c.ids, dtype=object)[c.row], dtype=object),
            "MJD": c.time,
            "BAND": pd.Series(c.band, dtype=object),
            "FLUXCAL": (flux * _FLUXCAL_PER_NJY).astype(np.float32),
            "FLUXCALERR": (err * _FLUXCAL_PER_NJY).astype(np.float32),
        }).set_index("SNID")
        lc_path = out / f"{stem}_lc_chunk.parquet"
        lc.to_parquet(lc_path, engine="pyarrow")
        meta_path = out / f"{stem}_metadata_chunk.parquet"
        _elasticc_metadata(c, flux, err).to_parquet(meta_path, engine="pyarrow")
        paths += [str(lc_path), str(meta_path)]
    return paths


def _elasticc_metadata(c: _Curves, flux: np.ndarray, err: np.ndarray) -> pd.DataFrame:
    n = len(c.ids)
    f32 = np.float32
    z = np.array([np.nan if v is None else v for v in c.redshift], dtype=np.float64)
    known = np.isfinite(z)
    mwebv = np.array([float(m.get("mwebv", 0.0) or 0.0) for m in c.metas])
    peak = np.empty(n)
    first = np.full(n, -9.0)
    last = np.full(n, -9.0)
    snr = flux / np.where(err > 0, err, np.inf)
    for i in range(n):
        lo, hi = c.offsets[i], c.offsets[i + 1]
        meta_peak = c.metas[i].get("t_peak", c.metas[i].get("peak_mjd"))
        if isinstance(meta_peak, dict):
            meta_peak = float(np.mean(list(meta_peak.values())))
        if isinstance(meta_peak, int | float):
            peak[i] = meta_peak
        elif hi > lo:
            peak[i] = c.time[lo + int(np.argmax(flux[lo:hi]))]
        else:
            peak[i] = -9.0
        detected = np.flatnonzero(snr[lo:hi] >= 5.0)
        if detected.size:
            first[i], last[i] = c.time[lo + detected[0]], c.time[lo + detected[-1]]
    sentinel = np.full(n, -9999.0, dtype=f32)
    z_err = np.where(known, 0.001, -9.0)
    photoz = np.where(known, z * (1.0 + 0.0), -9.0)
    photoz_err = np.where(known, 0.05 * (1.0 + z), -9.0)
    columns: dict[str, Any] = {
        "MWEBV": mwebv.astype(f32), "MWEBV_ERR": (0.05 * mwebv).astype(f32),
        "REDSHIFT_HELIO": np.where(known, z, -9.0).astype(f32),
        "REDSHIFT_HELIO_ERR": z_err.astype(f32),
        "HOSTGAL_FLAG": np.zeros(n, dtype=np.int16),
        "HOSTGAL_PHOTOZ": photoz.astype(f32), "HOSTGAL_PHOTOZ_ERR": photoz_err.astype(f32),
        "HOSTGAL_SPECZ": np.where(known, z, -9.0).astype(f32),
        "HOSTGAL_SPECZ_ERR": z_err.astype(f32),
        "HOSTGAL_SNSEP": np.full(n, -9.0, dtype=f32), "HOSTGAL_DDLR": np.full(n, -9.0, dtype=f32),
        "HOSTGAL_CONFUSION": np.full(n, -99.0, dtype=f32),
    }
    for key in ("LOGMASS", "LOGMASS_ERR", "LOGSFR", "LOGSFR_ERR", "LOGsSFR", "LOGsSFR_ERR",
                "COLOR", "COLOR_ERR", "ELLIPTICITY", "SQRADIUS"):
        columns[f"HOSTGAL_{key}"] = sentinel.copy()
    columns["HOSTGAL_OBJID_UNIQUE"] = np.full(n, -9, dtype=np.int64)
    for prefix in ("MAG", "MAGERR", "SB_FLUXCAL"):
        for band in _ELASTICC_BANDS:
            columns[f"HOSTGAL_{prefix}_{band}"] = sentinel.copy()
    columns.update({
        "PEAKMJD": peak.astype(f32), "MJD_TRIGGER": first.astype(f32),
        "MJD_DETECT_FIRST": first.astype(f32), "MJD_DETECT_LAST": last.astype(f32),
        "SEARCH_TYPE": np.full(n, -9, dtype=np.int32),
    })
    from scipy.stats import norm  # lazy: scipy

    for q in _ZPHOT_QUANTILES:
        # Quantiles of a Gaussian photo-z, clipped at the ends like SNANA's.
        quant = norm.ppf(np.clip(q, 0.001, 0.999))
        columns[f"HOSTGAL_ZPHOT_Q{int(round(q * 100)):03d}"] = np.where(
            known, np.clip(photoz + quant * photoz_err, 0.0, None), -9.0).astype(f32)
    frame = pd.DataFrame(columns)
    if any(label is not None for label in c.labels):
        frame["TRUE_CLASS"] = pd.Series(c.labels, dtype=object)
    frame.insert(0, "SNID", pd.Series(c.ids, dtype=object))
    return frame.set_index("SNID")
