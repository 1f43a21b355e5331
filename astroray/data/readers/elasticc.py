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
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astroray.data import _io
from astroray.data.readers._common import (
    NJY_ZEROPOINT,
    clean_light_curve,
    light_curve_record,
    sentinel_points,
)
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

SNANA_ZEROPOINT = 27.5
FLUXCAL_TO_NJY = 10.0 ** (0.4 * (NJY_ZEROPOINT - SNANA_ZEROPOINT))
REQUIRED = ("SNID", "MJD", "BAND", "FLUXCAL", "FLUXCALERR")


def _sniff(fh: FileHead) -> bool:
    if fh.head[:4] != b"PAR1":
        return False
    try:
        fs, inner = _io.resolve(fh.path)
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
        name = _io.basename(path)
        table = pq.read_table(io.BytesIO(_io.read_bytes(path)))
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
