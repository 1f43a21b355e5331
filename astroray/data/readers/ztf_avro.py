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

:func:`write_ztf_avro`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

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
    NJY_ZEROPOINT,
    ZTF_FID_BANDS,
    clean_light_curve,
    light_curve_record,
    sentinel_points,
)
from astroray.data.readers._writing import (
    _LABELS,
    _MAG_PER_LN,
    _ZTF_FID,
    Tables,
    _Curves,
    _curves,
    _folder,
    _sky_position,
    _tables,
    _write_label_table,
    _ztf_ids,
)

CUTOUTS = {"science": "cutoutScience", "reference": "cutoutTemplate",
           "difference": "cutoutDifference"}


def _sniff(fh: FileHead) -> bool:
    return fh.head[:4] == b"Obj\x01" and b"ztf.alert" in fh.head


def _alerts(path: str) -> Iterator[dict[str, Any]]:
    reader = fastavro.reader(io.BytesIO(fileio.read_bytes(path)))
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
    if data[:2] == fileio.GZIP_MAGIC:
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
        name = fileio.basename(path)
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


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


# Fields of the ZTF alert schema 3.3 (name:type; "?" = nullable union with null first default).
_CANDIDATE_FIELDS = (
    "jd:double fid:int pid:long diffmaglim:?float pdiffimfilename:?string programpi:?string "
    "programid:int candid:long isdiffpos:string tblid:?long nid:?int rcid:?int field:?int "
    "xpos:?float ypos:?float ra:double dec:double magpsf:float sigmapsf:float chipsf:?float "
    "magap:?float sigmagap:?float distnr:?float magnr:?float sigmagnr:?float chinr:?float "
    "sharpnr:?float sky:?float magdiff:?float fwhm:?float classtar:?float mindtoedge:?float "
    "magfromlim:?float seeratio:?float aimage:?float bimage:?float aimagerat:?float "
    "bimagerat:?float elong:?float nneg:?int nbad:?int rb:?float ssdistnr:?float ssmagnr:?float "
    "ssnamenr:?string sumrat:?float magapbig:?float sigmagapbig:?float ranr:double decnr:double "
    "sgmag1:?float srmag1:?float simag1:?float szmag1:?float sgscore1:?float distpsnr1:?float "
    "ndethist:int ncovhist:int jdstarthist:?double jdendhist:?double scorr:?double tooflag:?int "
    "objectidps1:?long objectidps2:?long sgmag2:?float srmag2:?float simag2:?float "
    "szmag2:?float sgscore2:?float distpsnr2:?float objectidps3:?long sgmag3:?float "
    "srmag3:?float simag3:?float szmag3:?float sgscore3:?float distpsnr3:?float nmtchps:int "
    "rfid:long jdstartref:double jdendref:double nframesref:int rbversion:string dsnrms:?float "
    "ssnrms:?float dsdiff:?float magzpsci:?float magzpsciunc:?float magzpscirms:?float "
    "nmatches:int clrcoeff:?float clrcounc:?float zpclrcov:?float zpmed:?float clrmed:?float "
    "clrrms:?float neargaia:?float neargaiabright:?float maggaia:?float maggaiabright:?float "
    "exptime:?float drb:?float drbversion:string"
)


_PRV_FIELDS = (
    "jd:double fid:int pid:long diffmaglim:?float pdiffimfilename:?string programpi:?string "
    "programid:int candid:?long isdiffpos:?string tblid:?long nid:?int rcid:?int field:?int "
    "xpos:?float ypos:?float ra:?double dec:?double magpsf:?float sigmapsf:?float chipsf:?float "
    "magap:?float sigmagap:?float distnr:?float magnr:?float sigmagnr:?float chinr:?float "
    "sharpnr:?float sky:?float magdiff:?float fwhm:?float classtar:?float mindtoedge:?float "
    "magfromlim:?float seeratio:?float aimage:?float bimage:?float aimagerat:?float "
    "bimagerat:?float elong:?float nneg:?int nbad:?int rb:?float ssdistnr:?float ssmagnr:?float "
    "ssnamenr:?string sumrat:?float magapbig:?float sigmagapbig:?float ranr:?double "
    "decnr:?double scorr:?double magzpsci:?float magzpsciunc:?float magzpscirms:?float "
    "clrcoeff:?float clrcounc:?float rbversion:string"
)


_SCHEMA_VERSION = "3.3"


def _avro_fields(spec: str) -> list[dict[str, Any]]:
    fields = []
    for item in spec.split():
        name, kind = item.split(":")
        if kind.startswith("?"):
            fields.append({"name": name, "type": [kind[1:], "null"], "default": None})
        else:
            fields.append({"name": name, "type": kind})
    for f in fields:
        if f["name"] == "tooflag":
            f["default"] = 0
            f["type"] = ["int", "null"]
    return fields


def _alert_schema() -> dict[str, Any]:
    cutout = {"version": _SCHEMA_VERSION, "type": "record", "name": "ztf.alert.cutout",
              "doc": "avro alert schema",
              "fields": [{"name": "fileName", "type": "string"},
                         {"name": "stampData", "type": "bytes", "doc": "fits.gz"}]}
    return {
        "version": _SCHEMA_VERSION, "type": "record", "name": "ztf.alert",
        "doc": "avro alert schema for ZTF (www.ztf.caltech.edu)",
        "fields": [
            {"name": "schemavsn", "type": "string", "doc": "schema version used"},
            {"name": "publisher", "type": "string", "doc": "origin of alert packet"},
            {"name": "objectId", "type": "string", "doc": "object identifier or name"},
            {"name": "candid", "type": "long"},
            {"name": "candidate", "type": {"version": _SCHEMA_VERSION, "type": "record",
                                           "name": "ztf.alert.candidate",
                                           "fields": _avro_fields(_CANDIDATE_FIELDS)}},
            {"name": "prv_candidates", "default": None,
             "type": [{"type": "array", "items": {
                 "version": _SCHEMA_VERSION, "type": "record", "name": "ztf.alert.prv_candidate",
                 "fields": _avro_fields(_PRV_FIELDS)}}, "null"]},
            {"name": "cutoutScience", "type": [cutout, "null"], "default": None},
            {"name": "cutoutTemplate", "type": ["ztf.alert.cutout", "null"], "default": None},
            {"name": "cutoutDifference", "type": ["ztf.alert.cutout", "null"], "default": None},
        ],
    }


_PARSED_SCHEMA: list[Any] = []


def _parsed_schema() -> Any:
    if not _PARSED_SCHEMA:
        _PARSED_SCHEMA.append(fastavro.parse_schema(_alert_schema()))
    return _PARSED_SCHEMA[0]


def _cutout_bytes(image: np.ndarray) -> bytes:
    """A 2-D image as gzipped FITS (float32, big-endian, ``BUNIT = 'DN'``), as in ZTF alerts."""
    hdu = fits.PrimaryHDU(np.asarray(image, dtype=">f4"))
    hdu.header["BUNIT"] = "DN"
    buf = io.BytesIO()
    hdu.writeto(buf)
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


@dataclass
class _StampRows:
    ids: list[str]
    labels: list[str | None]
    rb: list[float | None]
    drb: list[float | None]
    images: dict[str, np.ndarray]  # name -> (n, H, W)


def _stamp_rows(table: pa.Table) -> _StampRows:
    height = table.column("height").to_numpy(zero_copy_only=False)
    width = table.column("width").to_numpy(zero_copy_only=False)
    images: dict[str, list[np.ndarray]] = {}
    for name in ("science", "reference", "difference"):
        col = table.column(name).combine_chunks()
        flat = pc.list_flatten(col).to_numpy(zero_copy_only=False)
        starts = col.offsets.to_numpy()
        images[name] = [flat[starts[i]:starts[i + 1]].reshape(int(height[i]), int(width[i]))
                        for i in range(table.num_rows)]
    return _StampRows(ids=[str(v) for v in table.column("object_id").to_pylist()],
                      labels=table.column("label").to_pylist(),
                      rb=table.column("rb").to_pylist(), drb=table.column("drb").to_pylist(),
                      images={k: v for k, v in images.items()})


@register_writer("ztf_avro", kinds=("lightcurve", "stamp"), bands=("g", "r", "i"))
def write_ztf_avro(
    lightcurves: Tables | None,
    stamps: Tables | None,
    out_dir: str | Path,
    *,
    history_days: float | None = 30.0,
    detection_snr: float = 5.0,
    seed: int = 0,
) -> list[str]:
    """ZTF alert packets as Avro files, one alert per file, schema ``ztf.alert`` 3.3.

    Alert ``i`` pairs light curve ``i`` with stamp triplet ``i`` (with only one of them, one
    alert per row of it; with both, as many alerts as stamps, light curves reused in turn).
    The alert's ``candidate`` is the light curve's last detection; ``prv_candidates`` hold the
    earlier detections and upper limits of the last ``history_days`` days (None: all), as in
    real packets: upper limits have null ``candid``/``magpsf``/``isdiffpos`` and a
    ``diffmaglim``. Times are JD (MJD + 2400000.5), ``fid`` 1/2/3 for g/r/i, ``isdiffpos``
    ``t``/``f``. For light curves in nJy a detection is a point with |flux| / err >=
    ``detection_snr`` (magnitude of |flux|, AB zero point 31.4); other points are upper
    limits. For light curves in magnitudes every point is a detection, and a few upper limits
    (from ``seed``) are added between them. An alert always has a candidate: without any
    detection, the highest signal-to-noise point is used. ``cutoutScience``,
    ``cutoutTemplate`` and ``cutoutDifference`` hold ``fileName`` and gzipped FITS
    ``stampData`` of the 2-D cutouts (null without stamps); ``rb``/``drb`` come from the stamp
    table. Stamp labels go to ``labels.csv`` (``candid,label``), light-curve labels to
    ``object_labels.csv`` (``object_id,label,redshift``). Read back by the ``ztf_avro``
    reader (:mod:`astroray.data.readers.ztf_avro`) as light curves or stamps.

    Returns:
        The alert files, then the label tables.
    """
    if lightcurves is None and stamps is None:
        raise ValueError("write_ztf_avro: give light curves, stamps or both")
    out = _folder(out_dir)
    rng = np.random.default_rng(seed)
    schema = _parsed_schema()
    paths: list[str] = []
    stamp_labels: list[dict[str, Any]] = []
    object_labels: dict[str, dict[str, Any]] = {}
    if lightcurves is not None and stamps is not None:
        pairs: Iterable[tuple[pa.Table | None, pa.Table | None]] = zip(
            _tables(lightcurves), _tables(stamps), strict=False)  # stops at the shorter one
    elif lightcurves is not None:
        pairs = ((t, None) for t in _tables(lightcurves))
    else:
        pairs = ((None, t) for t in _tables(stamps))  # stamps is not None here
    serial = 0
    for lc_table, st_table in pairs:
        curves = _curves(lc_table) if lc_table is not None else None
        rows = _stamp_rows(st_table) if st_table is not None else None
        if curves is not None and not curves.ids:
            continue
        n_alerts = len(rows.ids) if rows is not None else len(curves.ids if curves else [])
        for a in range(n_alerts):
            i = a % len(curves.ids) if curves is not None else None
            alert, candid = _alert(curves, i, rows, a, rng, serial, history_days,
                                   detection_snr)
            serial += 1
            path = out / f"{candid}.avro"
            with open(path, "wb") as fh:
                # A sync marker derived from the candid keeps the files reproducible.
                marker = hashlib.md5(str(candid).encode("ascii")).digest()
                fastavro.writer(fh, schema, [alert], codec="null", sync_marker=marker)
            paths.append(str(path))
            if rows is not None:
                stamp_labels.append({"candid": candid, "label": rows.labels[a]})
            if curves is not None and i is not None:
                oid = curves.ids[i]
                object_labels.setdefault(oid, {"object_id": oid, "label": curves.labels[i],
                                               "redshift": curves.redshift[i]})
    written = [p for p in (
        _write_label_table(out / _LABELS, stamp_labels, ["candid", "label"]),
        _write_label_table(out / "object_labels.csv", list(object_labels.values()),
                           ["object_id", "label", "redshift"]),
    ) if p]
    return paths + written


def _alert_points(curves: _Curves, i: int, rng: np.random.Generator, detection_snr: float):
    """Times (MJD), fids, magnitudes, errors, signs, detection flags and limits of object i."""
    lo, hi = int(curves.offsets[i]), int(curves.offsets[i + 1])
    t = curves.time[lo:hi]
    fid = np.array([_ZTF_FID.get(curves.band_names[b], 0) for b in curves.band_codes[lo:hi]],
                   dtype=np.int64)
    v, e = curves.value[lo:hi], curves.err[lo:hi]
    if curves.is_flux[i]:
        snr = np.abs(v) / np.where(e > 0, e, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = NJY_ZEROPOINT - 2.5 * np.log10(np.where(np.abs(v) > 0, np.abs(v), 1.0))
            sig = _MAG_PER_LN / np.where(snr > 0, snr, np.inf)
            limit = NJY_ZEROPOINT - 2.5 * np.log10(5.0 * np.maximum(e, 1e-30))
        detected = snr >= detection_snr
        if not detected.any() and snr.size:
            detected[int(np.argmax(snr))] = True
        sign = np.where(v >= 0, "t", "f")
    else:
        mag, sig = v, e
        limit = v - 2.5 * np.log10(np.maximum(5.0 / _MAG_PER_LN * e, 1e-6))
        detected = np.ones(t.size, dtype=bool)
        sign = np.full(t.size, "t")
        if t.size > 1:
            # Non-detections on a few nights of poor conditions between the detections.
            k = int(rng.integers(0, 6))
            extra_t = np.sort(rng.uniform(t[0], t[-1], k))
            extra_f = rng.choice(fid, k) if fid.size else np.zeros(k, dtype=np.int64)
            extra_l = np.median(v) - rng.uniform(0.0, 1.0, k)
            order = np.argsort(np.r_[t, extra_t], kind="stable")
            t = np.r_[t, extra_t][order]
            fid = np.r_[fid, extra_f][order]
            mag = np.r_[mag, np.full(k, np.nan)][order]
            sig = np.r_[sig, np.full(k, np.nan)][order]
            limit = np.r_[limit, extra_l][order]
            sign = np.r_[sign, np.full(k, "t")][order]
            detected = np.r_[detected, np.zeros(k, dtype=bool)][order]
    keep = fid > 0
    return (t[keep], fid[keep], mag[keep], sig[keep], sign[keep], detected[keep],
            limit[keep])


def _alert(curves: _Curves | None, i: int | None, rows: _StampRows | None, a: int,
           rng: np.random.Generator, serial: int, history_days: float | None,
           detection_snr: float) -> tuple[dict[str, Any], int]:
    rcid = int(rng.integers(0, 64))
    field = int(rng.integers(200, 880))
    if curves is not None and i is not None:
        oid = curves.ids[i]
        meta = curves.metas[i]
        t, fid, mag, sig, sign, detected, limit = _alert_points(curves, i, rng, detection_snr)
        if t.size == 0:
            raise ValueError(f"write_ztf_avro: light curve {oid!r} has no g/r/i point")
    else:
        assert rows is not None
        oid = rows.ids[a]
        meta = {}
        t = np.array([60000.0 + serial * 0.01])
        fid, mag, sig = np.array([2]), np.array([19.0]), np.array([0.1])
        sign, detected, limit = np.array(["t"]), np.array([True]), np.array([20.5])
    rank = np.arange(t.size)
    nid, pid, candid = _ztf_ids(t, rank, np.full(t.size, rcid))
    ra, dec = _sky_position(serial, meta, "sky")
    cand_i = int(np.flatnonzero(detected)[-1])
    jd = t + JD_OFFSET

    def entry(j: int, full: bool) -> dict[str, Any]:
        det = bool(detected[j])
        d: dict[str, Any] = {
            "jd": float(jd[j]), "fid": int(fid[j]), "pid": int(pid[j]),
            "diffmaglim": float(limit[j]), "programid": 1, "programpi": "Kulkarni",
            "pdiffimfilename": f"ztf_{int(pid[j])}_{field:06d}_z{'gri'[int(fid[j]) - 1]}_"
                               f"c{rcid // 4 + 1:02d}_o_q{rcid % 4 + 1}_scimrefdiffimg.fits",
            "candid": int(candid[j]) if det else None,
            "isdiffpos": str(sign[j]) if det else None,
            "nid": int(nid[j]), "rcid": rcid, "field": field, "tblid": int(rank[j] % 100),
            "ra": ra if det else None, "dec": dec if det else None,
            "magpsf": float(mag[j]) if det else None, "sigmapsf": float(sig[j]) if det else None,
            "ranr": ra if det else None, "decnr": dec if det else None,
            "magzpsci": 26.2, "rbversion": "t17_f5_c3",
        }
        if full:
            n_det = int(detected[: j + 1].sum())
            first_det = int(np.flatnonzero(detected)[0])
            d.update({
                "isdiffpos": str(sign[j]), "ra": ra, "dec": dec, "ranr": ra, "decnr": dec,
                "magpsf": float(mag[j]), "sigmapsf": float(sig[j]), "candid": int(candid[j]),
                "ndethist": n_det, "ncovhist": int(j + 1),
                "jdstarthist": float(jd[first_det]), "jdendhist": float(jd[j]),
                "nmtchps": 5, "rfid": field * 10**6 + 120 + rcid,
                "jdstartref": float(jd[0] - 400.0), "jdendref": float(jd[0] - 300.0),
                "nframesref": 20, "nmatches": 300, "drbversion": "d6_m7", "tooflag": 0,
                "exptime": 30.0,
                "rb": None if rows is None else rows.rb[a],
                "drb": None if rows is None else rows.drb[a],
            })
        return d

    candidate = {f["name"]: None for f in _avro_fields(_CANDIDATE_FIELDS)}
    candidate.update(entry(cand_i, True))
    window = np.arange(cand_i)
    if history_days is not None:
        window = window[t[window] >= t[cand_i] - history_days]
    prv_template = {f["name"]: None for f in _avro_fields(_PRV_FIELDS)}
    prv = [{**prv_template, **entry(int(j), False)} for j in window]
    cand_id = int(candid[cand_i])
    alert: dict[str, Any] = {
        "schemavsn": _SCHEMA_VERSION, "publisher": "ZTF (www.ztf.caltech.edu)",
        "objectId": oid, "candid": cand_id, "candidate": candidate,
        "prv_candidates": prv or None,
        "cutoutScience": None, "cutoutTemplate": None, "cutoutDifference": None,
    }
    if rows is not None:
        p = int(pid[cand_i])
        for key, name, suffix in (("cutoutScience", "science", f"_pid{p}_targ_sci"),
                                  ("cutoutTemplate", "reference", "_ref"),
                                  ("cutoutDifference", "difference", f"_pid{p}_targ_scimref")):
            alert[key] = {"fileName": f"candid{cand_id}{suffix}.fits.gz",
                          "stampData": _cutout_bytes(rows.images[name][a])}
    return alert, cand_id
