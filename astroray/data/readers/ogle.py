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
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import numpy as np

from astroray.data import _io
from astroray.data.labels import OGLE_ID
from astroray.data.readers._common import clean_light_curve, light_curve_record, sentinel_points
from astroray.data.registry import FileHead, ReadFailure, ReadOptions, ReadUnit, register_reader

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
    name = _io.basename(path)
    match = _NAME.match(name)
    if match:
        return match["band"], match["oid"]
    folder = _BAND_FOLDER.match(_io.basename(_io.dirname(path)))
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
    folder = _io.dirname(path)
    if _BAND_FOLDER.match(_io.basename(folder)) and not _NAME.match(_io.basename(path)):
        folder = _io.dirname(folder)  # phot/I/X.dat and phot/V/X.dat: one star
    return f"{folder}/{oid}"


def _parse(path: str) -> np.ndarray:
    """The (N, 3) time / mag / err array of one file (``#`` lines are comments)."""
    text = _io.read_bytes(path).decode("ascii", "replace")
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
    object_id = found[1] if found else _io.basename(unit.paths[0]).split(".", 1)[0]
    parts = []
    for path in unit.paths:
        name = _io.basename(path)
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
