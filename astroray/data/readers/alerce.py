"""ZTF detection tables as served by the ALeRCE broker (one row per detection, many objects).

Columns used: ``objectId``, ``fid`` (1/2/3 -> g/r/i), ``mjd``, ``magpsf``/``sigmapsf`` and, when
ALeRCE could correct them to apparent magnitudes, ``magpsf_corr`` with ``sigmapsf_corr_ext``
(or ``sigmapsf_corr``). An object whose detections are all ``corrected`` uses the corrected
magnitudes; otherwise every point of that object uses the difference magnitude ``magpsf``, so
that one light curve never mixes the two (``meta.mag_type`` says which). ALeRCE's sentinel 100
for undefined corrected errors, and the other fill values of
:func:`~astroray.data.readers._common.sentinel_points` (``|mag| >= 90``, error >= 9.9), are
dropped and counted. Labels come from a ``classALeRCE`` table
beside the detections. When the table has ``ra``/``dec`` columns (degrees, per detection), the
object's position is their mean (``ra`` averaged on the circle, so that 359.9 and 0.1 give 0).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pandas as pd

from astroray.data import _io
from astroray.data.readers._common import (
    ZTF_FID_BANDS,
    clean_light_curve,
    light_curve_record,
    sentinel_points,
)
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

REQUIRED = ("objectId", "fid", "mjd", "magpsf", "sigmapsf")


def _sniff(fh: FileHead) -> bool:
    columns = {c.strip() for c in fh.first_line.split(",")}
    return {"objectId", "fid", "mjd", "magpsf"} <= columns


def _as_bool(series: pd.Series) -> np.ndarray:
    if series.dtype == bool:
        return series.to_numpy()
    return series.astype(str).str.strip().str.lower().isin(["true", "1", "t"]).to_numpy()


@register_reader(
    "alerce",
    kinds=("lightcurve",),
    sniff=_sniff,
    description="ALeRCE ZTF detection tables (objectId, fid, mjd, magpsf[_corr], ...)",
)
def read_alerce(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read every object of a detections table."""
    for path in unit.paths:
        name = _io.basename(path)
        frame = pd.read_csv(io.BytesIO(_io.read_bytes(path)), low_memory=False)
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            yield ReadFailure(path, None, f"{name}: missing column(s) {missing}")
            continue
        has_corr = "magpsf_corr" in frame.columns and "corrected" in frame.columns
        err_corr = next((c for c in ("sigmapsf_corr_ext", "sigmapsf_corr")
                         if c in frame.columns), None)
        for object_id, rows in frame.groupby("objectId", sort=True):
            fid = pd.to_numeric(rows["fid"], errors="coerce").fillna(-1).astype(int)
            bands = np.array([ZTF_FID_BANDS.get(f, "") for f in fid.tolist()], dtype=str)
            corrected = bool(has_corr and err_corr and _as_bool(rows["corrected"]).all())
            if corrected:
                mag = pd.to_numeric(rows["magpsf_corr"], errors="coerce").to_numpy(float)
                err = pd.to_numeric(rows[err_corr], errors="coerce").to_numpy(float)
            else:
                mag = pd.to_numeric(rows["magpsf"], errors="coerce").to_numpy(float)
                err = pd.to_numeric(rows["sigmapsf"], errors="coerce").to_numpy(float)
            time = pd.to_numeric(rows["mjd"], errors="coerce").to_numpy(float)
            invalid = sentinel_points(mag, err, is_flux=False) | (bands == "")
            cols, dropped = clean_light_curve(time, mag, err, bands, invalid=invalid)
            meta = {"value_unit": "mag",
                    "mag_type": "corrected" if corrected else "difference"}
            if "isdiffpos" in rows.columns:
                sign = pd.to_numeric(rows["isdiffpos"].replace({"t": 1, "f": -1}),
                                     errors="coerce")
                meta["n_negative_difference"] = int((sign < 0).sum())
            record = light_curve_record(object_id=str(object_id), survey=options.survey or "ztf",
                                        source=path, cols=cols, n_dropped=dropped,
                                        is_flux=False, meta=meta)
            if "ra" in rows.columns and "dec" in rows.columns:
                record["ra"], record["dec"] = mean_position(rows["ra"], rows["dec"])
            yield record


def mean_position(ra: pd.Series, dec: pd.Series) -> tuple[float | None, float | None]:
    """Mean RA/Dec (degrees) of detections; RA averaged as a direction (wraps at 0/360)."""
    ra_deg = pd.to_numeric(ra, errors="coerce").to_numpy(float)
    dec_deg = pd.to_numeric(dec, errors="coerce").to_numpy(float)
    ok = (np.isfinite(ra_deg) & np.isfinite(dec_deg) & (ra_deg >= 0) & (ra_deg <= 360)
          & (np.abs(dec_deg) <= 90))
    if not ok.any():
        return None, None
    angle = np.deg2rad(ra_deg[ok])
    mean_ra = np.rad2deg(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())) % 360.0
    return float(mean_ra), float(dec_deg[ok].mean())
