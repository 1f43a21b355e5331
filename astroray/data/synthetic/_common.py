"""Shared pieces of the synthetic generators: constants, random streams and canonical tables."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.data.schema import LIGHT_CURVE_SCHEMA, SPECTRUM_SCHEMA

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
    from scipy.ndimage import gaussian_filter1d  # lazy: scipy

    noise = gaussian_filter1d(rng.standard_normal((n, length)), sigma=max(width, 0.5), axis=1,
                              mode="wrap")
    return noise / np.maximum(noise.std(axis=1, keepdims=True), 1e-12)


def _planck(wave: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    """Planck f_lambda shape (arbitrary scale) at wave (.., L) for temperature (.., 1)."""
    x = np.clip(_HC_K / (wave * temperature), 1e-6, 700.0)
    return (5000.0 / wave) ** 5 / np.expm1(x)


def _flux_for_mag(mag: np.ndarray, wave: float) -> np.ndarray:
    """f_lambda in 1e-17 erg/s/cm^2/A of an AB magnitude at wavelength ``wave``."""
    return 10.0 ** (-0.4 * (mag + 48.6)) * _C_AA / wave ** 2 / 1e-17
