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

:func:`write_alerce`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

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
    ZTF_FID_BANDS,
    clean_light_curve,
    light_curve_record,
    sentinel_points,
)
from astroray.data.readers._writing import (
    _MAG_PER_LN,
    _ZTF_FID,
    Tables,
    _Curves,
    _curves,
    _folder,
    _rank,
    _sky_position,
    _tables,
    _ztf_ids,
)
from astroray.data.schema import LIGHT_CURVE_SCHEMA

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
        name = fileio.basename(path)
        frame = pd.read_csv(io.BytesIO(fileio.read_bytes(path)), low_memory=False)
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


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


@register_writer("alerce", kinds=("lightcurve",), bands=("g", "r", "i"))
def write_alerce(table: Tables, out_dir: str | Path, *, name: str = "synthetic",
                 detection_snr: float = 3.0, seed: int = 0) -> list[str]:
    """ZTF detections as served by the ALeRCE broker: one CSV for all objects, and labels.

    ``<name>_detections.csv`` holds one row per detection with the ALeRCE columns
    ``objectId, fid, candid, pid, isdiffpos, sigmapsf, magpsf, diffmaglim, ra, dec, magnr,
    sigmagnr, distnr, rb, rbversion, drb, drbversion, field, rcid, nid, programid, fwhm, mjd,
    corrected, magpsf_corr, sigmapsf_corr, sigmapsf_corr_ext, dubious, has_stamp,
    step_id_corr`` (fid 1/2/3 for g/r/i; dtypes as in ALeRCE's dumps); ``<name>_labels.csv``
    holds ``objectId,classALeRCE``.

    ALeRCE serves detections only: points whose (difference) flux is below ``detection_snr``
    sigma are left out, non-positive fluxes always. Light curves in nJy are taken as
    difference fluxes (supernovae): AB magnitudes (zero point 31.4), ``corrected`` False.
    Light curves in magnitudes are taken as variable stars on a reference source (the median
    magnitude per band): the difference flux gives ``magpsf``/``isdiffpos``, the magnitude
    itself becomes ``magpsf_corr`` with ``corrected`` True. rb/drb are drawn from ``seed``.
    Read back by the ``alerce`` reader (:mod:`astroray.data.readers.alerce`).

    Returns:
        The two paths written.
    """
    out = _folder(out_dir)
    rng = np.random.default_rng(seed)
    det_path, lab_path = out / f"{name}_detections.csv", out / f"{name}_labels.csv"
    labels: list[dict[str, Any]] = []
    header = True
    for chunk in _tables(table):
        c = _curves(chunk)
        frame = _alerce_frame(c, rng, detection_snr)
        frame.to_csv(det_path, mode="w" if header else "a", header=header, index=False)
        header = False
        labels.extend({"objectId": oid, "classALeRCE": c.labels[i]}
                      for i, oid in enumerate(c.ids))
    if header:  # no chunk at all: an empty table with the header
        _alerce_frame(_curves(_empty_light_curves()), rng, detection_snr).to_csv(
            det_path, index=False)
    pd.DataFrame(labels, columns=["objectId", "classALeRCE"]).to_csv(lab_path, index=False)
    return [str(det_path), str(lab_path)]


def _empty_light_curves() -> pa.Table:
    return LIGHT_CURVE_SCHEMA.empty_table()


def _alerce_frame(c: _Curves, rng: np.random.Generator, detection_snr: float) -> pd.DataFrame:
    n_pts = c.time.size
    row = c.row
    point_flux = np.repeat(c.is_flux, np.diff(c.offsets))
    fid = np.array([_ZTF_FID.get(b, 0) for b in c.band_names], dtype=np.int64)[c.band_codes]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Variable stars: difference against the median magnitude of the object's band.
        key = row * max(len(c.band_names), 1) + c.band_codes
        ref = np.full(n_pts, np.nan)
        if n_pts:
            frame = pd.DataFrame({"k": key, "m": c.value})
            ref = frame.groupby("k")["m"].transform("median").to_numpy()
        f_star = 10.0 ** (-0.4 * (np.where(point_flux, NJY_ZEROPOINT, c.value) - NJY_ZEROPOINT))
        f_ref = 10.0 ** (-0.4 * (ref - NJY_ZEROPOINT))
        diff = np.where(point_flux, c.value, f_star - f_ref)
        sigma_f = np.where(point_flux, c.err, c.err * f_star / _MAG_PER_LN)
        adiff = np.abs(diff)
        magpsf = NJY_ZEROPOINT - 2.5 * np.log10(np.where(adiff > 0, adiff, 1.0))
        sigmapsf = _MAG_PER_LN * sigma_f / np.where(adiff > 0, adiff, 1.0)
        diffmaglim = NJY_ZEROPOINT - 2.5 * np.log10(5.0 * np.maximum(sigma_f, 1e-30))
    keep = (diff > 0) | ~point_flux
    keep &= (adiff > 0) & (adiff >= detection_snr * sigma_f) & (fid > 0)
    keep &= np.isfinite(magpsf) & np.isfinite(sigmapsf)
    idx = np.flatnonzero(keep)
    mjd = c.time[idx]
    rcid = rng.integers(0, 64, len(c.ids))[row[idx]] if len(c.ids) else np.zeros(0, int)
    nid, pid, candid = _ztf_ids(mjd, _rank(c)[idx], rcid)
    positions = np.array([_sky_position(i, m, "sky") for i, m in enumerate(c.metas)]).reshape(-1, 2)
    star = ~point_flux[idx]
    n = idx.size
    corr_err = c.err[idx]
    magnr = np.where(star, ref[idx], rng.uniform(19.0, 23.0, n))
    frame = pd.DataFrame({
        "objectId": np.asarray(c.ids, dtype=object)[row[idx]],
        "fid": fid[idx],
        "candid": candid,
        "pid": pid,
        "isdiffpos": np.where(diff[idx] >= 0, 1.0, -1.0),
        "sigmapsf": sigmapsf[idx],
        "magpsf": magpsf[idx],
        "diffmaglim": diffmaglim[idx],
        "ra": positions[row[idx], 0] + rng.normal(0.0, 1e-5, n),
        "dec": positions[row[idx], 1] + rng.normal(0.0, 1e-5, n),
        "magnr": magnr,
        "sigmagnr": rng.uniform(0.02, 0.2, n),
        "distnr": np.where(star, rng.uniform(0.05, 0.5, n), rng.uniform(1.5, 6.0, n)),
        "rb": rng.uniform(0.55, 1.0, n),
        "rbversion": "t17_f5_c3",
        "drb": rng.uniform(0.9, 1.0, n),
        "drbversion": "d6_m7",
        "field": 500 + np.mod(row[idx], 300),
        "rcid": rcid,
        "nid": nid,
        "programid": 1,
        "fwhm": rng.uniform(1.5, 3.0, n),
        "mjd": mjd,
        "corrected": star,
        "magpsf_corr": np.where(star, c.value[idx], np.nan),
        "sigmapsf_corr": np.where(star, corr_err, np.nan),
        "sigmapsf_corr_ext": np.where(star, corr_err, np.nan),
        "dubious": False,
        "has_stamp": True,
        "step_id_corr": "synthetic",
    })
    return frame
