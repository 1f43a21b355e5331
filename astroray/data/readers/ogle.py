"""OGLE-III / OGLE-IV photometry: one ``.dat`` text file per star and band.

The OGLE Collection of Variable Stars (OCVS; Udalski et al. 2008, AcA 58, 69 for OGLE-III;
Udalski et al. 2015, AcA 65, 1 for OGLE-IV) serves each star's light curve as plain text, one
observation per line: ``HJD-2450000  mag  err`` (three whitespace-separated columns; I-band
and V-band magnitudes in the standard Cousins I / Johnson V system). Two layouts of the files
are read:

* ``<ID>.<band>.dat`` (``OGLE-LMC-CEP-0002.I.dat``, ``OGLE-LMC-CEP-0002.V.dat``), side by side;
* the archive tree ``phot/I/<ID>.dat`` and ``phot/V/<ID>.dat`` (the band is the folder).

The band files of one star are read together into one light curve (object id ``<ID>``).
Times are converted to MJD: ``HJD - 2400000.5``, i.e. ``t + 49999.5`` for ``HJD-2450000``;
full HJDs (above 2,000,000) are also accepted. The heliocentric correction is kept (the time
scale is HJD, ``meta.time_system``). Points that are not finite, or carry the ``99.999`` /
``9.999`` missing-value sentinels (the fill values of
:func:`~astroray.data.readers._common.sentinel_points`: ``|mag| >= 90`` or error >= 9.9), are
dropped and counted. The field and variability type
encoded in OGLE ids (``OGLE-LMC-CEP-0002``: LMC, CEP) go to ``meta``.

Labels, periods and positions come from the catalogue files beside the photometry (OGLE's
``ident.dat`` and ``cepF.dat``-style parameter files, or any CSV / whitespace table with an
``ID`` column), through :mod:`astroray.data.labels`.

:func:`write_ogle`, registered beside the reader, writes the format (synthetic surveys, tests).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from astroray.data import fileio
from astroray.data.formats import (
    FileHead,
    ReadFailure,
    ReadOptions,
    ReadUnit,
    register_reader,
    register_writer,
)
from astroray.data.labels import OGLE_ID
from astroray.data.readers._common import clean_light_curve, light_curve_record, sentinel_points
from astroray.data.readers._writing import (
    _LABELS,
    Tables,
    _as_magnitudes,
    _check_bands,
    _csv_lines,
    _Curves,
    _curves,
    _fixed,
    _folder,
    _id_numbers,
    _sky_position,
    _tables,
    _UniqueIds,
    _write_label_table,
)

#: HJD - 2450000 -> MJD.
HJD2450000_TO_MJD = 2450000.0 - 2400000.5
_FULL_JD = 2_000_000.0
#: HJD-2450000 of OGLE-I..IV data lies in (-3000, 30000); anything else is not this time base.
_SHORT_JD_MAX = 30_000.0
_BANDS = ("I", "V")
_NAME = re.compile(r"^(?P<oid>.+)\.(?P<band>[IV])\.dat$")
_BAND_FOLDER = re.compile(r"^(?:phot_?)?(?P<band>[IV])$")


def _band_and_id(path: str) -> tuple[str, str] | None:
    """(band, object id) from the file name or its band folder; None when neither tells."""
    name = fileio.basename(path)
    match = _NAME.match(name)
    if match:
        return match["band"], match["oid"]
    folder = _BAND_FOLDER.match(fileio.basename(fileio.dirname(path)))
    if folder and name.endswith(".dat"):
        return folder["band"], name[: -len(".dat")]
    return None


def _looks_numeric(line: str) -> bool:
    parts = line.split()
    if len(parts) < 3:
        return False
    try:
        [float(p) for p in parts[:3]]
    except ValueError:
        return False
    return True


def _sniff(fh: FileHead) -> bool:
    found = _band_and_id(fh.path)
    if found is None:
        return False
    _, oid = found
    # An OGLE id, or any name with the band suffix whose first line is three numbers.
    return OGLE_ID.match(oid) is not None or _looks_numeric(fh.first_line)


def _unit_key(path: str) -> str:
    found = _band_and_id(path)
    if found is None:
        return path
    _, oid = found
    folder = fileio.dirname(path)
    if _BAND_FOLDER.match(fileio.basename(folder)) and not _NAME.match(fileio.basename(path)):
        folder = fileio.dirname(folder)  # phot/I/X.dat and phot/V/X.dat: one star
    return f"{folder}/{oid}"


def _parse(path: str) -> np.ndarray:
    """The (N, 3) time / mag / err array of one file (``#`` lines are comments)."""
    text = fileio.read_bytes(path).decode("ascii", "replace")
    body = "\n".join(ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))
    if not body:
        return np.empty((0, 3))
    try:
        data = np.loadtxt(io.StringIO(body), dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"expected whitespace columns 'HJD-2450000 mag err': {exc}") from None
    if data.shape[1] < 3:
        raise ValueError(f"expected 3 columns (HJD-2450000 mag err), found {data.shape[1]}")
    return data[:, :3]


def to_mjd(t: np.ndarray) -> np.ndarray:
    """OGLE times (HJD-2450000, or full HJD) as MJD.

    Raises:
        ValueError: when the finite times are neither form.
    """
    finite = t[np.isfinite(t)]
    if finite.size and np.all(finite > _FULL_JD):
        return t - 2400000.5
    if finite.size and np.any(np.abs(finite) >= _SHORT_JD_MAX):
        raise ValueError(f"times {finite.min():g}..{finite.max():g} are neither HJD-2450000 "
                         "nor HJD")
    return t + HJD2450000_TO_MJD


@register_reader(
    "ogle",
    kinds=("lightcurve",),
    sniff=_sniff,
    unit_key=_unit_key,
    description="OGLE-III/IV photometry .dat (HJD-2450000 mag err), I and V of a star merged",
)
def read_ogle(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read the band files of one OGLE star into one light curve."""
    found = _band_and_id(unit.paths[0])
    object_id = found[1] if found else fileio.basename(unit.paths[0]).split(".", 1)[0]
    parts = []
    for path in unit.paths:
        name = fileio.basename(path)
        band = (_band_and_id(path) or ("?", object_id))[0]
        try:
            data = _parse(path)
            time = to_mjd(data[:, 0])
        except ValueError as exc:
            yield ReadFailure(path, object_id, f"{name}: malformed OGLE photometry: {exc}")
            return
        parts.append((band, time, data))
    time = np.concatenate([t for _, t, _ in parts])
    mag = np.concatenate([d[:, 1] for _, _, d in parts])
    err = np.concatenate([d[:, 2] for _, _, d in parts])
    band = np.concatenate([np.full(len(d), b) for b, _, d in parts])
    invalid = sentinel_points(mag, err, is_flux=False)
    cols, dropped = clean_light_curve(time, mag, err, band, invalid=invalid)
    meta: dict = {"value_unit": "mag", "mag_system": "OGLE standard (Cousins I, Johnson V)",
                  "time_system": "HJD", "bands": sorted({b for b, _, _ in parts})}
    match = OGLE_ID.match(object_id)
    if match:
        meta.update({"ogle_field": match["field"], "ogle_type": match["type"]})
    yield light_curve_record(object_id=object_id, survey=options.survey or "ogle",
                             source=unit.paths[0], cols=cols, n_dropped=dropped, is_flux=False,
                             meta=meta)


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


_OGLE_BANDS = ("I", "V")


_OGLE_ID = re.compile(r"^OGLE-[A-Z0-9]+-[A-Z0-9]+-\d+$")


#: Canonical class -> OGLE variability type (the id's third part) and ident.dat mode.
_OGLE_CLASS = {"DCEP_F": ("CEP", "F"), "DCEP_1O": ("CEP", "1O"), "DCEP": ("CEP", ""),
               "ACEP": ("ACEP", ""), "T2CEP": ("T2CEP", ""), "RRab": ("RRLYR", "RRab"),
               "RRc": ("RRLYR", "RRc"), "RRd": ("RRLYR", "RRd"), "RRL": ("RRLYR", ""),
               "EB": ("ECL", ""), "LPV": ("LPV", ""), "DSCT": ("DSCT", "")}


_HJD2450000_TO_MJD = 2450000.0 - 2400000.5


@register_writer("ogle", kinds=("lightcurve",), bands=_OGLE_BANDS)
def write_ogle(table: Tables, out_dir: str | Path, *, field: str = "LMC") -> list[str]:
    """OGLE-III/IV photometry: ``<ID>.I.dat`` and ``<ID>.V.dat`` per star, and catalogues.

    Each file holds one observation per line, ``HJD-2450000 mag err`` (5, 3 and 3 decimals,
    space separated), as the OGLE Collection of Variable Stars serves them; MJD become
    HJD-2450000 (``MJD - 49999.5``; the heliocentric correction is not modelled). Ids of the
    form ``OGLE-<FIELD>-<TYPE>-<N>`` are kept; others become ``OGLE-<field>-<TYPE>-<NNNNN>``
    with the OGLE variability type of the label (``CEP`` for ``DCEP_F``, ``RRLYR`` for
    ``RRab``, ``ECL`` for ``EB``, ``VAR`` for classes OGLE has no type for). ``ident.dat``
    lists ``ID Mode RA Dec`` (OGLE's catalogue layout: mode ``F``/``1O`` for Cepheids, the
    RR Lyrae subtype, blank otherwise; sexagesimal J2000 positions from ``ra``/``dec`` or a
    deterministic LMC position), and ``labels.csv`` (``object_id,label,period,synthetic_id``)
    the labels, periods and original ids. Light curves in nJy are written as AB magnitudes.
    Read back by the ``ogle`` reader (:mod:`astroray.data.readers.ogle`), which merges the
    band files of a star; the catalogues join through :mod:`astroray.data.labels`.

    Raises:
        ValueError: for bands other than I and V.

    Returns:
        The paths written (light curves, then ``ident.dat`` and ``labels.csv``).
    """
    from astropy import units as u  # lazy: astropy
    from astropy.coordinates import Angle  # lazy: astropy

    out = _folder(out_dir)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    idents: list[tuple[str, str, float, float]] = []
    used = _UniqueIds("write_ogle")
    first_row = 0
    for chunk in _tables(table):
        c = _curves(chunk)
        _check_bands(c, _OGLE_BANDS, "write_ogle", "OGLE photometry")
        mag, err, usable = _as_magnitudes(c)
        numbers = _id_numbers(c.ids, first_row)
        first_row += len(c.ids)
        order, groups = _groups_by_object_band(c, usable)
        data, starts = _csv_lines({"t": _fixed(c.time[order] - _HJD2450000_TO_MJD, 5),
                                   "m": _fixed(mag[order], 3), "e": _fixed(err[order], 3)},
                                  delimiter=" ")
        for i, oid in enumerate(c.ids):
            vartype, mode = _OGLE_CLASS.get(c.labels[i] or "", ("VAR", ""))
            ogle_id = (oid if _OGLE_ID.match(oid)
                       else f"OGLE-{field}-{vartype}-{int(numbers[i]):05d}")
            used.add(ogle_id, oid)
            for bc, a, b in groups.get(i, []):
                path = out / f"{ogle_id}.{c.band_names[bc]}.dat"
                path.write_bytes(data[int(starts[a]):int(starts[b])])
                paths.append(str(path))
            ra, dec = _sky_position(int(numbers[i]), c.metas[i])
            idents.append((ogle_id, mode, ra, dec))
            labels.append({"object_id": ogle_id, "label": c.labels[i],
                           "period": c.metas[i].get("period"),
                           "synthetic_id": None if ogle_id == oid else oid})
    if idents:
        ra_text = Angle([r for _, _, r, _ in idents], unit=u.deg).to_string(
            unit=u.hour, sep=":", precision=2, pad=True)
        dec_text = Angle([d for _, _, _, d in idents], unit=u.deg).to_string(
            unit=u.deg, sep=":", precision=1, pad=True, alwayssign=True)
        lines = [f"{oid:<20s} {mode:<5s} {r} {d}\n"
                 for (oid, mode, _, _), r, d in zip(idents, ra_text, dec_text, strict=True)]
        ident = out / "ident.dat"
        ident.write_text("".join(lines), encoding="ascii")
        paths.append(str(ident))
    written = _write_label_table(out / _LABELS, labels,
                                 ["object_id", "label", "period", "synthetic_id"])
    return paths + ([written] if written else [])


def _groups_by_object_band(c: _Curves, keep: np.ndarray) -> tuple[np.ndarray,
                                                                    dict[int, list[tuple]]]:
    """Point order grouped by (object, band), time order kept; and each object's groups.

    Returns:
        (order, groups): the indices of the kept points in that order, and per object the
        ``(band_code, lo, hi)`` slices of ``order`` that hold one band.
    """
    row = c.row
    order = np.lexsort((np.arange(row.size), c.band_codes, row))
    order = order[keep[order]]
    g_row, g_band = row[order], c.band_codes[order]
    boundary = np.flatnonzero(np.r_[True, (g_row[1:] != g_row[:-1])
                                    | (g_band[1:] != g_band[:-1]), True])
    groups: dict[int, list[tuple]] = {}
    if order.size:
        for a, b in zip(boundary[:-1].tolist(), boundary[1:].tolist(), strict=True):
            groups.setdefault(int(g_row[a]), []).append((int(g_band[a]), a, b))
    return order, groups
