"""The classical baselines the vision-transformer papers compare with (scikit-learn).

* Spectra: an SVM and a Random Forest on the flux resampled to a common log-wavelength grid
  (:func:`resample_spectra`: inverse-variance-free bin means of the good pixels, gaps filled by
  linear interpolation, each spectrum divided by its median absolute flux so that, as in the
  autoscaled plots, only the shape counts).
* Light curves: the same two on hand-crafted features (:mod:`astroray.features`: Lomb-Scargle
  period, amplitude, percentiles, skewness, colours, ...).

Each baseline is a scikit-learn pipeline that imputes missing values (median), scales (SVM)
and classifies (class weights balanced, as the vision models sample classes evenly) or
regresses (targets standardised).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["BASELINES", "make_baseline", "resample_spectra", "run_baselines", "spectrum_grid"]

#: Baseline names.
BASELINES = ("svm", "rf")


def spectrum_grid(wave_range: tuple[float, float] = (3800.0, 9200.0),
                  n_bins: int = 1000) -> np.ndarray:
    """Edges (n_bins + 1) of a grid uniform in log wavelength (Angstrom)."""
    lo, hi = wave_range
    if not 0 < lo < hi:
        raise ValueError(f"wave_range must be 0 < low < high, got {wave_range}")
    return np.logspace(np.log10(lo), np.log10(hi), n_bins + 1)


def resample_spectra(wavelength: Sequence[Any], flux: Sequence[Any],
                     ivar: Sequence[Any] | None = None, mask: Sequence[Any] | None = None, *,
                     edges: np.ndarray | None = None, normalize: bool = True) -> np.ndarray:
    """Spectra on a common grid: the mean flux of the good pixels in each bin.

    Good pixels have finite wavelength and flux, ``ivar > 0`` and ``mask == 0`` (when given).
    Bins without a good pixel are filled by linear interpolation between the nearest filled
    bins (constant beyond the ends); a spectrum without any good pixel in the range is NaN.

    Args:
        wavelength: per spectrum, wavelengths (Angstrom).
        flux: per spectrum, fluxes.
        ivar: per spectrum, inverse variances, or None.
        mask: per spectrum, bit masks (0 good), or None.
        edges: bin edges (:func:`spectrum_grid` by default).
        normalize: divide each spectrum by the median absolute value of its bins.

    Returns:
        (N, n_bins) float32.
    """
    edges = spectrum_grid() if edges is None else np.asarray(edges, dtype=np.float64)
    n, g = len(flux), edges.size - 1
    lengths = np.array([0 if f is None else len(f) for f in flux], dtype=np.int64)
    obj = np.repeat(np.arange(n), lengths)

    def flat(values: Sequence[Any] | None, fill: float) -> np.ndarray:
        if values is None:
            return np.full(obj.size, fill)
        parts = [np.full(k, fill) if v is None else np.asarray(v, dtype=np.float64).reshape(-1)
                 for v, k in zip(values, lengths, strict=True)]
        return np.concatenate(parts) if parts else np.empty(0)

    w, f = flat(wavelength, np.nan), flat(flux, np.nan)
    good = np.isfinite(w) & np.isfinite(f)
    if ivar is not None:
        iv = flat(ivar, 0.0)
        good &= np.isfinite(iv) & (iv > 0)
    if mask is not None:
        good &= flat(mask, 1.0) == 0
    bins = np.searchsorted(edges, np.where(good, w, -1.0), side="right") - 1
    good &= (bins >= 0) & (bins < g)
    key = obj[good] * g + bins[good]
    sums = np.bincount(key, weights=f[good], minlength=n * g).reshape(n, g)
    counts = np.bincount(key, minlength=n * g).reshape(n, g)
    out = np.full((n, g), np.nan)
    filled = counts > 0
    out[filled] = sums[filled] / counts[filled]
    x = np.arange(g)
    for i in np.flatnonzero(filled.any(axis=1) & ~filled.all(axis=1)):
        out[i] = np.interp(x, x[filled[i]], out[i, filled[i]])
    if normalize:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no scale
            scale = np.nanmedian(np.abs(out), axis=1) if n else np.empty(0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        out = out / scale[:, None]
    return out.astype(np.float32)


def make_baseline(name: str, task: str = "classification", *, seed: int = 0,
                  n_jobs: int = 1) -> Any:
    """A scikit-learn pipeline: ``svm`` (RBF SVC / SVR) or ``rf`` (Random Forest).

    Args:
        name: ``svm`` or ``rf``.
        task: ``classification`` or ``regression``.
        seed: random state.
        n_jobs: Random Forest parallelism.
    """
    from sklearn.compose import TransformedTargetRegressor  # lazy: sklearn
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor  # lazy: sklearn
    from sklearn.impute import SimpleImputer  # lazy: sklearn
    from sklearn.pipeline import make_pipeline  # lazy: sklearn
    from sklearn.preprocessing import StandardScaler  # lazy: sklearn
    from sklearn.svm import SVC, SVR  # lazy: sklearn

    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; one of {BASELINES}")
    if task not in ("classification", "regression"):
        raise ValueError(f"unknown task {task!r}; 'classification' or 'regression'")
    # keep_empty_features: a feature missing in every training object (a band absent from
    # a survey) stays a column of zeros instead of shifting the others.
    impute = SimpleImputer(strategy="median", keep_empty_features=True)
    if name == "svm":
        model = (SVC(C=10.0, gamma="scale", class_weight="balanced", random_state=seed)
                 if task == "classification" else
                 TransformedTargetRegressor(SVR(C=10.0, gamma="scale", epsilon=0.01),
                                            transformer=StandardScaler()))
        return make_pipeline(impute, StandardScaler(), model)
    model = (RandomForestClassifier(n_estimators=300, class_weight="balanced",
                                    random_state=seed, n_jobs=n_jobs)
             if task == "classification" else
             RandomForestRegressor(n_estimators=300, random_state=seed, n_jobs=n_jobs))
    return make_pipeline(impute, model)


def run_baselines(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *,
                  task: str = "classification", names: Sequence[str] = BASELINES,
                  seed: int = 0, n_jobs: int = 1) -> dict[str, dict[str, Any]]:
    """Fit each baseline on the training set and predict the test set.

    Args:
        x_train: (N, F) training features.
        y_train: (N,) training labels or targets.
        x_test: (M, F) test features.
        task: ``classification`` or ``regression``.
        names: baselines to run.
        seed: random state.
        n_jobs: Random Forest parallelism.

    Returns:
        ``{name: {"pred": (M,) array, "fit_seconds", "predict_seconds"}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        model = make_baseline(name, task, seed=seed, n_jobs=n_jobs)
        t0 = time.perf_counter()
        model.fit(x_train, y_train)
        t1 = time.perf_counter()
        pred = model.predict(x_test)
        out[name] = {"pred": np.asarray(pred), "fit_seconds": round(t1 - t0, 3),
                     "predict_seconds": round(time.perf_counter() - t1, 3)}
    return out
