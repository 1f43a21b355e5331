"""ZTF alert packets (Avro, schema ``ztf.alert`` 3.x), one or more alerts per file.

Each alert gives two records:

* a light curve (kind ``lightcurve``): the detections in ``prv_candidates`` plus the
  ``candidate`` itself, JD converted to MJD, ``fid`` 1/2/3 -> g/r/i, difference magnitudes
  ``magpsf`` +- ``sigmapsf``. Upper limits (entries without ``magpsf``) are not points; their
  number is kept in ``meta.n_upper_limits``, with each point's ``isdiffpos`` sign. Points with a
  fill value (:func:`~astroray.data.readers._common.sentinel_points`) are dropped and counted.
* a stamp (kind ``stamp``): the science, template (reference) and difference cutouts, each a
  gzipped FITS image, with the alert's real/bogus scores ``rb`` and ``drb``. Cutouts cut by a
  CCD edge are smaller than 63x63; all three are padded with NaN to their common largest shape.

The object id is ``objectId``; the alert's ``candid`` is kept (the stamp's ``stamp_id`` and
``meta.candid``), so several alerts of one object stay distinguishable.
"""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Iterator
from typing import Any

import fastavro
import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from astroray.data import _io
from astroray.data.readers._common import (
    JD_OFFSET,
    ZTF_FID_BANDS,
    clean_light_curve,
    light_curve_record,
    sentinel_points,
)
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

CUTOUTS = {"science": "cutoutScience", "reference": "cutoutTemplate",
           "difference": "cutoutDifference"}


def _sniff(fh: FileHead) -> bool:
    return fh.head[:4] == b"Obj\x01" and b"ztf.alert" in fh.head


def _alerts(path: str) -> Iterator[dict[str, Any]]:
    reader = fastavro.reader(io.BytesIO(_io.read_bytes(path)))
    yield from reader


def _light_curve(alert: dict[str, Any], path: str, options: ReadOptions) -> dict[str, Any]:
    cand = alert["candidate"]
    points = [p for p in (alert.get("prv_candidates") or []) if p.get("magpsf") is not None]
    n_limits = len(alert.get("prv_candidates") or []) - len(points)
    seen = {p.get("candid") for p in points}
    if cand.get("candid") not in seen:
        points.append(cand)
    jd = np.array([p.get("jd") for p in points], dtype=np.float64)
    mag = np.array([np.nan if p.get("magpsf") is None else p["magpsf"] for p in points])
    err = np.array([np.nan if p.get("sigmapsf") is None else p["sigmapsf"] for p in points])
    band = np.array([ZTF_FID_BANDS.get(p.get("fid"), "") for p in points], dtype=str)
    sign = np.array([p.get("isdiffpos") or "" for p in points], dtype=str)
    invalid = sentinel_points(mag, err, is_flux=False)
    # The points clean_light_curve keeps, so that isdiffpos can follow them.
    order_keep = (np.isfinite(jd) & np.isfinite(mag) & np.isfinite(err) & (err >= 0)
                  & (band != "") & ~invalid)
    cols, dropped = clean_light_curve(jd - JD_OFFSET, mag, err, band, invalid=invalid)
    # isdiffpos follows the kept points in time order.
    kept_sign = sign[order_keep][np.argsort(jd[order_keep], kind="stable")]
    meta = {
        "value_unit": "mag", "mag_type": "difference", "candid": cand.get("candid"),
        "ra": cand.get("ra"), "dec": cand.get("dec"), "rb": cand.get("rb"),
        "drb": cand.get("drb"), "schemavsn": alert.get("schemavsn"),
        "n_upper_limits": n_limits,
        "isdiffpos": ["t" if s in ("t", "1") else "f" for s in kept_sign.tolist()],
    }
    return {**light_curve_record(object_id=str(alert["objectId"]),
                                 survey=options.survey or "ztf", source=path, cols=cols,
                                 n_dropped=dropped, is_flux=False, meta=meta),
            "ra": cand.get("ra"), "dec": cand.get("dec")}


def _cutout(alert: dict[str, Any], key: str) -> np.ndarray:
    stamp = alert.get(key)
    if not stamp or not stamp.get("stampData"):
        raise ValueError(f"{key} is missing")
    data = stamp["stampData"]
    if data[:2] == _io.GZIP_MAGIC:
        data = gzip.decompress(data)
    with warnings.catch_warnings():
        # ZTF writes cutouts whose SIMPLE card astropy calls non-standard; the data are fine.
        warnings.simplefilter("ignore", VerifyWarning)
        with fits.open(io.BytesIO(data)) as hdul:
            image = hdul[0].data
    if image is None or image.ndim != 2:
        raise ValueError(f"{key} is not a 2-D image")
    return np.asarray(image, dtype=np.float32)


def _stamp(alert: dict[str, Any], path: str, options: ReadOptions) -> dict[str, Any]:
    images = {name: _cutout(alert, key) for name, key in CUTOUTS.items()}
    height = max(im.shape[0] for im in images.values())
    width = max(im.shape[1] for im in images.values())
    padded = {}
    for name, im in images.items():
        out = np.full((height, width), np.nan, dtype=np.float32)
        out[: im.shape[0], : im.shape[1]] = im
        padded[name] = out.ravel()  # (H*W,) row-major
    cand = alert["candidate"]
    return {
        "object_id": str(alert["objectId"]), "survey": options.survey or "ztf", "source": path,
        "stamp_id": str(alert.get("candid") or cand.get("candid")),
        "height": height, "width": width, **padded,
        "rb": cand.get("rb"), "drb": cand.get("drb"), "ra": cand.get("ra"),
        "dec": cand.get("dec"),
        "meta": {"fid": cand.get("fid"), "band": ZTF_FID_BANDS.get(cand.get("fid")),
                 "mjd": cand["jd"] - JD_OFFSET, "magpsf": cand.get("magpsf"),
                 "isdiffpos": cand.get("isdiffpos"), "ra": cand.get("ra"),
                 "dec": cand.get("dec"), "schemavsn": alert.get("schemavsn"),
                 "shapes": {n: list(im.shape) for n, im in images.items()}},
    }


@register_reader(
    "ztf_avro",
    kinds=("lightcurve", "stamp"),
    sniff=_sniff,
    description="ZTF alert packets (Avro): light curves and science/template/difference stamps",
)
def read_ztf_avro(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read the alerts of Avro files as light curves or as stamps."""
    build = _stamp if kind == "stamp" else _light_curve
    for path in unit.paths:
        name = _io.basename(path)
        n_alerts = 0
        alerts = _alerts(path)
        while True:
            try:
                alert = next(alerts)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - fastavro raises many types on bad bytes
                yield ReadFailure(path, None, f"{name}: corrupt or truncated Avro after "
                                              f"{n_alerts} alert(s): {type(exc).__name__}: {exc}")
                break
            n_alerts += 1
            oid = alert.get("objectId")
            try:
                yield build(alert, path, options)
            except (KeyError, ValueError, TypeError, OSError) as exc:
                yield ReadFailure(path, oid, f"{name}: alert {alert.get('candid')}: "
                                             f"{type(exc).__name__}: {exc}")
