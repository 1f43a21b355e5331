"""Synthetic surveys: seeded, vectorised generators of canonical tables, and survey writers.

Each generator returns a :mod:`pyarrow` table in the canonical schema of
:mod:`astroray.data.schema`, realistic enough to train and test the methods of the design
notes when no real release is at hand:

* :func:`periodic_variables`: MACHO/OGLE/ATLAS-like light curves of Cepheids (fundamental and
  first overtone), RR Lyrae (ab and c), eclipsing binaries and long-period variables, with
  survey cadences (seasons, nightly jitter, band drop-outs) and magnitude-dependent errors;
* :func:`transients`: multi-band SN Ia / II / Ibc light curves in nJy at cosmological distances;
* :func:`spectra`: SDSS-like STAR / GALAXY / QSO spectra with lines, sky and masks;
* :func:`stamps`: real/bogus science, reference and difference cutouts from two surveys whose
  PSF, pixel scale, stamp size and noise differ (a domain shift);
* :func:`sn_spectral_series`: dense, noiseless supernova spectral time series (truth series).

:func:`make_survey` generates a kind in chunks and writes it in a real survey format with the
writers of :mod:`astroray.data._writers`, so that a synthetic catalogue is ingested exactly like
a real one. The same ``seed`` (and ``start``) always gives the same table.

Labels are the canonical class names of :mod:`astroray.data.taxonomy` (``DCEP_F``, ``RRab``,
``SNIa``, ``GALAXY``, ``real``), written to ``label`` and ``label_raw`` alike: the generator is
the source, and it spells its classes canonically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astroray.config import Config, check
from astroray.data.readers._common import NJY_ZEROPOINT as _NJY_ZEROPOINT
from astroray.data.schema import LIGHT_CURVE_SCHEMA, SPECTRUM_SCHEMA, STAMP_SCHEMA

__all__ = [
    "PERIODIC_CLASSES",
    "SPECTRUM_CLASSES",
    "SURVEY_FORMATS",
    "SyntheticSurveyConfig",
    "TRANSIENT_CLASSES",
    "DONE",
    "generate_survey",
    "make_survey",
    "periodic_variables",
    "sn_spectral_series",
    "spectra",
    "stamps",
    "transients",
]

PERIODIC_CLASSES = ("DCEP_F", "DCEP_1O", "RRab", "RRc", "EB", "LPV")
TRANSIENT_CLASSES = ("SNIa", "SNII", "SNIbc")
SPECTRUM_CLASSES = ("STAR", "GALAXY", "QSO")

#: Formats (reader names) each synthetic kind can be written in.
SURVEY_FORMATS: dict[str, tuple[str, ...]] = {
    "periodic": ("csv", "macho", "ogle", "atlas", "alerce", "elasticc", "ztf_avro", "parquet"),
    "transients": ("csv", "atlas", "alerce", "elasticc", "ztf_avro", "parquet"),
    "spectra": ("sdss", "lamost", "parquet"),
    "sn_series": ("sdss", "lamost", "parquet"),
    "stamps": ("ztf_avro", "parquet"),
}

_C_KMS = 299792.458
_C_AA = 2.99792458e18  # speed of light in Angstrom / s
_SDSS_FLUX_UNIT = "1e-17 erg / (s cm2 Angstrom)"
_SDSS_LOGLAM0 = 3.5797
_SDSS_DLOGLAM = 1e-4
# SDSS spectra of ~3800-4600 pixels, starting up to 40 pixels to the red of the first grid pixel.
_SDSS_GRID = 4640
_HC_K = 1.438777e8  # h c / k in Angstrom Kelvin

# Effective wavelengths (Angstrom) of the bands the generators know; MACHO's blue and red
# channels (440-590 nm, 590-780 nm) differ from Johnson B and Cousins R.
_BAND_WAVELENGTH = {
    "u": 3560.0, "g": 4770.0, "r": 6230.0, "i": 7620.0, "z": 9130.0, "y": 9900.0, "Y": 9900.0,
    "U": 3650.0, "B": 4450.0, "V": 5510.0, "R": 6580.0, "I": 8060.0, "G": 6400.0,
    "c": 5330.0, "o": 6790.0,
}
_SURVEY_BAND_WAVELENGTH = {"macho": {"B": 5150.0, "R": 6850.0}}


def _rng(seed: int, start: int) -> np.random.Generator:
    # start > 0 (a later chunk of a chunked survey) gets its own independent stream.
    return np.random.default_rng(seed if start == 0 else (seed, start))


def _band_wavelengths(bands: Sequence[str], survey: str) -> np.ndarray:
    table = {**_BAND_WAVELENGTH, **_SURVEY_BAND_WAVELENGTH.get(survey, {})}
    unknown = [b for b in bands if b not in table]
    if unknown:
        raise ValueError(f"bands: unknown band(s) {unknown}; known: {sorted(table)}")
    return np.array([table[b] for b in bands], dtype=np.float64)


def _class_indices(rng: np.random.Generator, n: int, classes: Sequence[str],
                   fractions: Mapping[str, float] | None) -> np.ndarray:
    """Class index per object: exact counts for the fractions (balanced by default), shuffled."""
    if fractions is None:
        weights = np.ones(len(classes))
    else:
        unknown = sorted(set(fractions) - set(classes))
        if unknown:
            raise ValueError(f"class_fractions: unknown class(es) {unknown}; known: {classes}")
        weights = np.array([float(fractions.get(c, 0.0)) for c in classes])
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(f"class_fractions: need non-negative weights with a positive sum, "
                             f"got {dict(fractions)}")
    expected = n * weights / weights.sum()
    counts = np.floor(expected).astype(int)
    # Largest remainders get the objects left over, so the counts always sum to n.
    counts[np.argsort(-(expected - counts), kind="stable")[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(classes)), counts))


def _loguniform(rng: np.random.Generator, lo: float, hi: float, size: Any) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _ids(prefix: str, start: int, n: int, width: int = 6) -> list[str]:
    return [f"{prefix}-{i:0{width}d}" for i in range(start, start + n)]


def _check_n(n: int, start: int) -> None:
    if not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(start, int | np.integer) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")


def _offsets(counts: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.array(offsets, type=pa.int32())


def _list(values: np.ndarray, offsets: pa.Array, value_type: pa.DataType) -> pa.ListArray:
    return pa.ListArray.from_arrays(offsets, pa.array(values, type=value_type))


def _meta_column(metas: Sequence[Mapping[str, Any]]) -> pa.Array:
    return pa.array([json.dumps(m, separators=(",", ":"), allow_nan=False) for m in metas],
                    type=pa.string())


def _round(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


def _light_curve_table(
    object_ids: Sequence[str], survey: str, counts: np.ndarray, time: np.ndarray,
    band_codes: np.ndarray, band_names: Sequence[str], values: np.ndarray, err: np.ndarray, *,
    is_flux: bool, labels: Sequence[str | None], redshift: np.ndarray | None,
    metas: Sequence[Mapping[str, Any]], period: np.ndarray | None = None,
) -> pa.Table:
    """A canonical light-curve table from flat per-point arrays (object-major, time-sorted)."""
    n = len(object_ids)
    offsets = _offsets(counts)
    bands = pa.DictionaryArray.from_arrays(
        pa.array(band_codes.astype(np.int32)), pa.array(list(band_names), type=pa.string())
    ).cast(pa.string())
    value_list = _list(values.astype(np.float32), offsets, pa.float32())
    null_list = pa.nulls(n, type=pa.list_(pa.float32()))
    columns = {
        "object_id": pa.array(list(object_ids), type=pa.string()),
        "survey": pa.array([survey] * n, type=pa.string()),
        "source": pa.nulls(n, type=pa.string()),
        "time": _list(time.astype(np.float64), offsets, pa.float64()),
        "band": pa.ListArray.from_arrays(offsets, bands),
        "mag": null_list if is_flux else value_list,
        "flux": value_list if is_flux else null_list,
        "err": _list(err.astype(np.float32), offsets, pa.float32()),
        "label": pa.array(list(labels), type=pa.string()),
        "label_raw": pa.array(list(labels), type=pa.string()),
        "redshift": (pa.nulls(n, type=pa.float64()) if redshift is None
                     else pa.array(redshift, type=pa.float64())),
        "period": (pa.nulls(n, type=pa.float64()) if period is None
                   else pa.array(period, type=pa.float64())),
        "n_dropped": pa.array(np.zeros(n, dtype=np.int32)),
        "meta": _meta_column(metas),
    }
    return _table(columns, LIGHT_CURVE_SCHEMA, n)


def _table(columns: Mapping[str, pa.Array], schema: pa.Schema, n: int) -> pa.Table:
    """A canonical table from named columns; the schema's other (optional) columns are null."""
    return pa.Table.from_arrays([columns[f.name] if f.name in columns else pa.nulls(n, f.type)
                                 for f in schema], schema=schema)


def _spectrum_table(
    object_ids: Sequence[str], survey: str, counts: np.ndarray, wavelength: np.ndarray,
    flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray, *, z: np.ndarray, z_err: np.ndarray,
    labels: Sequence[str | None], subclasses: Sequence[str | None],
    metas: Sequence[Mapping[str, Any]],
) -> pa.Table:
    """A canonical spectrum table from flat per-pixel arrays (object-major)."""
    n = len(object_ids)
    offsets = _offsets(counts)
    columns = {
        "object_id": pa.array(list(object_ids), type=pa.string()),
        "survey": pa.array([survey] * n, type=pa.string()),
        "source": pa.nulls(n, type=pa.string()),
        "wavelength": _list(wavelength.astype(np.float32), offsets, pa.float32()),
        "flux": _list(flux.astype(np.float32), offsets, pa.float32()),
        "ivar": _list(ivar.astype(np.float32), offsets, pa.float32()),
        "mask": _list(mask.astype(np.int32), offsets, pa.int32()),
        "z": pa.array(np.asarray(z, dtype=np.float64)),
        "z_err": pa.array(np.asarray(z_err, dtype=np.float64)),
        "label": pa.array(list(labels), type=pa.string()),
        "label_raw": pa.array(list(labels), type=pa.string()),
        "subclass": pa.array(list(subclasses), type=pa.string()),
        "n_bad": pa.array(np.zeros(n, dtype=np.int32)),
        "meta": _meta_column(metas),
    }
    return _table(columns, SPECTRUM_SCHEMA, n)


def _chunked(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def _interp_rows(x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of each row of ``grid`` (n, L) at fractional indices ``x`` (n, N)."""
    length = grid.shape[1]
    i0 = np.clip(np.floor(x).astype(np.int64), 0, length - 2)
    w = np.clip(x - i0, 0.0, 1.0)
    rows = np.arange(grid.shape[0])[:, None]
    return grid[rows, i0] * (1.0 - w) + grid[rows, i0 + 1] * w


def _smooth_noise(rng: np.random.Generator, n: int, length: int, width: float) -> np.ndarray:
    """Unit-variance Gaussian noise correlated over ``width`` samples, shape (n, length)."""
    from scipy.ndimage import gaussian_filter1d

    noise = gaussian_filter1d(rng.standard_normal((n, length)), sigma=max(width, 0.5), axis=1,
                              mode="wrap")
    return noise / np.maximum(noise.std(axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------------------------
# Periodic variables
# --------------------------------------------------------------------------------------------

# Per class: period range (days), peak-to-peak V amplitude range (mag), number of harmonics,
# the rising fraction of the cycle of the underlying light-curve shape (0.15: RRab's fast rise;
# 0.5: symmetric), the scatter added to the Fourier amplitude ratios R_k1 (relative) and phase
# differences phi_k1 (radians), B-V colour at mean light, and the power of the
# amplitude-wavelength law A(lambda) ~ lambda^-alpha.
_PULSATORS: dict[str, dict[str, Any]] = {
    "DCEP_F": dict(period=(2.0, 50.0), amp=(0.3, 1.0), nharm=5, rise=(0.25, 0.4),
                  ratio_scatter=0.15, phase_scatter=0.25, colour=(0.5, 0.9), alpha=(0.9, 1.3)),
    "DCEP_1O": dict(period=(0.5, 6.0), amp=(0.1, 0.45), nharm=3, rise=(0.4, 0.5),
                  ratio_scatter=0.3, phase_scatter=0.4, colour=(0.4, 0.7), alpha=(0.9, 1.3)),
    "RRab": dict(period=(0.45, 0.9), amp=(0.5, 1.2), nharm=6, rise=(0.12, 0.22),
                 ratio_scatter=0.1, phase_scatter=0.15, colour=(0.25, 0.45), alpha=(0.8, 1.2)),
    "RRc": dict(period=(0.2, 0.45), amp=(0.2, 0.5), nharm=3, rise=(0.35, 0.5),
                ratio_scatter=0.3, phase_scatter=0.4, colour=(0.15, 0.3), alpha=(0.8, 1.2)),
    "LPV": dict(period=(80.0, 1000.0), amp=(1.0, 5.0), nharm=2, rise=(0.35, 0.5),
                ratio_scatter=0.3, phase_scatter=0.4, colour=(1.3, 1.8), alpha=(1.5, 2.5)),
}
_EB = dict(period=(0.3, 10.0), depth=(0.2, 1.0), colour=(-0.2, 0.9))

# Survey presets for periodic variables. distance: "lmc" (distance modulus 18.48 with a depth
# scatter) or a range of mean V magnitudes for field stars; mag_offset is subtracted from
# calibrated magnitudes to give the survey's native scale (MACHO instrumental magnitudes are
# roughly V - 24); errors follow sigma^2 = floor^2 + sigma_m0^2 10^(0.4 (m - m0)).
_PERIODIC_SURVEYS: dict[str, dict[str, Any]] = {
    "macho": dict(distance="lmc", mag_offset=24.0, n_points=(100, 1000), baseline=(4.0, 7.5),
                  season=(180.0, 240.0), start=(48800.0, 49300.0), night=0.58,
                  simultaneous=True, keep={"B": (0.85, 1.0), "R": (0.5, 0.95)}, floor=0.01,
                  m0=20.0, sigma_m0=0.25),
    "ogle": dict(distance="lmc", mag_offset=0.0, n_points=(100, 600), baseline=(3.0, 8.0),
                 season=(200.0, 240.0), start=(50600.0, 51200.0), night=0.15,
                 simultaneous=False, keep={"I": 0.9, "V": 0.1}, floor=0.005, m0=20.5,
                 sigma_m0=0.15),
    "ztf": dict(distance=(13.0, 19.0), mag_offset=0.0, n_points=(40, 400), baseline=(1.0, 5.0),
                season=(180.0, 270.0), start=(58200.0, 58700.0), night=0.3,
                simultaneous=False, keep={"g": 0.45, "r": 0.5, "i": 0.05}, floor=0.01,
                m0=20.5, sigma_m0=0.2),
    # ATLAS: all-sky field stars to ~19 mag every other night in cyan or orange (Tonry et al.
    # 2018), on 0.5-m telescopes, so brighter errors at a given magnitude than ZTF.
    "atlas": dict(distance=(12.0, 18.0), mag_offset=0.0, n_points=(100, 800),
                  baseline=(2.0, 6.0), season=(200.0, 280.0), start=(57300.0, 58300.0),
                  night=0.4, simultaneous=False, keep={"c": 0.35, "o": 0.65}, floor=0.01,
                  m0=19.0, sigma_m0=0.15),
}
_GENERIC_PERIODIC = dict(distance=(13.0, 19.0), mag_offset=0.0, n_points=(100, 500),
                         baseline=(2.0, 6.0), season=(180.0, 240.0), start=(55000.0, 56000.0),
                         night=0.3, simultaneous=False, keep={}, floor=0.01, m0=20.5,
                         sigma_m0=0.2)
_PHASE_GRID = 256


def _periodic_preset(survey: str) -> dict[str, Any]:
    return dict(_PERIODIC_SURVEYS.get(survey.lower(), _GENERIC_PERIODIC))


def _colour_coefficient(wave: np.ndarray) -> np.ndarray:
    """m(lambda) - V in units of B-V (linear in 1/lambda): 1 at 4400 A, 0 at 5500 A."""
    return (1e4 / wave - 1e4 / 5500.0) / (1e4 / 4400.0 - 1e4 / 5500.0)


def _absolute_v(rng: np.random.Generator, cls: str, period: np.ndarray) -> np.ndarray:
    n = period.size
    if cls in ("DCEP_F", "DCEP_1O"):
        # Period-luminosity relation; first-overtone periods are fundamentalised (P1/P0 ~ 0.71).
        p0 = period / 0.71 if cls == "DCEP_1O" else period
        return -2.43 * (np.log10(p0) - 1.0) - 4.05 + rng.normal(0.0, 0.12, n)
    if cls in ("RRab", "RRc"):
        return rng.normal(0.6, 0.12, n)
    if cls == "EB":
        return rng.uniform(-2.5, 1.5, n)
    return rng.uniform(-3.0, 0.0, n)  # LPV at mean light


def _pulsator_shape(rng: np.random.Generator, cls: str, period: np.ndarray) -> dict[str, Any]:
    """Fourier amplitudes and phases (n, K) of one class, normalised to unit peak-to-peak.

    The series starts from an asymmetric triangle in brightness (a fast rise over a fraction
    ``rise`` of the cycle, then a slow decline); its amplitude ratios R_k1 and phase
    differences phi_k1 (sine series m = A0 + sum_k A_k sin(2 pi k x + phi_k)) are then
    scattered per object, which keeps each class's R21-phi21 locus but varies the shapes.
    """
    p = _PULSATORS[cls]
    n, nharm = period.size, p["nharm"]
    grid_n = 512
    x = np.arange(grid_n) / grid_n
    rise = rng.uniform(*p["rise"], n)[:, None]
    # Brightness triangle (n, G): up over [0, rise], down over [rise, 1]; magnitude is minus it.
    bright = np.where(x[None, :] < rise, x[None, :] / rise, (1.0 - x[None, :]) / (1.0 - rise))
    coef = np.fft.rfft(-bright, axis=1)[:, 1:nharm + 1]  # (n, K)
    amp = 2.0 * np.abs(coef) / grid_n
    phase = np.angle(coef) + np.pi / 2.0  # cos(t + a) = sin(t + a + pi/2)
    harmonics = np.arange(1, nharm + 1)
    # Shape invariants relative to the first harmonic, scattered per object.
    ratio = amp / amp[:, :1] * np.exp(rng.normal(0.0, p["ratio_scatter"], (n, nharm)))
    phase_k1 = phase - harmonics[None, :] * phase[:, :1]
    phase_k1 = phase_k1 + rng.normal(0.0, p["phase_scatter"], (n, nharm))
    ratio[:, 0], phase_k1[:, 0] = 1.0, 0.0
    if cls == "DCEP_F" and nharm > 1:
        # Hertzsprung progression: the second harmonic almost vanishes near P = 10 d.
        ratio[:, 1] *= 1.0 - 0.7 * np.exp(-0.5 * ((np.log10(period) - 1.0) / 0.08) ** 2)
    # (n, G, K): each harmonic of each object on the phase grid, to measure the peak-to-peak.
    grid = np.arange(_PHASE_GRID) / _PHASE_GRID
    template = (ratio[:, None, :] * np.sin(2 * np.pi * harmonics * grid[None, :, None]
                                           + phase_k1[:, None, :])).sum(axis=2)
    scale = 1.0 / np.ptp(template, axis=1)
    return {"ratio": ratio * scale[:, None], "phase": phase_k1, "harmonics": harmonics,
            "r21": ratio[:, 1] if nharm > 1 else np.zeros(n),
            "phi21": np.mod(phase_k1[:, 1], 2 * np.pi) if nharm > 1 else np.zeros(n)}


def _fourier(shape: Mapping[str, Any], phase: np.ndarray) -> np.ndarray:
    """Evaluate a unit-ptp Fourier template at phases (n, N) in cycles."""
    out = np.zeros_like(phase)
    for k in range(len(shape["harmonics"])):
        kk = shape["harmonics"][k]
        out += shape["ratio"][:, k, None] * np.sin(2 * np.pi * kk * phase
                                                   + shape["phase"][:, k, None])
    return out


def _eclipses(x: np.ndarray, params: Mapping[str, np.ndarray], depth1: np.ndarray,
              depth2: np.ndarray) -> np.ndarray:
    """Magnitude excursion of an eclipsing binary at phases x (n, N)."""
    d1 = np.mod(x + 0.5, 1.0) - 0.5
    d2 = np.mod(x - params["secondary"][:, None], 1.0) - 0.5
    w, kappa = params["width"][:, None], params["kappa"][:, None]
    ecl = (depth1[:, None] * np.exp(-np.abs(d1 / w) ** kappa)
           + depth2[:, None] * np.exp(-np.abs(d2 / w) ** kappa))
    return ecl + params["ellipsoidal"][:, None] * 0.5 * (1.0 + np.cos(4 * np.pi * x))


def periodic_variables(
    n: int,
    *,
    seed: int = 0,
    bands: Sequence[str] = ("B", "R"),
    survey: str = "macho",
    class_fractions: Mapping[str, float] | None = None,
    n_points: tuple[int, int] | None = None,
    outlier_fraction: float = 0.003,
    start: int = 0,
) -> pa.Table:
    """Light curves of periodic variables (magnitudes), labelled with the MACHO/OGLE classes.

    Classes (canonical names; MACHO's ``Cep_0``/``Cep_1``): ``DCEP_F`` (classical Cepheids,
    fundamental mode, P 2-50 d, sawtooth), ``DCEP_1O`` (first overtone, P 0.5-6 d,
    near-sinusoidal), ``RRab`` (P 0.45-0.9 d, fast rise), ``RRc``
    (P 0.2-0.45 d, near-sinusoidal), ``EB`` (eclipsing binaries, P 0.3-10 d, two eclipses of
    different depths, flat or ellipsoidal outside eclipse) and ``LPV`` (P 80-1000 d, 1-5 mag,
    cycle-to-cycle changes and red noise). Shapes are Fourier series with class-dependent
    amplitude ratios and phase differences; amplitudes fall and mean magnitudes change with
    wavelength per band. Cadence: several observing seasons of 6-8 months, nightly jitter,
    per-object point counts and band-specific drop-outs (MACHO observes B and R at once);
    errors grow with magnitude and a few points are outliers.

    Args:
        n: number of objects.
        seed: random seed.
        bands: band names (effective wavelengths from a built-in table).
        survey: ``macho`` (LMC, instrumental magnitudes ~ V - 24), ``ogle`` (LMC, I and V),
            ``ztf`` (field stars, g and r), ``atlas`` (field stars, c and o) or any other name
            (field stars, generic cadence).
        class_fractions: relative class weights (default balanced; exact counts).
        n_points: (min, max) observation epochs per object, drawn log-uniformly; default from
            the survey preset (100-1000 for MACHO).
        outlier_fraction: fraction of points offset by 0.3-2 mag (bad photometry).
        start: index of the first object (ids and random stream), for chunked generation.

    Returns:
        A canonical light-curve table (``mag`` filled) with labels and ``meta`` holding
        ``period``, ``mean_mag`` and ``amplitude`` (first band), per-band ``mean_mags`` and
        ``amplitudes``, and the magnitude system.
    """
    _check_n(n, start)
    rng = _rng(seed, start)
    preset = _periodic_preset(survey)
    waves = _band_wavelengths(bands, survey.lower())
    lo, hi = n_points if n_points is not None else preset["n_points"]
    if not 1 <= lo <= hi:
        raise ValueError(f"n_points must be (min, max) with 1 <= min <= max, got {n_points}")
    if not 0.0 <= outlier_fraction < 0.5:
        raise ValueError(f"outlier_fraction must be in [0, 0.5), got {outlier_fraction}")
    cls_idx = _class_indices(rng, n, PERIODIC_CLASSES, class_fractions)
    ids = _ids(f"syn-{survey.lower()}", start, n)
    tables = [_periodic_chunk(rng, cls_idx[a:b], ids[a:b], list(bands), waves, survey.lower(),
                              preset, (lo, hi), outlier_fraction)
              for a, b in _chunked(n, 512)]
    if not tables:
        return LIGHT_CURVE_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _periodic_chunk(rng: np.random.Generator, cls_idx: np.ndarray, ids: list[str],
                    bands: list[str], waves: np.ndarray, survey: str, preset: dict[str, Any],
                    n_points: tuple[int, int], outlier_fraction: float) -> pa.Table:
    n, nb = cls_idx.size, len(bands)
    # ---- cadence: seasons, nights, jitter; (n, N) padded with +inf beyond each object's N_i.
    counts = np.rint(_loguniform(rng, n_points[0], n_points[1] + 0.499, n)).astype(int)
    counts = np.clip(counts, n_points[0], n_points[1])
    n_max = int(counts.max())
    baseline = rng.uniform(*preset["baseline"], n) * 365.25
    season = rng.uniform(*preset["season"], n)
    t_start = rng.uniform(*preset["start"], n)
    n_seasons = np.ceil(baseline / 365.25)
    u = rng.random((n, n_max)) * (n_seasons * season)[:, None]
    season_idx = np.floor(u / season[:, None])
    t = t_start[:, None] + season_idx * 365.25 + (u - season_idx * season[:, None])
    t = np.floor(t) + preset["night"] + rng.normal(0.0, 0.08, (n, n_max))
    t = np.where(np.arange(n_max)[None, :] < counts[:, None], t, np.inf)
    t.sort(axis=1)
    epoch_ok = np.isfinite(t)
    # ---- bands observed at each epoch: (n, N, B).
    if preset["simultaneous"]:
        keep_p = np.stack([rng.uniform(*preset["keep"].get(b, (0.7, 0.95)), n) for b in bands],
                          axis=1)  # (n, B)
        observed = rng.random((n, n_max, nb)) < keep_p[:, None, :]
        observed[:, :, 0] |= ~observed.any(axis=2)  # every epoch keeps at least one band
    else:
        weights = np.array([preset["keep"].get(b, 1.0) for b in bands], dtype=np.float64)
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(nb, 1.0 / nb)
        choice = rng.choice(nb, size=(n, n_max), p=weights)
        observed = choice[:, :, None] == np.arange(nb)[None, None, :]
    observed &= epoch_ok[:, :, None]
    # ---- mean magnitudes per band.
    names = np.array(PERIODIC_CLASSES)[cls_idx]
    period = np.empty(n)
    abs_v = np.empty(n)
    colour = np.empty(n)
    for c, cls in enumerate(PERIODIC_CLASSES):
        rows = cls_idx == c
        k = int(rows.sum())
        if not k:
            continue
        prange = _EB["period"] if cls == "EB" else _PULSATORS[cls]["period"]
        period[rows] = _loguniform(rng, *prange, k)
        abs_v[rows] = _absolute_v(rng, cls, period[rows])
        crange = _EB["colour"] if cls == "EB" else _PULSATORS[cls]["colour"]
        colour[rows] = rng.uniform(*crange, k)
    if preset["distance"] == "lmc":
        v_mean = abs_v + 18.48 + rng.normal(0.0, 0.05, n)
    else:
        v_mean = rng.uniform(*preset["distance"], n)
    mean_b = v_mean[:, None] + colour[:, None] * _colour_coefficient(waves)[None, :]  # (n, B)
    t0 = t_start + rng.uniform(0.0, 1.0, n) * period
    cycles = (t - t0[:, None]) / period[:, None]  # (n, N)
    cycles = np.where(epoch_ok, cycles, 0.0)
    delta = np.zeros((n, n_max, nb))  # magnitude excursion around the band's mean
    amp_v = np.zeros(n)
    grid = np.arange(_PHASE_GRID) / _PHASE_GRID
    grid_delta = np.zeros((n, _PHASE_GRID, nb))
    extras: dict[int, dict[str, float]] = {}
    for c, cls in enumerate(PERIODIC_CLASSES):
        rows = np.flatnonzero(cls_idx == c)
        if rows.size == 0:
            continue
        per = period[rows]
        if cls == "EB":
            k = rows.size
            depth1 = rng.uniform(*_EB["depth"], k)
            contact = per < 1.0
            params = {
                "width": np.clip(rng.uniform(0.02, 0.06, k) * per ** (-1.0 / 3.0), 0.015, 0.15),
                "kappa": rng.uniform(1.5, 4.0, k),
                "secondary": 0.5 + np.where(rng.random(k) < 0.3, rng.uniform(-0.02, 0.02, k),
                                            0.0),
                "ellipsoidal": np.where(contact, rng.uniform(0.1, 0.3, k),
                                        rng.uniform(0.0, 0.05, k)),
            }
            ratio2 = np.where(contact, rng.uniform(0.7, 1.0, k), rng.uniform(0.1, 0.9, k))
            slope1 = rng.uniform(-0.2, 0.2, k)
            slope2 = rng.uniform(-0.6, 0.6, k)
            for b in range(nb):
                # Eclipse depths change with wavelength: the secondary by the temperature ratio.
                d1 = depth1 * (waves[b] / 5500.0) ** (-slope1)
                d2 = depth1 * ratio2 * (waves[b] / 5500.0) ** slope2
                ecl = _eclipses(np.mod(cycles[rows], 1.0), params, d1, d2)
                ecl_grid = _eclipses(np.broadcast_to(grid, (k, _PHASE_GRID)), params, d1, d2)
                mean_ecl = ecl_grid.mean(axis=1, keepdims=True)
                delta[rows, :, b] = ecl - mean_ecl
                grid_delta[rows, :, b] = ecl_grid - mean_ecl
            amp_v[rows] = depth1
            continue
        p = _PULSATORS[cls]
        shape = _pulsator_shape(rng, cls, per)
        amp = rng.uniform(*p["amp"], rows.size)
        if cls == "RRab":
            # Bailey diagram: longer-period RRab have smaller amplitudes.
            amp = np.clip(1.25 - 1.6 * (per - 0.45) + rng.normal(0.0, 0.1, rows.size),
                          *p["amp"])
        amp_v[rows] = amp
        alpha = rng.uniform(*p["alpha"], rows.size)
        phase = cycles[rows]
        amp_mod = np.ones_like(phase)
        red = np.zeros_like(phase)
        if cls == "LPV":
            # Cycle-to-cycle changes: the phase wanders (random walk, ~3% of a cycle per
            # cycle), the amplitude is modulated, and a red-noise term adds irregular
            # variability; all three live on a coarse 5-day grid interpolated at the epochs.
            span = np.where(epoch_ok[rows], t[rows], t_start[rows, None]) - t_start[rows, None]
            step = 5.0
            length = int(np.ceil(span.max() / step)) + 2
            xg = span / step
            steps_per_cycle = per / step
            walk = np.cumsum(rng.standard_normal((rows.size, length)), axis=1)
            walk *= 0.03 / np.sqrt(steps_per_cycle)[:, None]
            phase = phase + _interp_rows(xg, walk)
            mod = _smooth_noise(rng, rows.size, length, width=float(np.median(steps_per_cycle)))
            amp_mod = 1.0 + rng.uniform(0.05, 0.2, rows.size)[:, None] * _interp_rows(xg, mod)
            red_scale = rng.uniform(0.05, 0.25, rows.size)[:, None]
            red = red_scale * _interp_rows(xg, _smooth_noise(rng, rows.size, length, width=8.0))
            for r, scale in zip(rows.tolist(), red_scale[:, 0].tolist(), strict=True):
                extras.setdefault(r, {})["red_noise_mag"] = _round(scale, 4)
        for r, r21, phi21 in zip(rows.tolist(), shape["r21"].tolist(), shape["phi21"].tolist(),
                                 strict=True):
            extras.setdefault(r, {}).update({"r21": _round(r21, 4), "phi21": _round(phi21, 4)})
        base = _fourier(shape, phase) * amp_mod  # (k, N), unit ptp
        base_grid = _fourier(shape, np.broadcast_to(grid, (rows.size, _PHASE_GRID)))
        for b in range(nb):
            factor = (amp * (waves[b] / 5500.0) ** (-alpha))[:, None]
            delta[rows, :, b] = factor * base + red
            grid_delta[rows, :, b] = factor * base_grid
    # ---- noise, errors and outliers, in calibrated magnitudes.
    true = mean_b[:, None, :] + delta  # (n, N, B)
    err = np.sqrt(preset["floor"] ** 2 + preset["sigma_m0"] ** 2
                  * 10.0 ** (0.4 * (true - preset["m0"])))
    err *= rng.uniform(0.85, 1.15, err.shape)  # the pipeline's error estimate scatters too
    obs = true + err * rng.standard_normal(err.shape)
    outlier = rng.random(err.shape) < outlier_fraction
    jump = rng.uniform(0.3, 2.0, err.shape) * np.where(rng.random(err.shape) < 0.7, 1.0, -1.0)
    obs = np.where(outlier, obs + jump, obs) - preset["mag_offset"]
    # ---- flatten: nonzero() walks (object, epoch, band) in row-major order, so each object's
    # points come out time-sorted.
    obj, ep, bd = np.nonzero(observed)
    point_counts = np.bincount(obj, minlength=n)
    mean_out = mean_b - preset["mag_offset"]
    amp_band = np.ptp(grid_delta, axis=1)  # (n, B)
    metas = []
    for i in range(n):
        meta = {
            "period": _round(period[i], 8),
            "mean_mag": _round(mean_out[i, 0], 4),
            "amplitude": _round(amp_band[i, 0], 4),
            "ref_band": bands[0],
            "mean_mags": {b: _round(mean_out[i, j], 4) for j, b in enumerate(bands)},
            "amplitudes": {b: _round(amp_band[i, j], 4) for j, b in enumerate(bands)},
            "mag_system": ("MACHO instrumental (approx. V - 24)" if survey == "macho"
                           else "calibrated (Vega-like)"),
            "t0": _round(t0[i], 6),
            "value_unit": "mag",
        }
        meta.update(extras.get(i, {}))
        metas.append(meta)
    return _light_curve_table(
        ids, survey, point_counts, t[obj, ep], bd, bands, obs[obj, ep, bd], err[obj, ep, bd],
        is_flux=False, labels=list(names), redshift=None, metas=metas,
        period=np.array([m["period"] for m in metas], dtype=np.float64))


# --------------------------------------------------------------------------------------------
# Transients
# --------------------------------------------------------------------------------------------

_TRANSIENT_SURVEYS: dict[str, dict[str, Any]] = {
    "ztf": dict(limits={"g": 20.8, "r": 20.6, "i": 20.2}, band_prob={"g": 0.8, "r": 0.9,
                                                                      "i": 0.3},
                cadence=(1.0, 3.0), start=(58300.0, 60300.0),
                z={"SNIa": (0.01, 0.15), "SNII": (0.003, 0.05), "SNIbc": (0.003, 0.06)}),
    "lsst": dict(limits={"u": 23.8, "g": 24.5, "r": 24.0, "i": 23.4, "z": 22.8, "Y": 22.0},
                 band_prob={}, cadence=(2.0, 4.0), start=(60300.0, 61800.0),
                 z={"SNIa": (0.05, 0.9), "SNII": (0.02, 0.35), "SNIbc": (0.02, 0.4)}),
}
_TRANSIENT_SURVEYS["elasticc"] = _TRANSIENT_SURVEYS["lsst"]
# ATLAS: ~19.5 mag limits in c and o, a visit every ~2 nights (Tonry et al. 2018).
_TRANSIENT_SURVEYS["atlas"] = dict(
    limits={"c": 19.7, "o": 19.4}, band_prob={"c": 0.4, "o": 0.7}, cadence=(1.5, 2.5),
    start=(57500.0, 60300.0),
    z={"SNIa": (0.01, 0.1), "SNII": (0.003, 0.03), "SNIbc": (0.003, 0.04)})


def _volume_redshift(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """Redshifts with p(z) ~ z^2 (a uniform volume density at low z)."""
    return (lo ** 3 + rng.random(n) * (hi ** 3 - lo ** 3)) ** (1.0 / 3.0)


def _transient_shape(cls: str, tau: np.ndarray, p: Mapping[str, np.ndarray]) -> np.ndarray:
    """Un-normalised rest-frame flux shape at rest-frame days ``tau`` (n, B, T)."""
    if cls == "SNII":
        rise = 1.0 / (1.0 + np.exp(-(tau + p["rise"]) / p["rise_tau"]))
        after = np.clip(tau, 0.0, None)
        drop = 1.0 / (1.0 + np.exp(-(tau - p["plateau"]) / p["drop_width"]))
        dmag = (p["slope"] * after + p["drop"] * drop
                + 0.0098 * np.clip(tau - p["plateau"], 0.0, None) * drop)
        return rise * 10.0 ** (-0.4 * dmag)
    x = tau - p["t0"]
    # Bazin: exp(-x / tau_fall) / (1 + exp(-x / tau_rise)), written to avoid overflow.
    shape = np.exp(-x / p["fall"] - np.logaddexp(0.0, -x / p["rise"]))
    if cls == "SNIa":
        # Secondary maximum in the red ~4 weeks after peak.
        shape = shape + p["bump"] * np.exp(-0.5 * ((tau - 28.0) / 7.0) ** 2)
    return shape


def transients(
    n: int,
    *,
    seed: int = 0,
    bands: Sequence[str] = ("g", "r", "i"),
    survey: str = "ztf",
    class_fractions: Mapping[str, float] | None = None,
    start: int = 0,
) -> pa.Table:
    """Multi-band supernova light curves in nJy (AB zero point 31.4).

    SN Ia (Bazin rise and fall, a secondary red maximum, Phillips relation), SN II (rise,
    plateau, drop to the radioactive tail) and SN Ibc (faster, redder, fainter) at redshifts
    drawn per class with p(z) ~ z^2 (Ia 0.01-0.15 for ZTF), peak brightness from the absolute
    magnitude and the Planck18 distance modulus, time dilation, colours and decline rates that
    depend on the rest-frame wavelength (so colours evolve), Milky Way extinction, and a ZTF
    (or LSST) cadence of 1-3 nights with weather losses and gaps, pre-explosion epochs
    included. Errors combine sky noise (from a per-epoch 5-sigma limit), source noise and a
    calibration floor, so faint and pre-explosion fluxes can be negative.

    Args:
        n: number of objects.
        seed: random seed.
        bands: band names.
        survey: ``ztf``, ``lsst``/``elasticc``, ``atlas`` or another name (ZTF-like
            defaults).
        class_fractions: relative weights of ``SNIa``, ``SNII``, ``SNIbc`` (default balanced).
        start: index of the first object (ids and random stream), for chunked generation.

    Returns:
        A canonical light-curve table (``flux`` in nJy) with labels, ``redshift``, and ``meta``
        holding ``peak_mjd`` and ``peak_mag`` per band, ``t_peak`` (reference peak MJD),
        ``abs_mag``, ``distmod`` and ``mwebv``.
    """
    _check_n(n, start)
    rng = _rng(seed, start)
    key = survey.lower()
    preset = _TRANSIENT_SURVEYS.get(key, _TRANSIENT_SURVEYS["ztf"])
    waves = _band_wavelengths(bands, key)
    cls_idx = _class_indices(rng, n, TRANSIENT_CLASSES, class_fractions)
    ids = _ids(f"syn-{key}", start, n)
    tables = [_transient_chunk(rng, cls_idx[a:b], ids[a:b], list(bands), waves, key, preset)
              for a, b in _chunked(n, 1024)]
    if not tables:
        return LIGHT_CURVE_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _transient_chunk(rng: np.random.Generator, cls_idx: np.ndarray, ids: list[str],
                     bands: list[str], waves: np.ndarray, survey: str,
                     preset: dict[str, Any]) -> pa.Table:
    from astropy.cosmology import Planck18

    n, nb = cls_idx.size, len(bands)
    names = np.array(TRANSIENT_CLASSES)[cls_idx]
    z = np.empty(n)
    abs_mag = np.empty(n)
    colour = np.empty(n)
    for c, cls in enumerate(TRANSIENT_CLASSES):
        rows = cls_idx == c
        k = int(rows.sum())
        if not k:
            continue
        z[rows] = _volume_redshift(rng, *preset["z"][cls], k)
        if cls == "SNIa":
            colour[rows] = rng.normal(0.0, 0.08, k)
        elif cls == "SNII":
            colour[rows] = rng.uniform(-0.15, 0.2, k)
        else:
            colour[rows] = rng.uniform(0.3, 0.6, k)
    # Distance moduli from a fine grid: Planck18.distmod integrates per value.
    z_grid = np.geomspace(max(z.min(), 1e-4) * 0.999, max(z.max(), 1e-3) * 1.001, 256)
    distmod = np.interp(z, z_grid, Planck18.distmod(z_grid).value)
    rest = waves[None, :] / (1.0 + z[:, None])  # (n, B) rest-frame wavelengths
    params: dict[str, dict[str, np.ndarray]] = {}
    for c, cls in enumerate(TRANSIENT_CLASSES):
        rows = np.flatnonzero(cls_idx == c)
        k = rows.size
        if not k:
            continue
        lam = rest[rows][:, :, None]  # (k, B, 1)
        if cls == "SNIa":
            dm15 = rng.uniform(0.8, 1.6, k)
            abs_mag[rows] = -19.3 + 0.7 * (dm15 - 1.1) + rng.normal(0.0, 0.12, k)
            fall = (16.3 / dm15)[:, None, None] * (lam / 4400.0) ** 0.6
            params[cls] = {"rise": rng.uniform(3.0, 5.0, k)[:, None, None], "fall": fall,
                           "t0": -1.5 * (lam - 4400.0) / 1000.0 - 4.0,
                           "bump": 0.35 * np.clip((lam - 6000.0) / 2000.0, 0.0, 1.0)}
        elif cls == "SNIbc":
            abs_mag[rows] = np.clip(rng.normal(-17.6, 0.8, k), -19.5, -15.5)
            fall = rng.uniform(10.0, 22.0, k)[:, None, None] * (lam / 4400.0) ** 0.5
            params[cls] = {"rise": rng.uniform(3.0, 6.0, k)[:, None, None], "fall": fall,
                           "t0": -5.0 + 0.0 * lam}
        else:
            abs_mag[rows] = np.clip(rng.normal(-16.8, 0.9, k), -19.0, -14.5)
            params[cls] = {
                "rise": rng.uniform(5.0, 10.0, k)[:, None, None],
                "rise_tau": rng.uniform(1.5, 3.0, k)[:, None, None],
                # Blue bands decline faster on the plateau (the photosphere cools).
                "slope": rng.uniform(0.0, 0.02, k)[:, None, None] * (4400.0 / lam) ** 1.5,
                "plateau": rng.uniform(60.0, 110.0, k)[:, None, None],
                "drop": rng.uniform(1.5, 3.0, k)[:, None, None],
                "drop_width": rng.uniform(3.0, 7.0, k)[:, None, None],
            }
    # Peak colour (linear in 1/lambda around rest-frame B), faint rest-frame UV for SN Ia, and
    # Milky Way extinction with R(lambda) ~ 3.1 (5500 / lambda)^1.3.
    kappa = (1e4 / 4400.0 - 1e4 / rest) / (1e4 / 4400.0 - 1e4 / 5500.0)
    uv = np.where(names == "SNIa", 1.0, 0.3)[:, None] * np.clip((4000.0 - rest) / 800.0, 0, 2)
    mwebv = np.minimum(rng.exponential(0.05, n), 0.5)
    extinction = mwebv[:, None] * 3.1 * (5500.0 / waves[None, :]) ** 1.3
    peak_mag = abs_mag[:, None] + distmod[:, None] - colour[:, None] * kappa + uv + extinction
    # ---- peak of each band's shape on a dense rest-frame grid, to normalise it to peak_mag.
    dense = np.linspace(-40.0, 160.0, 801)
    shape_max = np.empty((n, nb))
    shape_peak = np.empty((n, nb))
    for c, cls in enumerate(TRANSIENT_CLASSES):
        rows = np.flatnonzero(cls_idx == c)
        if rows.size:
            s = _transient_shape(cls, np.broadcast_to(dense, (rows.size, nb, dense.size)),
                                 params[cls])
            shape_max[rows] = s.max(axis=2)
            shape_peak[rows] = dense[s.argmax(axis=2)]
    # ---- cadence: nights every `cadence` days from before explosion to months after peak.
    t_ref = rng.uniform(*preset["start"], n)
    pre = rng.uniform(15.0, 45.0, n) * (1.0 + z)
    post = rng.uniform(60.0, 150.0, n) * (1.0 + z)
    cadence = rng.uniform(*preset["cadence"], n)
    n_nights = int(np.ceil(((pre + post) / cadence).max())) + 1
    k = np.arange(n_nights)[None, :]
    night = np.floor(t_ref[:, None] - pre[:, None] + k * cadence[:, None])  # (n, K)
    usable = k * cadence[:, None] <= (pre + post)[:, None]
    usable &= rng.random((n, n_nights)) > rng.uniform(0.1, 0.3, n)[:, None]  # weather
    has_gap = rng.random(n) < 0.3
    gap_start = t_ref - pre + rng.random(n) * (pre + post)
    gap_len = rng.uniform(5.0, 25.0, n)
    in_gap = (night >= gap_start[:, None]) & (night < (gap_start + gap_len)[:, None])
    usable &= ~(in_gap & has_gap[:, None])
    prob = np.array([preset["band_prob"].get(b, 0.7 if not preset["band_prob"] else 0.5)
                     for b in bands])
    if not preset["band_prob"]:
        prob = np.full(nb, 0.35)
    observed = (rng.random((n, n_nights, nb)) < prob[None, None, :]) & usable[:, :, None]
    observed[~observed.any(axis=(1, 2)), 0, 0] = True  # every object keeps at least one point
    # Bands are taken in a fixed order within a night, ~40 minutes apart.
    t_obs = (night[:, :, None] + 0.15 + rng.uniform(0.0, 0.25, (n, n_nights, 1))
             + 0.03 * np.arange(nb)[None, None, :] + rng.uniform(0.0, 0.005, (n, n_nights, nb)))
    # ---- fluxes and errors, (n, K, B).
    tau = np.transpose((t_obs - t_ref[:, None, None]) / (1.0 + z[:, None, None]), (0, 2, 1))
    shape = np.empty((n, nb, n_nights))  # (n, B, K)
    for c, cls in enumerate(TRANSIENT_CLASSES):
        rows = np.flatnonzero(cls_idx == c)
        if rows.size:
            shape[rows] = _transient_shape(cls, tau[rows], params[cls]) / shape_max[rows][..., None]
    peak_flux = 10.0 ** (-0.4 * (peak_mag - _NJY_ZEROPOINT))  # (n, B) nJy
    true = np.transpose(shape * peak_flux[:, :, None], (0, 2, 1))  # (n, K, B)
    limits = np.array([preset["limits"].get(b, 21.0) for b in bands])
    lim = limits[None, None, :] + rng.normal(0.0, 0.3, (n, n_nights, nb))
    sky_sigma = 10.0 ** (-0.4 * (lim - _NJY_ZEROPOINT)) / 5.0
    # Source noise reaches S/N 100 five magnitudes above the limit.
    gain = 10.0 ** (-0.4 * (limits - 5.0 - _NJY_ZEROPOINT)) / 1e4
    sigma = np.sqrt(sky_sigma ** 2 + gain[None, None, :] * np.clip(true, 0.0, None)
                    + (0.005 * true) ** 2)
    flux = true + sigma * rng.standard_normal(sigma.shape)
    obj, night_i, bd = np.nonzero(observed)
    point_counts = np.bincount(obj, minlength=n)
    peak_mjd = t_ref[:, None] + shape_peak * (1.0 + z[:, None])
    metas = [{
        "t_peak": _round(t_ref[i], 5),
        "peak_mjd": {b: _round(peak_mjd[i, j], 5) for j, b in enumerate(bands)},
        "peak_mag": {b: _round(peak_mag[i, j], 4) for j, b in enumerate(bands)},
        "abs_mag": _round(abs_mag[i], 4), "distmod": _round(distmod[i], 4),
        "mwebv": _round(mwebv[i], 4), "value_unit": "nJy",
    } for i in range(n)]
    return _light_curve_table(
        ids, survey, point_counts, t_obs[obj, night_i, bd], bd, bands,
        flux[obj, night_i, bd], sigma[obj, night_i, bd], is_flux=True, labels=list(names),
        redshift=z, metas=metas)


# --------------------------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------------------------

# Vacuum rest wavelengths (Angstrom).
_BALMER = (6564.61, 4862.68, 4341.68, 4102.89, 3971.20, 3890.17, 3836.47)
_CA_HK = (3934.78, 3969.59)
_MG_B = (5168.76, 5174.13, 5185.05)
_NA_D = (5891.58, 5897.56)
_CA_TRIPLET = (8500.36, 8544.44, 8664.52)
_G_BAND = 4305.6
_TIO_HEADS = (6159.0, 7055.0, 7591.0, 8434.0)
# Spectral types: (letter, T_hot, T_cool) in Kelvin.
_SPECTRAL_TYPES = (("O", 60000.0, 30000.0), ("B", 30000.0, 10000.0), ("A", 10000.0, 7500.0),
                   ("F", 7500.0, 6000.0), ("G", 6000.0, 5200.0), ("K", 5200.0, 3700.0),
                   ("M", 3700.0, 2400.0))
# Galaxy emission lines: name -> vacuum wavelengths.
_QSO_LINES = (  # (rest wavelength, EW range in A, broad)
    (1215.67, (50.0, 120.0), True), (1240.14, (10.0, 25.0), True),
    (1400.0, (5.0, 12.0), True), (1549.06, (20.0, 50.0), True),
    (1908.73, (15.0, 30.0), True), (2798.75, (20.0, 50.0), True),
    (4341.68, (10.0, 30.0), True), (4862.68, (40.0, 100.0), True),
    (6564.61, (150.0, 350.0), True), (5008.24, (5.0, 40.0), False),
    (3728.48, (1.0, 5.0), False),
)
# SDSS and_mask bits used here.
_FULLREJECT = 1 << 18
_BRIGHTSKY = 1 << 23
_NODATA = 1 << 24


def _spectral_type(teff: np.ndarray) -> list[str]:
    out = []
    for t in teff.tolist():
        for letter, hot, cool in _SPECTRAL_TYPES:
            if cool <= t < hot or (letter == "M" and t < hot):
                digit = int(np.clip(10.0 * (hot - t) / (hot - cool), 0, 9))
                out.append(f"{letter}{digit}")
                break
    return out


def _planck(wave: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    """Planck f_lambda shape (arbitrary scale) at wave (.., L) for temperature (.., 1)."""
    x = np.clip(_HC_K / (wave * temperature), 1e-6, 700.0)
    return (5000.0 / wave) ** 5 / np.expm1(x)


_SKY_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _sky_lines() -> tuple[np.ndarray, np.ndarray]:
    """Night-sky emission lines (vacuum A) and strengths: [O I], Na, Hg and the OH forest.

    The OH forest is modelled as bands of lines of rising strength to the red; the line
    positions come from a fixed generator so that every spectrum sees the same sky.
    """
    if 0 not in _SKY_CACHE:
        gen = np.random.default_rng(5577)
        waves = [5578.89, 6302.05, 6365.54, 5891.58, 5897.56, 4359.56, 5462.27]
        power = [120.0, 40.0, 14.0, 10.0, 10.0, 6.0, 4.0]
        for lo, hi, strength, count in ((6830, 6990, 25, 16), (7240, 7410, 35, 18),
                                        (7750, 8010, 45, 22), (8280, 8510, 55, 22),
                                        (8760, 9050, 60, 24), (9300, 9550, 40, 18),
                                        (9700, 10450, 70, 40)):
            waves += gen.uniform(lo, hi, count).tolist()
            power += (strength * gen.uniform(0.2, 1.0, count)).tolist()
        _SKY_CACHE[0] = (np.array(waves), np.array(power))
    return _SKY_CACHE[0]


def _add_lines(target: np.ndarray, loglam0: float, dloglam: float, rest: np.ndarray,
               z: np.ndarray, sigma_kms: np.ndarray, amplitude: np.ndarray) -> None:
    """Add Gaussian lines in place, only within +-5 sigma windows of each line.

    Args:
        target: (n, L) array on a log-lambda grid starting at ``loglam0``.
        loglam0: log10 wavelength of pixel 0.
        dloglam: pixel size in log10 wavelength.
        rest: rest wavelengths, (M,).
        z: redshift per object, (n,).
        sigma_kms: Gaussian width per object, (n,) or (n, M).
        amplitude: peak value per object and line, (n, M) (negative for absorption).
    """
    n, length = target.shape
    sigma_pix = np.broadcast_to(np.asarray(sigma_kms, dtype=np.float64).reshape(n, -1),
                                (n, rest.size)) / _C_KMS / np.log(10.0) / dloglam
    centre = (np.log10(rest[None, :] * (1.0 + z[:, None])) - loglam0) / dloglam  # (n, M)
    half = int(np.ceil(5.0 * sigma_pix.max())) + 1
    offs = np.arange(-half, half + 1)
    rows = np.arange(n)[:, None]
    for m in range(rest.size):
        pix = np.rint(centre[:, m]).astype(np.int64)[:, None] + offs[None, :]  # (n, W)
        inside = (pix >= 0) & (pix < length) & (np.abs(offs)[None, :]
                                                 <= 5.0 * sigma_pix[:, m, None] + 1)
        prof = amplitude[:, m, None] * np.exp(
            -0.5 * ((pix - centre[:, m, None]) / sigma_pix[:, m, None]) ** 2)
        # Windows of one line never repeat a pixel within a row, so a fancy-indexed add is
        # exact (no np.add.at needed).
        pix_c = np.clip(pix, 0, length - 1)
        target[rows, pix_c] += np.where(inside, prof, 0.0)


def _flux_for_mag(mag: np.ndarray, wave: float) -> np.ndarray:
    """f_lambda in 1e-17 erg/s/cm^2/A of an AB magnitude at wavelength ``wave``."""
    return 10.0 ** (-0.4 * (mag + 48.6)) * _C_AA / wave ** 2 / 1e-17


def _normalise(model: np.ndarray, wave: np.ndarray, lo: float, hi: float,
               target: np.ndarray) -> np.ndarray:
    """Scale each row so its mean over [lo, hi] Angstrom equals ``target``."""
    box = (wave >= lo) & (wave <= hi)
    mean = model[:, box].mean(axis=1)
    return model * (target / np.maximum(mean, 1e-30))[:, None]


def spectra(
    n: int,
    *,
    seed: int = 0,
    classes: Sequence[str] = SPECTRUM_CLASSES,
    class_fractions: Mapping[str, float] | None = None,
    survey: str = "sdss",
    start: int = 0,
) -> pa.Table:
    """SDSS-like optical spectra of stars, galaxies and quasars.

    Pixels lie on the SDSS grid (log10 vacuum Angstrom from 3.5797 in steps of 1e-4); each
    spectrum has 3800-4600 pixels and starts up to 40 pixels to the red. Flux is in
    1e-17 erg/s/cm^2/A for SDSS-like magnitudes.

    * STAR: Planck continuum (T 3000-30000 K; subclass the spectral type, e.g. ``A0``, ``G2``,
      ``M3``), Balmer absorption strongest in A stars, Ca II H&K, G band, Mg b, Na D and Ca
      triplet growing in cool stars, TiO bands in M stars; radial velocities of ~40 km/s.
    * GALAXY (z 0.01-0.6): old and young stellar continua with a 4000 A break and absorption
      lines, emission lines ([O II], H-beta, [O III], H-alpha, [N II], [S II]) with
      star-forming ratios; subclass ``STARFORMING`` or ``PASSIVE``.
    * QSO (z 0.1-4): power-law continuum, broad Ly-alpha, N V, Si IV, C IV, C III], Mg II,
      Balmer lines, narrow [O III] and [O II], Ly-alpha forest and Lyman-limit absorption;
      subclass ``BROADLINE``.

    Noise comes from a per-pixel sigma with read noise, sky (continuum, [O I] 5577/6300, Na,
    Hg and the OH forest in the red) and source photon noise, larger at the blue and red ends;
    ``ivar = 1 / sigma^2``. Some spectra have rejected runs of pixels (``FULLREJECT`` or
    ``NODATA`` bits, ivar 0); bright-sky pixels get the ``BRIGHTSKY`` bit.

    Args:
        n: number of spectra.
        seed: random seed.
        classes: subset of ``STAR``, ``GALAXY``, ``QSO`` to draw from.
        class_fractions: relative class weights (default balanced).
        survey: survey name written into the table.
        start: index of the first object (ids and random stream), for chunked generation.

    Returns:
        A canonical spectrum table with ``z``, ``z_err``, ``label``, ``subclass`` and ``meta``
        (``flux_unit``, the generating parameters, the normalising magnitude).
    """
    _check_n(n, start)
    unknown = [c for c in classes if c not in SPECTRUM_CLASSES]
    if unknown or not classes:
        raise ValueError(f"classes: expected a non-empty subset of {SPECTRUM_CLASSES}, "
                         f"got {tuple(classes)}")
    rng = _rng(seed, start)
    cls_idx = _class_indices(rng, n, tuple(classes), class_fractions)
    ids = _ids(f"syn-{survey.lower()}", start, n)
    tables = [_spectra_chunk(rng, np.array(classes)[cls_idx[a:b]], ids[a:b], survey.lower())
              for a, b in _chunked(n, 256)]
    if not tables:
        return SPECTRUM_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _spectra_chunk(rng: np.random.Generator, labels: np.ndarray, ids: list[str],
                   survey: str) -> pa.Table:
    n = labels.size
    loglam = _SDSS_LOGLAM0 + _SDSS_DLOGLAM * np.arange(_SDSS_GRID)
    wave = 10.0 ** loglam  # (L,)
    model = np.zeros((n, _SDSS_GRID))
    z = np.zeros(n)
    z_err = np.zeros(n)
    subclass: list[str | None] = [None] * n
    metas: list[dict[str, Any]] = [{"flux_unit": _SDSS_FLUX_UNIT} for _ in range(n)]
    for cls in SPECTRUM_CLASSES:
        rows = np.flatnonzero(labels == cls)
        if rows.size == 0:
            continue
        if cls == "STAR":
            part, zz, sub, extra = _star_models(rng, rows.size, wave)
            z_err[rows] = rng.uniform(3e-6, 2e-5, rows.size)
        elif cls == "GALAXY":
            part, zz, sub, extra = _galaxy_models(rng, rows.size, wave)
            z_err[rows] = rng.uniform(8e-6, 4e-5, rows.size) * (1.0 + zz)
        else:
            part, zz, sub, extra = _qso_models(rng, rows.size, wave)
            z_err[rows] = rng.uniform(1e-4, 8e-4, rows.size) * (1.0 + zz)
        model[rows] = part
        z[rows] = zz
        for j, r in enumerate(rows.tolist()):
            subclass[r] = sub[j]
            metas[r].update({k: v[j] for k, v in extra.items()})
    # ---- noise: read noise, sky and source photons; worse at the blue and red ends.
    sky_waves, sky_power = _sky_lines()
    sky = np.zeros((1, _SDSS_GRID))
    _add_lines(sky, _SDSS_LOGLAM0, _SDSS_DLOGLAM, sky_waves, np.zeros(1), np.array([70.0]),
               sky_power[None, :])
    sky = sky[0] + 0.3 + 0.9 * (wave / 9000.0) ** 4
    sky_scale = rng.uniform(0.7, 1.6, n)
    read = rng.uniform(0.15, 0.45, n)
    photon = rng.uniform(0.02, 0.06, n)
    throughput = 1.0 + 1.5 * np.exp(-(wave - 3800.0) / 200.0) + np.exp((wave - 9800.0) / 400.0)
    sky_n = sky[None, :] * sky_scale[:, None]
    sigma = np.sqrt(read[:, None] ** 2 + photon[:, None] * (sky_n + np.clip(model, 0, None)))
    sigma *= throughput[None, :]
    flux = model + sigma * rng.standard_normal(model.shape)
    mask = np.where(sky_n > 5.0 * np.median(sky_n, axis=1, keepdims=True), _BRIGHTSKY, 0)
    ivar = 1.0 / sigma ** 2
    # ---- per-object pixel range, rejected runs and missing blue ends.
    first = rng.integers(0, 41, n)
    npix = rng.integers(3800, 4601, n)
    col = np.arange(_SDSS_GRID)[None, :]
    runs = rng.random((n, 3)) < 0.12  # up to 3 rejected runs per spectrum
    run_start = first[:, None] + rng.integers(0, 3800, (n, 3))
    run_len = rng.integers(1, 31, (n, 3))
    rejected = ((col[:, :, None] >= run_start[:, None, :])
                & (col[:, :, None] < (run_start + run_len)[:, None, :])
                & runs[:, None, :]).any(axis=2)  # (n, L)
    nodata = (rng.random(n) < 0.1)[:, None] & (col < (first + rng.integers(1, 21, n))[:, None])
    mask = mask | np.where(rejected, _FULLREJECT, 0) | np.where(nodata, _NODATA, 0)
    ivar = np.where(rejected | nodata, 0.0, ivar)
    keep = (col >= first[:, None]) & (col < (first + npix)[:, None])  # (n, L), row-major
    wave_flat = np.broadcast_to(wave, (n, _SDSS_GRID))[keep]
    for i in range(n):
        metas[i]["sky_scale"] = _round(sky_scale[i], 3)
    return _spectrum_table(ids, survey, npix, wave_flat, flux[keep], ivar[keep], mask[keep],
                           z=z, z_err=z_err, labels=labels.tolist(), subclasses=subclass,
                           metas=metas)


def _star_models(rng: np.random.Generator, n: int, wave: np.ndarray):
    teff = _loguniform(rng, 3000.0, 30000.0, n)
    z = rng.normal(0.0, 40.0, n) / _C_KMS
    rest = wave[None, :] / (1.0 + z[:, None])  # (n, L)
    cont = _planck(rest, teff[:, None])
    logt = np.log10(teff)
    hot = lambda t0, w: 1.0 / (1.0 + np.exp(-(t0 - teff) / w))  # noqa: E731 - cool-star weight
    a_star = np.exp(-0.5 * ((logt - 3.98) / 0.12) ** 2)
    tau = np.zeros((n, wave.size))
    balmer = np.array(_BALMER)
    depth = (0.6 * a_star + 0.06)[:, None] * np.array([1.0, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5])
    _add_lines(tau, _SDSS_LOGLAM0, _SDSS_DLOGLAM, balmer, z, (250.0 + 700.0 * a_star),
               depth)
    metal = np.concatenate([_CA_HK, [_G_BAND], _MG_B, _NA_D, _CA_TRIPLET])
    w_hk, w_g, w_mg, w_na, w_ca = (0.8 * hot(7000.0, 600.0), 0.35 * hot(6500.0, 500.0),
                                   0.4 * hot(6500.0, 500.0), 0.5 * hot(6000.0, 500.0),
                                   0.4 * hot(7000.0, 800.0))
    metal_depth = np.stack([w_hk, w_hk, w_g, w_mg, w_mg, w_mg, w_na, w_na, w_ca, w_ca, w_ca],
                           axis=1)
    metal_sigma = np.array([300.0, 300.0, 400.0, 120.0, 120.0, 120.0, 100.0, 100.0, 120.0,
                            120.0, 120.0])
    _add_lines(tau, _SDSS_LOGLAM0, _SDSS_DLOGLAM, metal, z,
               np.broadcast_to(metal_sigma, (n, metal.size)), metal_depth)
    # TiO: absorption bands with a sharp blue head, fading to the red, in M stars.
    tio = 0.5 * hot(3900.0, 150.0)
    for head in _TIO_HEADS:
        tau += tio[:, None] * (rest >= head) * np.exp(-(rest - head) / 150.0)
    model = cont * np.exp(-tau)
    mag = rng.uniform(14.5, 19.5, n)
    model = _normalise(model, wave, 5800.0, 6700.0, _flux_for_mag(mag, 6200.0))
    extra = {"teff": [_round(t, 1) for t in teff], "mag_r": [_round(m, 3) for m in mag]}
    return model, z, _spectral_type(teff), extra


def _galaxy_models(rng: np.random.Generator, n: int, wave: np.ndarray):
    z = rng.uniform(0.01, 0.6, n)
    passive = rng.random(n) < 0.4
    rest = wave[None, :] / (1.0 + z[:, None])
    t_old = rng.uniform(4200.0, 5200.0, n)[:, None]
    d4000 = np.where(passive, rng.uniform(0.35, 0.5, n), rng.uniform(0.1, 0.3, n))[:, None]
    old = _planck(rest, t_old) * (1.0 - d4000 / (1.0 + np.exp(-(4000.0 - rest) / 40.0)))
    old /= old.mean(axis=1, keepdims=True)
    young = (rest / 5000.0) ** -1.5
    young /= young.mean(axis=1, keepdims=True)
    y = np.where(passive, rng.uniform(0.0, 0.1, n), rng.uniform(0.3, 0.8, n))[:, None]
    cont = (1.0 - y) * old + y * young
    sigma_v = rng.uniform(80.0, 250.0, n)
    tau = np.zeros((n, wave.size))
    absorb = np.concatenate([_CA_HK, [_G_BAND], _MG_B, _NA_D, _BALMER[:4]])
    old_w = (1.0 - y[:, 0])
    depth = np.stack([0.35 * old_w, 0.35 * old_w, 0.2 * old_w, 0.12 * old_w, 0.12 * old_w,
                      0.12 * old_w, 0.1 * old_w, 0.1 * old_w,
                      0.1 * y[:, 0], 0.12 * y[:, 0], 0.12 * y[:, 0], 0.12 * y[:, 0]], axis=1)
    _add_lines(tau, _SDSS_LOGLAM0, _SDSS_DLOGLAM, absorb, z,
               np.sqrt(sigma_v ** 2 + 300.0 ** 2), depth)
    cont = cont * np.exp(-tau)
    # Emission lines, fluxes relative to H-alpha (EW in the rest frame).
    ew_ha = np.where(passive, rng.uniform(0.0, 1.5, n), _loguniform(rng, 10.0, 120.0, n))
    cont_at = lambda lam: np.array([np.interp(lam, r, c) for r, c in zip(rest, cont,  # noqa: E731
                                                                          strict=True)])
    f_ha = ew_ha * cont_at(6564.61)
    f_hb = f_ha / rng.uniform(2.86, 4.5, n)
    n2 = f_ha * np.where(passive, rng.uniform(0.5, 1.5, n), rng.uniform(0.1, 0.5, n))
    o3 = f_hb * rng.uniform(0.2, 3.0, n)
    o2 = f_hb * rng.uniform(1.0, 3.0, n)
    s2 = f_ha * rng.uniform(0.2, 0.45, n)
    lines = np.array([6564.61, 4862.68, 4341.68, 6585.27, 6549.86, 5008.24, 4960.30, 3727.09,
                      3729.88, 6718.29, 6732.67])
    fluxes = np.stack([f_ha, f_hb, 0.47 * f_hb, n2, n2 / 2.95, o3, o3 / 2.98, 0.42 * o2,
                       0.58 * o2, 0.55 * s2, 0.45 * s2], axis=1)  # (n, M) line fluxes
    width = np.sqrt(rng.uniform(50.0, 150.0, n) ** 2 + 69.0 ** 2)  # + SDSS resolution
    # Peak of a Gaussian of this flux in f_lambda: F / (sqrt(2 pi) sigma_lambda); in the
    # observed frame both EW and sigma_lambda scale with (1 + z), so z cancels.
    peak = fluxes / (np.sqrt(2 * np.pi) * lines[None, :] * width[:, None] / _C_KMS)
    emission = np.zeros_like(cont)
    _add_lines(emission, _SDSS_LOGLAM0, _SDSS_DLOGLAM, lines, z, width, peak)
    model = cont + emission
    mag = rng.uniform(15.0, 19.5, n)
    model = _normalise(model, wave, 5800.0, 6700.0, _flux_for_mag(mag, 6200.0))
    sub = ["PASSIVE" if p else "STARFORMING" for p in passive]
    extra = {"mag_r": [_round(m, 3) for m in mag], "ew_halpha": [_round(e, 2) for e in ew_ha],
             "vdisp": [_round(s, 1) for s in sigma_v]}
    return model, z, sub, extra


def _qso_models(rng: np.random.Generator, n: int, wave: np.ndarray):
    z = 0.1 + 3.9 * rng.beta(2.0, 3.0, n)
    rest = wave[None, :] / (1.0 + z[:, None])
    alpha_nu = rng.uniform(-0.9, -0.2, n)
    cont = (rest / 3000.0) ** (-2.0 - alpha_nu)[:, None]
    lines = np.array([w for w, _, _ in _QSO_LINES])
    ew = np.stack([rng.uniform(*r, n) for _, r, _ in _QSO_LINES], axis=1)
    broad = np.array([b for _, _, b in _QSO_LINES])
    fwhm = rng.uniform(2000.0, 7000.0, n)
    width = np.where(broad[None, :], fwhm[:, None] / 2.355, rng.uniform(150.0, 300.0, n)[:, None])
    cont_line = (lines[None, :] / 3000.0) ** (-2.0 - alpha_nu)[:, None]
    peak = ew * cont_line / (np.sqrt(2 * np.pi) * lines[None, :] * width / _C_KMS)
    emission = np.zeros_like(cont)
    _add_lines(emission, _SDSS_LOGLAM0, _SDSS_DLOGLAM, lines, z, width, peak)
    # [O III] 4960 at a third of 5008.
    _add_lines(emission, _SDSS_LOGLAM0, _SDSS_DLOGLAM, np.array([4960.30]), z, width[:, -2:-1],
               peak[:, -2:-1] / 2.98)
    model = cont + emission
    # Ly-alpha forest: effective optical depth 0.0036 (1 + z_abs)^3.7 with pixel-to-pixel
    # fluctuations, and the Lyman limit below 912 A rest.
    z_abs = wave[None, :] / 1215.67 - 1.0
    forest = rest < 1215.67
    tau = 0.0036 * (1.0 + np.clip(z_abs, 0.0, None)) ** 3.7
    tau = tau * np.exp(0.8 * rng.standard_normal(model.shape) - 0.32)
    model = np.where(forest, model * np.exp(-tau), model)
    model = np.where(rest < 912.0, model * 0.1, model)
    mag = rng.uniform(17.0, 20.5, n)
    model = _normalise(model, wave, 7000.0, 8000.0, _flux_for_mag(mag, 7500.0))
    extra = {"mag_i": [_round(m, 3) for m in mag], "alpha_nu": [_round(a, 3) for a in alpha_nu],
             "fwhm_broad": [_round(f, 1) for f in fwhm]}
    return model, z, ["BROADLINE"] * n, extra


# --------------------------------------------------------------------------------------------
# Stamps
# --------------------------------------------------------------------------------------------

_STAMP_SURVEYS: dict[str, dict[str, Any]] = {
    # A deep survey with a wide Moffat PSF, fine pixels and small stamps.
    "A": dict(size=21, psf="moffat", fwhm=(2.2, 2.8), beta=(2.5, 4.0), pixel_scale=0.263,
              sky=(300.0, 900.0), gain=4.0, read_noise=6.0, saturation=35000.0,
              zero_point=30.0, ref_depth=(4.0, 9.0), mag=(20.0, 23.0)),
    # ZTF-like: a sharp Gaussian PSF on 1"-pixels, 63x63 cutouts, data numbers.
    "B": dict(size=63, psf="gaussian", fwhm=(1.2, 1.8), beta=(0.0, 0.0), pixel_scale=1.012,
              sky=(120.0, 350.0), gain=6.2, read_noise=8.0, saturation=50000.0,
              zero_point=26.2, ref_depth=(10.0, 20.0), mag=(17.0, 20.5)),
}
_BOGUS_TYPES = ("cosmic_ray", "hot_pixel", "bad_column", "dipole", "psf_mismatch", "noise")
_BOGUS_WEIGHTS = (0.25, 0.1, 0.1, 0.2, 0.15, 0.2)


def _psf_images(kind: str, xc: np.ndarray, yc: np.ndarray, fwhm: np.ndarray, beta: np.ndarray,
                size: int) -> np.ndarray:
    """Unit-flux PSFs integrated over pixels, (n, size, size)."""
    from scipy.special import erf

    pix = np.arange(size, dtype=np.float64)
    if kind == "gaussian":
        # Separable and exactly pixel-integrated with erf.
        s = (fwhm / 2.3548)[:, None] * np.sqrt(2.0)
        ex = 0.5 * (erf((pix[None, :] + 0.5 - xc[:, None]) / s)
                    - erf((pix[None, :] - 0.5 - xc[:, None]) / s))
        ey = 0.5 * (erf((pix[None, :] + 0.5 - yc[:, None]) / s)
                    - erf((pix[None, :] - 0.5 - yc[:, None]) / s))
        return ey[:, :, None] * ex[:, None, :]
    # Moffat, supersampled 3x3 per pixel.
    sub = (np.arange(3 * size) + 0.5) / 3.0 - 0.5
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    dx = sub[None, None, :] - xc[:, None, None]
    dy = sub[None, :, None] - yc[:, None, None]
    r2 = (dx ** 2 + dy ** 2) / (alpha ** 2)[:, None, None]
    img = ((beta - 1.0) / (np.pi * alpha ** 2))[:, None, None] * (1.0 + r2) ** (-beta[:, None,
                                                                                        None])
    # (n, 3S, 3S) -> (n, S, 3, S, 3) -> mean over the sub-pixels, times the sub-pixel area.
    return img.reshape(-1, size, 3, size, 3).sum(axis=(2, 4)) / 9.0


def _host_images(rng: np.random.Generator, n: int, size: int, pixel_scale: float,
                 xc: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-flux exponential-disc host galaxies near the source, and their scale (px)."""
    r_s = rng.uniform(0.6, 2.5, n) / pixel_scale  # scale length 0.6-2.5"
    sep = rng.uniform(0.0, 1.5, n) * r_s
    ang = rng.uniform(0.0, 2 * np.pi, n)
    q = rng.uniform(0.3, 1.0, n)
    theta = rng.uniform(0.0, np.pi, n)
    gx, gy = xc + sep * np.cos(ang), yc + sep * np.sin(ang)
    pix = np.arange(size, dtype=np.float64)
    dx = pix[None, None, :] - gx[:, None, None]
    dy = pix[None, :, None] - gy[:, None, None]
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = dx * c + dy * s
    v = (-dx * s + dy * c) / q[:, None, None]
    img = np.exp(-np.sqrt(u ** 2 + v ** 2) / r_s[:, None, None])
    # Normalise to the analytic total flux 2 pi q r_s^2 (stamps crop large hosts).
    return img / (2 * np.pi * q * r_s ** 2)[:, None, None], r_s


def stamps(
    n: int,
    *,
    seed: int = 0,
    survey: str = "A",
    real_fraction: float = 0.5,
    start: int = 0,
) -> pa.Table:
    """Real/bogus alert triplets (science, reference, difference) from two surveys.

    Survey ``A``: 21x21 stamps, Moffat PSF of ~2.5 px FWHM, 0.263"/px, deep and high sky.
    Survey ``B`` (ZTF-like): 63x63 stamps, Gaussian PSF of ~1.5 px FWHM, 1.01"/px, in DN.
    The two differ in PSF, pixel scale, size, sky, gain, saturation and depth: a domain shift.

    Real: a point source that brightened (sometimes faded) between the reference and the
    science image, on an optional host galaxy (or a variable star with reference flux); the
    difference shows a PSF-shaped source. Bogus (``meta.bogus_type``): ``cosmic_ray`` (sharp
    one-to-four pixel hits in the science image), ``hot_pixel``, ``bad_column``, ``dipole``
    (a bright static star misaligned between the images), ``psf_mismatch`` (a static star
    subtracted with the wrong PSF width: a ring) and ``noise`` (no source). Science and
    reference saturate at the survey's level; the difference is science minus the
    PSF-matched reference model minus the reference noise.

    Args:
        n: number of triplets.
        seed: random seed.
        survey: ``A`` or ``B``.
        real_fraction: fraction of real triplets (exact count).
        start: index of the first object (ids and random stream), for chunked generation.

    Returns:
        A canonical stamp table (float32 row-major cutouts), ``label`` ``real``/``bogus``,
        ``rb``/``drb`` null, ``meta`` with the survey parameters and the bogus type.
    """
    _check_n(n, start)
    if survey not in _STAMP_SURVEYS:
        raise ValueError(f"survey: expected one of {sorted(_STAMP_SURVEYS)}, got {survey!r}")
    if not 0.0 <= real_fraction <= 1.0:
        raise ValueError(f"real_fraction must be in [0, 1], got {real_fraction}")
    rng = _rng(seed, start)
    is_real = _class_indices(rng, n, ("bogus", "real"),
                             {"bogus": 1.0 - real_fraction, "real": real_fraction}) == 1
    ids = _ids(f"syn-stamp{survey}", start, n)
    tables = [_stamp_chunk(rng, is_real[a:b], ids[a:b], survey) for a, b in _chunked(n, 256)]
    if not tables:
        return STAMP_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _stamp_chunk(rng: np.random.Generator, is_real: np.ndarray, ids: list[str],
                 survey: str) -> pa.Table:
    p = _STAMP_SURVEYS[survey]
    n, size = is_real.size, p["size"]
    centre = (size - 1) / 2.0
    fwhm = rng.uniform(*p["fwhm"], n)
    beta = rng.uniform(*p["beta"], n) if p["psf"] == "moffat" else np.zeros(n)
    fwhm_ref = fwhm * rng.uniform(0.8, 1.0, n)  # the template coadd has better seeing
    sky_s = rng.uniform(*p["sky"], n)
    sky_r = rng.uniform(*p["sky"], n)
    depth = rng.uniform(*p["ref_depth"], n)
    xc = centre + rng.uniform(-0.5, 0.5, n)
    yc = centre + rng.uniform(-0.5, 0.5, n)
    psf_s = _psf_images(p["psf"], xc, yc, fwhm, beta, size)
    psf_r = _psf_images(p["psf"], xc, yc, fwhm_ref, beta, size)
    mag = rng.uniform(*p["mag"], n)
    flux = 10.0 ** (-0.4 * (mag - p["zero_point"]))  # counts (DN) of the source
    bogus_type = np.array([None] * n, dtype=object)
    bogus_type[~is_real] = rng.choice(_BOGUS_TYPES, size=int((~is_real).sum()),
                                      p=_BOGUS_WEIGHTS)
    # ---- static scene (in both images) and the change (science only), noise-free.
    has_host = is_real & (rng.random(n) < 0.6)
    host_img, _ = _host_images(rng, n, size, p["pixel_scale"], xc, yc)
    host_flux = np.where(has_host, flux * 10.0 ** (-0.4 * rng.uniform(-2.0, 1.5, n)), 0.0)
    variable = is_real & ~has_host & (rng.random(n) < 0.3)
    ref_flux = np.where(variable, flux * rng.uniform(0.5, 3.0, n), 0.0)
    change = np.where(is_real, flux, 0.0)
    fading = variable & (rng.random(n) < 0.3)
    change = np.where(fading, -np.minimum(flux, 0.8 * ref_flux), change)
    static_s = host_flux[:, None, None] * host_img + ref_flux[:, None, None] * psf_s
    static_r = host_flux[:, None, None] * host_img + ref_flux[:, None, None] * psf_r
    science = static_s + change[:, None, None] * psf_s
    matched = static_s.copy()  # the reference model PSF-matched to the science image
    star = rng.uniform(5.0, 200.0, n) * flux  # bright static stars of dipoles and rings
    dip = bogus_type == "dipole"
    if dip.any():
        shift = rng.uniform(0.3, 1.2, n)
        ang = rng.uniform(0.0, 2 * np.pi, n)
        moved = _psf_images(p["psf"], xc + shift * np.cos(ang), yc + shift * np.sin(ang),
                            fwhm, beta, size)
        science[dip] += star[dip, None, None] * moved[dip]
        static_r[dip] += star[dip, None, None] * psf_r[dip]
        matched[dip] += star[dip, None, None] * psf_s[dip]
    ring = bogus_type == "psf_mismatch"
    if ring.any():
        wrong = fwhm * np.where(rng.random(n) < 0.5, 1.0, -1.0) * rng.uniform(0.1, 0.3, n)
        mismatched = _psf_images(p["psf"], xc, yc, fwhm + wrong, beta, size)
        science[ring] += star[ring, None, None] * psf_s[ring]
        static_r[ring] += star[ring, None, None] * psf_r[ring]
        matched[ring] += star[ring, None, None] * mismatched[ring]
    # ---- noise in DN: var = signal / gain + (read noise / gain)^2; the coadd is deeper.
    rn2 = (p["read_noise"] / p["gain"]) ** 2
    sig_s = np.sqrt((sky_s[:, None, None] + np.clip(science, 0, None)) / p["gain"] + rn2)
    sig_r = np.sqrt((sky_r[:, None, None] + np.clip(static_r, 0, None)) / p["gain"] + rn2)
    sig_r /= np.sqrt(depth)[:, None, None]
    noise_s = sig_s * rng.standard_normal(sig_s.shape)
    noise_r = sig_r * rng.standard_normal(sig_r.shape)
    sci_img = sky_s[:, None, None] + science + noise_s
    ref_img = sky_r[:, None, None] + static_r + noise_r
    # ---- artefacts that live in the science image only.
    rows = np.arange(n)
    noise_level = np.sqrt(sky_s / p["gain"] + rn2)
    cr = bogus_type == "cosmic_ray"
    if cr.any():
        length = rng.integers(1, 5, n)
        step = rng.integers(-1, 2, (n, 2))
        step[(step == 0).all(axis=1), 0] = 1
        y0 = np.rint(centre + rng.uniform(-2, 2, n)).astype(int)
        x0 = np.rint(centre + rng.uniform(-2, 2, n)).astype(int)
        for j in range(4):
            hit = cr & (j < length)
            ys = np.clip(y0 + j * step[:, 0], 0, size - 1)
            xs = np.clip(x0 + j * step[:, 1], 0, size - 1)
            sci_img[rows[hit], ys[hit], xs[hit]] += (rng.uniform(15.0, 80.0, n)
                                                     * noise_level)[hit]
    hot = bogus_type == "hot_pixel"
    if hot.any():
        ys = np.rint(centre + rng.integers(-1, 2, n)).astype(int)
        xs = np.rint(centre + rng.integers(-1, 2, n)).astype(int)
        sci_img[rows[hot], ys[hot], xs[hot]] += (rng.uniform(30.0, 300.0, n) * noise_level)[hot]
    col = bogus_type == "bad_column"
    if col.any():
        xs = np.rint(centre + rng.integers(-2, 3, n)).astype(int)
        y_lo = rng.integers(0, size // 2, n)
        y_hi = y_lo + rng.integers(size // 3, size + 1, n)
        level = rng.uniform(5.0, 30.0, n) * noise_level
        y = np.arange(size)[None, :]
        column = ((y >= y_lo[:, None]) & (y < y_hi[:, None])) * level[:, None]  # (n, H)
        sci_img[rows[col], :, xs[col]] += column[col]
    extra_noise = np.where(bogus_type == "noise", rng.uniform(1.0, 1.5, n), 1.0)
    sci_img = np.where((extra_noise > 1.0)[:, None, None],
                       sci_img + np.sqrt(extra_noise ** 2 - 1.0)[:, None, None] * noise_s,
                       sci_img)
    sci_img = np.minimum(sci_img, p["saturation"])
    ref_img = np.minimum(ref_img, p["saturation"])
    diff = sci_img - sky_s[:, None, None] - matched - noise_r
    metas = []
    for i in range(n):
        meta = {"survey": survey, "psf": p["psf"], "fwhm": _round(fwhm[i], 3),
                "fwhm_ref": _round(fwhm_ref[i], 3), "pixel_scale": p["pixel_scale"],
                "sky": _round(sky_s[i], 2), "gain": p["gain"], "saturation": p["saturation"],
                "zero_point": p["zero_point"], "bogus_type": bogus_type[i],
                "mag": _round(mag[i], 3) if is_real[i] else None,
                "host": bool(has_host[i]), "variable": bool(variable[i]),
                "x": _round(xc[i], 3), "y": _round(yc[i], 3)}
        if p["psf"] == "moffat":
            meta["beta"] = _round(beta[i], 3)
        metas.append(meta)
    flat = size * size
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * flat, type=pa.int32())

    def images(arr: np.ndarray) -> pa.ListArray:
        # (n, H, W) -> (n * H * W,) row-major per stamp.
        return _list(arr.astype(np.float32).reshape(-1), offsets, pa.float32())

    columns = {
        "object_id": pa.array(ids, type=pa.string()),
        "survey": pa.array([f"synthetic-{survey}"] * n, type=pa.string()),
        "source": pa.nulls(n, type=pa.string()),
        "stamp_id": pa.array(ids, type=pa.string()),
        "height": pa.array(np.full(n, size, dtype=np.int32)),
        "width": pa.array(np.full(n, size, dtype=np.int32)),
        "science": images(sci_img),
        "reference": images(ref_img),
        "difference": images(diff),
        "label": pa.array(np.where(is_real, "real", "bogus").tolist(), type=pa.string()),
        "label_raw": pa.array(np.where(is_real, "real", "bogus").tolist(), type=pa.string()),
        "rb": pa.nulls(n, type=pa.float32()),
        "drb": pa.nulls(n, type=pa.float32()),
        "meta": _meta_column(metas),
    }
    return _table(columns, STAMP_SCHEMA, n)


# --------------------------------------------------------------------------------------------
# Supernova spectral time series
# --------------------------------------------------------------------------------------------

# P-Cygni lines: (rest A, absorption depth before/after the switch phase, switch phase (rest
# days from peak), emission relative to absorption, velocity relative to the photosphere).
_SN_LINES: dict[str, tuple[tuple[float, float, float, float, float, float], ...]] = {
    "Ia": (
        (6355.0, 0.55, 0.35, 35.0, 0.35, 1.0),    # Si II
        (5972.0, 0.20, 0.10, 20.0, 0.2, 1.0),     # Si II
        (5454.0, 0.25, 0.02, 10.0, 0.1, 0.85),    # S II W
        (5640.0, 0.25, 0.02, 10.0, 0.1, 0.85),    # S II W
        (3945.0, 0.70, 0.70, 0.0, 0.3, 1.15),     # Ca II H&K
        (8579.0, 0.35, 0.70, 5.0, 0.5, 1.15),     # Ca II IR triplet
        (4481.0, 0.30, 0.20, 15.0, 0.2, 1.0),     # Mg II
        (5018.0, 0.10, 0.40, 10.0, 0.3, 0.9),     # Fe II blend
        (7774.0, 0.30, 0.15, 20.0, 0.2, 1.0),     # O I
    ),
    "II": (
        (6564.6, 0.30, 0.35, 15.0, 2.5, 1.0),     # H-alpha
        (4862.7, 0.40, 0.45, 15.0, 0.6, 1.0),     # H-beta
        (4341.7, 0.30, 0.35, 15.0, 0.3, 1.0),     # H-gamma
        (5169.0, 0.00, 0.40, 15.0, 0.1, 0.7),     # Fe II
        (5018.0, 0.00, 0.30, 15.0, 0.1, 0.7),     # Fe II
        (5892.0, 0.00, 0.40, 35.0, 0.4, 0.8),     # Na I D
        (8579.0, 0.00, 0.50, 25.0, 0.6, 0.8),     # Ca II IR triplet
        (5876.0, 0.30, 0.00, 5.0, 0.3, 1.0),      # He I (early, hot)
    ),
}
_SN_TYPES = ("Ia", "II")
_SN_LABELS = {"Ia": "SNIa", "II": "SNII"}  # canonical class names (astroray.data.taxonomy)


def sn_spectral_series(
    n: int,
    *,
    seed: int = 0,
    types: Sequence[str] = _SN_TYPES,
    phases: tuple[float, float] = (-15.0, 60.0),
    cadence: float = 1.0,
    wavelength_range: tuple[float, float] = (3500.0, 10000.0),
    dloglam: float = 2e-4,
    snr: float = 100.0,
    start: int = 0,
) -> pa.Table:
    """Dense supernova spectral time series ("truth" series), one row per epoch.

    Each supernova (type Ia or II, z 0.005-0.05) is observed every ``cadence`` days
    (observer frame) from ``phases[0]`` to ``phases[1]`` around its B-band peak (type II
    series start a day after explosion). Each spectrum is a Planck photosphere whose
    temperature evolves (Ia ~14000 K before peak to ~5500 K; II from >15000 K to ~5500 K on the
    plateau), with UV line blanketing and P-Cygni profiles whose velocities decrease with time
    (Ia: Si II 6355, Si II 5972, S II W, Ca II H&K and IR triplet, Mg II, Fe II, O I; II:
    H-alpha, H-beta, H-gamma, Fe II, Na I D, Ca II, He I). The flux scale follows the light
    curve in a rest-frame 4000-5000 A box (Ia: peak M ~ -19.3 with the Phillips decline;
    II: rise then a plateau), placed at the Planck18 luminosity distance. Flux is noiseless
    and positive, in 1e-17 erg/s/cm^2/A (``meta.flux_unit``), with ``ivar`` for a nominal
    per-pixel S/N of ``snr``.

    Args:
        n: number of supernovae.
        seed: random seed.
        types: subset of ``Ia`` and ``II`` (balanced).
        phases: observer-frame days from peak of the first and last epochs.
        cadence: days between epochs.
        wavelength_range: observed-frame wavelength range (vacuum Angstrom).
        dloglam: pixel size in log10 wavelength (2e-4 ~ 140 km/s).
        snr: nominal per-pixel signal-to-noise that sets ``ivar``.
        start: index of the first supernova (ids and random stream), for chunked generation.

    Returns:
        A canonical spectrum table, ``object_id`` ``syn-sn-NNNN-eEEE``, ``label`` the
        canonical class (``SNIa``, ``SNII``), ``meta`` with ``sn_id``, ``type`` (``Ia``,
        ``II``), ``mjd``, ``phase`` (rest-frame days from peak),
        ``temperature``, ``velocity`` and ``flux_unit``.
    """
    _check_n(n, start)
    bad = [t for t in types if t not in _SN_TYPES]
    if bad or not types:
        raise ValueError(f"types: expected a non-empty subset of {_SN_TYPES}, got {types}")
    if not phases[0] < phases[1] or cadence <= 0:
        raise ValueError(f"need phases[0] < phases[1] and cadence > 0, got {phases}, {cadence}")
    if not 0 < wavelength_range[0] < wavelength_range[1] or dloglam <= 0 or snr <= 0:
        raise ValueError(f"invalid wavelength_range {wavelength_range}, dloglam {dloglam} or "
                         f"snr {snr}")
    from astropy.cosmology import Planck18

    rng = _rng(seed, start)
    kind = np.array(types)[_class_indices(rng, n, tuple(types), None)]
    z = rng.uniform(0.005, 0.05, n)
    distmod = Planck18.distmod(z).value if n else np.zeros(0)
    t_peak = rng.uniform(58000.0, 60000.0, n)
    dm15 = rng.uniform(0.9, 1.5, n)
    abs_peak = np.where(kind == "Ia", -19.3 + 0.7 * (dm15 - 1.1) + rng.normal(0.0, 0.12, n),
                        np.clip(rng.normal(-17.0, 0.8, n), -18.5, -15.5))
    rise = rng.uniform(7.0, 12.0, n)  # II: rest days from explosion to peak
    slope = rng.uniform(0.02, 0.04, n)  # II plateau decline in B (mag/day)
    v_ref = np.where(kind == "Ia", rng.uniform(10000.0, 13000.0, n),
                     rng.uniform(3500.0, 5500.0, n))
    t_scale = rng.uniform(0.9, 1.1, n)
    obs_phase = np.arange(phases[0], phases[1] + 0.5 * cadence, cadence)
    # ---- epochs of all supernovae, flattened; II series start a day after explosion.
    sn = np.repeat(np.arange(n), obs_phase.size)
    p_obs = np.tile(obs_phase, n)
    p_rest = p_obs / (1.0 + z[sn])
    keep = (kind[sn] == "Ia") | (p_rest > -rise[sn] + 1.0)
    sn, p_obs, p_rest = sn[keep], p_obs[keep], p_rest[keep]
    # Epoch number within its supernova (epochs are grouped by supernova, in time order).
    first = np.r_[True, sn[1:] != sn[:-1]] if sn.size else np.zeros(0, dtype=bool)
    epoch = np.arange(sn.size) - np.maximum.accumulate(np.where(first, np.arange(sn.size), 0))
    loglam = np.arange(np.log10(wavelength_range[0]), np.log10(wavelength_range[1]), dloglam)
    wave = 10.0 ** loglam
    tables = []
    params = {"kind": kind, "z": z, "distmod": distmod, "t_peak": t_peak, "dm15": dm15,
              "abs_peak": abs_peak, "rise": rise, "slope": slope, "v_ref": v_ref,
              "t_scale": t_scale}
    for lo, hi in _chunked(sn.size, 512):
        tables.append(_sn_chunk(sn[lo:hi], epoch[lo:hi], p_obs[lo:hi], p_rest[lo:hi], wave,
                                params, snr, start))
    if not tables:
        return SPECTRUM_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _sn_chunk(sn: np.ndarray, epoch: np.ndarray, p_obs: np.ndarray, p_rest: np.ndarray,
              wave: np.ndarray, params: Mapping[str, np.ndarray], snr: float,
              start: int) -> pa.Table:
    """Spectra of epochs (E,) of supernovae ``sn`` (indices into the per-SN ``params``)."""
    kind, z, distmod, t_peak = params["kind"], params["z"], params["distmod"], params["t_peak"]
    dm15, abs_peak, rise = params["dm15"], params["abs_peak"], params["rise"]
    slope, v_ref, t_scale = params["slope"], params["v_ref"], params["t_scale"]
    e = sn.size
    typ = kind[sn]
    ia = typ == "Ia"
    zz = z[sn]
    since_exp = np.maximum(p_rest + rise[sn], 0.5)
    temp = np.where(
        ia, np.interp(p_rest, [-20.0, -5.0, 0.0, 10.0, 20.0, 30.0, 60.0, 200.0],
                      [15000.0, 12500.0, 11000.0, 9000.0, 7500.0, 6500.0, 5500.0, 5000.0]),
        5500.0 + 20000.0 * np.exp(-since_exp / 6.0)) * t_scale[sn]
    velocity = np.where(ia, np.clip(v_ref[sn] - np.where(p_rest < 0, 150.0, 80.0) * p_rest,
                                    6000.0, 25000.0),
                        v_ref[sn] * (since_exp / 50.0) ** -0.45)
    # Light curve in the rest-frame B box (magnitudes below peak).
    dm_ia = np.where(p_rest < 0, 0.006 * p_rest ** 2,
                     np.where(p_rest <= 30.0, dm15[sn] * (np.abs(p_rest) / 15.0) ** 1.3,
                              dm15[sn] * 2.0 ** 1.3 + 0.015 * (p_rest - 30.0)))
    dm_ii = np.where(p_rest < 0, 2.5 * (-p_rest / rise[sn]) ** 2, slope[sn] * p_rest)
    m_app = abs_peak[sn] + distmod[sn] + np.where(ia, dm_ia, dm_ii)
    rest = wave[None, :] / (1.0 + zz[:, None])  # (E, L)
    cont = _planck(rest, temp[:, None])
    cutoff = np.where(ia, 3700.0, 3300.0)[:, None]
    power = np.where(ia, 15.0, 10.0)[:, None]
    cont = cont / (1.0 + (cutoff / rest) ** power)  # UV line blanketing
    absorb = np.ones_like(cont)
    emit = np.zeros_like(cont)
    for name in _SN_TYPES:
        rows = np.flatnonzero(typ == name)
        if rows.size == 0:
            continue
        phase_ref = p_rest[rows] if name == "Ia" else since_exp[rows] - 10.0
        for lam0, before, after, switch, em_ratio, v_factor in _SN_LINES[name]:
            weight = 1.0 / (1.0 + np.exp(-(phase_ref - switch) / 4.0))
            depth = before + (after - before) * weight
            if name == "II" and lam0 == 6564.6:
                em_ratio = em_ratio * np.clip(since_exp[rows] / 30.0, 0.3, 1.5)
            v = velocity[rows] * v_factor
            u = _C_KMS * (rest[rows] / lam0 - 1.0)  # (k, L) velocity from the line
            width_a = (0.25 * v + 1000.0)[:, None]
            width_e = (0.35 * v + 800.0)[:, None]
            absorb[rows] *= 1.0 - np.asarray(depth)[:, None] * np.exp(
                -0.5 * ((u + v[:, None]) / width_a) ** 2)
            emit[rows] += (np.asarray(depth) * em_ratio)[:, None] * np.exp(
                -0.5 * ((u + 0.05 * v[:, None]) / width_e) ** 2)
    model = cont * (np.clip(absorb, 0.02, None) + emit)
    # Flux scale: mean f_lambda in the redshifted 4000-5000 A box matches m_app (AB).
    box = (rest >= 4000.0) & (rest <= 5000.0)
    mean = (model * box).sum(axis=1) / np.maximum(box.sum(axis=1), 1)
    target = _flux_for_mag(m_app, 1.0) / (4450.0 * (1.0 + zz)) ** 2
    model = model * (target / mean)[:, None]
    sigma = model / snr + 1e-3 * target[:, None] / snr
    sn_ids = [f"syn-sn-{start + int(s):04d}" for s in sn]
    ids = [f"{s}-e{int(k):03d}" for s, k in zip(sn_ids, epoch, strict=True)]
    mjd = t_peak[sn] + p_obs
    metas = [{"sn_id": sn_ids[i], "type": str(typ[i]), "mjd": _round(mjd[i], 5),
              "phase": _round(p_rest[i], 4), "obs_phase": _round(p_obs[i], 4),
              "peak_mjd": _round(t_peak[sn[i]], 5), "temperature": _round(temp[i], 1),
              "velocity": _round(velocity[i], 1), "abs_mag_peak": _round(abs_peak[sn[i]], 3),
              "app_mag_b": _round(m_app[i], 4), "flux_unit": _SDSS_FLUX_UNIT}
             for i in range(e)]
    counts = np.full(e, wave.size)
    return _spectrum_table(
        ids, "synthetic-sn", counts, np.tile(wave, e), model.reshape(-1),
        (1.0 / sigma ** 2).reshape(-1), np.zeros(e * wave.size, dtype=np.int32), z=zz,
        z_err=np.full(e, 1e-4), labels=[_SN_LABELS[t] for t in typ.tolist()],
        subclasses=["Ia-norm" if t == "Ia" else "IIP" for t in typ], metas=metas)



# --------------------------------------------------------------------------------------------
# Surveys on disk
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class SyntheticSurveyConfig(Config):
    """A synthetic survey to generate and write in a real survey format.

    Attributes:
        kind: ``periodic``, ``transients``, ``spectra``, ``stamps`` or ``sn_series``.
        n: number of objects (supernovae for ``sn_series``, alerts for ``stamps``).
        format: file format, a reader name allowed for the kind (see :data:`SURVEY_FORMATS`).
        seed: random seed.
        survey: survey preset of the generator (None: the natural one for the format, e.g.
            ``macho`` for MACHO files, ``ztf`` for ALeRCE tables, ``lsst`` for ELAsTiCC).
        bands: bands of light curves (None: the survey's own).
        chunk_size: objects generated and written at a time (bounds the memory used).
    """

    kind: str = "periodic"
    n: int = 1000
    format: str = "csv"
    seed: int = 0
    survey: str | None = None
    bands: tuple[str, ...] | None = None
    chunk_size: int = 2000

    def __post_init__(self) -> None:
        cls = type(self)
        check(self.kind in SURVEY_FORMATS, cls, "kind", self.kind,
              f"one of {tuple(SURVEY_FORMATS)}")
        check(isinstance(self.n, int) and not isinstance(self.n, bool) and self.n > 0, cls,
              "n", self.n, "a positive integer")
        check(self.format in SURVEY_FORMATS[self.kind], cls, "format", self.format,
              f"for kind {self.kind!r}, one of {SURVEY_FORMATS[self.kind]}")
        check(isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0,
              cls, "seed", self.seed, "a non-negative integer")
        check(self.survey is None or (isinstance(self.survey, str) and self.survey != ""),
              cls, "survey", self.survey, "a non-empty string or null")
        if self.bands is not None:
            if isinstance(self.bands, str):
                self.bands = (self.bands,)
            self.bands = tuple(self.bands)
            check(len(self.bands) > 0 and all(isinstance(b, str) and b for b in self.bands)
                  and len(set(self.bands)) == len(self.bands), cls, "bands", self.bands,
                  "distinct non-empty band names")
            check(self.kind in ("periodic", "transients"), cls, "bands", self.bands,
                  "null unless kind is periodic or transients")
        if self.kind == "stamps":
            check(self.survey in (None, *_STAMP_SURVEYS), cls, "survey", self.survey,
                  f"null or one of {tuple(_STAMP_SURVEYS)} for stamps")
        check(isinstance(self.chunk_size, int) and not isinstance(self.chunk_size, bool)
              and self.chunk_size > 0, cls, "chunk_size", self.chunk_size,
              "a positive integer")


_DEFAULT_BANDS = {"macho": ("B", "R"), "ogle": ("I", "V"), "atlas": ("c", "o"),
                  "ztf": ("g", "r", "i"), "lsst": tuple("ugrizY"), "elasticc": tuple("ugrizY")}


def _survey_defaults(config: SyntheticSurveyConfig) -> tuple[str, tuple[str, ...] | None]:
    fmt = config.format
    if config.kind == "periodic":
        survey = config.survey or {"alerce": "ztf", "ztf_avro": "ztf", "elasticc": "lsst",
                                   "ogle": "ogle", "atlas": "atlas"}.get(fmt, "macho")
        bands = _DEFAULT_BANDS.get(survey, ("B", "R"))
        if survey == "ztf":
            bands = ("g", "r")
    elif config.kind == "transients":
        survey = config.survey or {"elasticc": "lsst", "atlas": "atlas"}.get(fmt, "ztf")
        bands = _DEFAULT_BANDS.get(survey, ("g", "r", "i"))
    elif config.kind == "stamps":
        survey = config.survey or ("B" if fmt == "ztf_avro" else "A")
        bands = None
    else:
        survey = config.survey or "sdss"
        bands = None
    return survey, config.bands or bands


def _generate(config: SyntheticSurveyConfig, survey: str, bands: tuple[str, ...] | None,
              kind: str | None = None, stream: int = 0, **extra: Any) -> Iterator[pa.Table]:
    """Chunks of the survey, generated lazily (each from its own random stream)."""
    kind = kind or config.kind
    # A second generator in the same survey (alert light curves beside stamps) gets a seed of
    # its own, so that the two do not replay the same random numbers.
    seed = config.seed if stream == 0 else int(
        np.random.SeedSequence([config.seed, stream]).generate_state(1)[0])
    for lo, hi in _chunked(config.n, config.chunk_size):
        m = hi - lo
        if kind == "periodic":
            yield periodic_variables(m, seed=seed, bands=bands, survey=survey, start=lo)
        elif kind == "transients":
            yield transients(m, seed=seed, bands=bands, survey=survey, start=lo)
        elif kind == "spectra":
            yield spectra(m, seed=seed, survey=survey, start=lo)
        elif kind == "stamps":
            yield stamps(m, seed=seed, survey=survey, start=lo, **extra)
        else:
            yield sn_spectral_series(m, seed=seed, start=lo)


def make_survey(config: SyntheticSurveyConfig, out_dir: str | Path) -> list[str]:
    """Generate a synthetic survey and write it in a real survey format.

    Objects are generated and written ``config.chunk_size`` at a time. Alerts
    (``ztf_avro``) pair light curves with stamp triplets: for kind ``stamps``, real/bogus
    triplets of survey ``B`` (ZTF-like) with supernova light curves; for light-curve kinds,
    real triplets. Label tables are written beside the data by each writer.

    Args:
        config: what to generate and in which format.
        out_dir: folder to write into (created when missing).

    Returns:
        The paths written.
    """
    from astroray.data import _writers as w

    survey, bands = _survey_defaults(config)
    fmt = config.format
    if fmt == "ztf_avro":
        if config.kind == "stamps":
            lcs = _generate(config, "ztf", ("g", "r", "i"), kind="transients", stream=1)
            cutouts = _generate(config, survey, None)
        else:
            lcs = _generate(config, survey, bands)
            cutouts = _generate(config, "B", None, kind="stamps", stream=1, real_fraction=1.0)
        return w.write_ztf_avro(lcs, cutouts, out_dir, seed=config.seed)
    chunks = _generate(config, survey, bands)
    writer = {"csv": w.write_csv, "macho": w.write_macho, "ogle": w.write_ogle,
              "atlas": w.write_atlas, "alerce": w.write_alerce, "elasticc": w.write_elasticc,
              "sdss": w.write_sdss, "lamost": w.write_lamost, "parquet": w.write_parquet}[fmt]
    return writer(chunks, out_dir)


#: The completion marker of a generated survey: written last, inside its folder, holding the
#: survey's settings, the files written (relative to the folder) and the Parquet rows.
DONE = "_DONE.json"


def generate_survey(config: SyntheticSurveyConfig, folder: str | Path) -> dict[str, Any]:
    """Generate a synthetic survey into ``folder`` once (a finished survey is not redone).

    The survey is finished when ``folder/_DONE.json`` (:data:`DONE`) holds these settings; any
    other content of the folder (a run killed half-way, other settings) is removed and the
    survey generated again. Generation is seeded, so a folder always holds the same files.

    Args:
        config: what to generate and in which format.
        folder: the survey's own folder.

    Returns:
        The marker's content: ``{"synthetic": settings, "files": [paths], "objects": n}``,
        ``files`` as absolute paths and ``objects`` the rows of the Parquet files written
        (0 when the format is not Parquet).
    """
    folder = Path(folder)
    done = folder / DONE
    spec = config.to_dict()
    record = json.loads(done.read_text()) if done.is_file() else None
    if record is None or record.get("synthetic") != spec:
        shutil.rmtree(folder, ignore_errors=True)
        written = make_survey(config, folder)
        objects = sum(pq.ParquetFile(p).metadata.num_rows for p in written
                      if str(p).endswith(".parquet"))
        record = {"synthetic": spec, "objects": objects,
                  "files": [os.path.relpath(p, folder) for p in written]}
        partial = folder / f".{DONE}.partial"
        partial.write_text(json.dumps(record))
        os.replace(partial, done)
    return {**record, "files": [str(folder / f) for f in record["files"]]}
