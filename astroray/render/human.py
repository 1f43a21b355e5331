"""Pictures for people: one annotated matplotlib plot of a light curve or a spectrum.

The model-input pictures (:mod:`astroray.render.lightcurves`, :mod:`astroray.render.spectra`)
are bare tensors without axes. The plots here are for a person looking at one object (the HTML
report's gallery, ``astroray render --human``): axes with units, one colour and marker per band
with a legend, error bars, the object's id, survey, true and predicted class in the title.

Light curves of periodic variables are phase-folded; the choice (:func:`choose_period`) is:

* ``fold="auto"``: a catalogue period (the ``period`` argument, else the record's ``period``
  column, else ``period`` / ``Per`` in its ``meta``) folds when the light curve covers at least
  one period. Otherwise an object whose true or predicted class is a transient or a stochastic
  variable (supernova, TDE, kilonova, AGN, microlensing, flare...) is drawn against time, and so
  is one with fewer than :data:`MIN_POINTS_LS` points or a baseline shorter than
  :data:`MIN_CYCLES` cycles of the shortest period searched. Any other light curve folds at its
  best Lomb-Scargle period when three tests pass:

  1. the peak's false-alarm probability is below :data:`FAP_THRESHOLD` (1e-3: for white noise,
     one light curve in a thousand would fold at a spurious period; Baluev's bound, which errs
     on the side of not folding);
  2. that period explains :data:`TREND_RATIO` (1.5) times more variance than the best slow trend
     (periods beyond the search): a supernova's rise and fall, seen night after night, leaks
     into a "significant" peak too;
  3. it is not the 1-day (or half-day) sampling alias of ground-based surveys (within the
     periodogram's resolution, 1 / baseline).

  On the real samples with their labels ignored, this folds 304 of the 309 Stripe 82 RR Lyrae
  (286 within 1% of the catalogue period, the others at a 1-day alias) and none of the 530 ZTF
  supernovae (BTS, ALeRCE) or the 10 ELAsTiCC transients.
* ``fold="period"``: the catalogue period or nothing; ``fold="lomb_scargle"``: the best
  Lomb-Scargle period whatever the tests say (the subtitle shows its false-alarm probability);
  ``fold="none"``: never fold.

The Lomb-Scargle period (:func:`lomb_scargle_period`) is found in two steps: a fast periodogram
of all bands pooled (each band centred on its weighted mean and scaled by its scatter, so that
bands sharing a period add up) over periods :data:`MIN_PERIOD_DAYS` to baseline /
:data:`MIN_CYCLES`, which gives the false-alarm probability (astropy's multiband periodogram has
none); then its highest peaks are re-measured on a fine grid with astropy's
``LombScargleMultiband`` (one period and one 3-harmonic shape shared by the standardised bands;
VanderPlas & Ivezic 2015), whose best peak wins: harmonics and bands together tell the true
period from its 1-day aliases far better than one sinusoid. Eclipsing binaries may still come
out at half their period, as with any periodogram.

A folded light curve is drawn over two cycles (phase 0 to 2) with phase 0 at maximum light: the
brightest point (smallest magnitude or largest flux) of the best-sampled band
(:func:`fold_phase`). Unfolded light curves are drawn against MJD, or, when the baseline is
shorter than a year or the object is a transient, in days since the first detection.

Spectra are drawn as observed wavelength [Angstrom] against flux in the survey's unit
(``meta.flux_unit``), the raw flux thin and light, masked pixels (``mask != 0`` or
``ivar == 0``) in grey, a lightly smoothed line over it, and common emission and absorption
lines marked at the object's redshift.

The period search and the folding choice (:func:`choose_period`, :func:`lomb_scargle_period`,
:func:`fold_phase` and the constants named above) live in :mod:`astroray.render.periods`, which
the model-input renderer shares; this module draws.

Figures are :class:`matplotlib.figure.Figure` objects drawn by ``FigureCanvasAgg``: no pyplot,
no backend switch and no change to ``rcParams``, so plotting is safe in threads and Ray actors.
Each PNG carries its title and subtitle as PNG text chunks (``Title``, ``Description``), usable
as alt text.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.render.gallery import safe_name
from astroray.render.periods import (
    PeriodChoice,
    catalogue_period,
    choose_period,
    fold_phase,
    is_aperiodic_class,
    positive_float,
    record_meta,
)

__all__ = [
    "BAND_STYLES",
    "SPECTRAL_LINES",
    "LightCurveView",
    "light_curve_view",
    "plot_object",
    "plot_table",
    "render_human",
]

#: Conventional colour and marker per band: (colour, marker). Keys are normalised band names
#: (see ``_band_key``); unknown bands get the leftover colours in order of appearance.
BAND_STYLES: dict[str, tuple[str, str]] = {
    "u": ("#7b2cbf", "v"),  # violet
    "U": ("#7b2cbf", "v"),
    "B": ("#1f5fd6", "o"),  # MACHO / Johnson B: blue
    "g": ("#2ca02c", "o"),  # SDSS, LSST, ZTF g: green
    "c": ("#17becf", "o"),  # ATLAS cyan
    "V": ("#8c9a00", "D"),
    "r": ("#d62728", "s"),  # SDSS, LSST, ZTF r: red
    "R": ("#d62728", "s"),  # MACHO / ZTF R: red
    "o": ("#ff7f0e", "s"),  # ATLAS orange
    "i": ("#c04a00", "D"),  # dark orange
    "I": ("#8b0000", "D"),  # dark red
    "z": ("#8c564b", "^"),  # brown
    "y": ("#5a3a1e", "P"),  # dark brown
}
_BAND_ORDER = ("u", "U", "B", "g", "c", "V", "r", "R", "o", "i", "I", "z", "y")
_FALLBACK = (("#1f77b4", "o"), ("#9467bd", "s"), ("#e377c2", "^"), ("#7f7f7f", "D"),
             ("#bcbd22", "v"), ("#17becf", "P"))
_SURVEY_PREFIX = re.compile(r"^(ztf|lsst|sdss|ps1|panstarrs|des|atlas|decam|hsc)[\s_:-]*",
                            re.IGNORECASE)

#: Lines marked on spectra: (label, vacuum rest wavelengths in Angstrom, emission?). The schema's
#: wavelengths are vacuum, so these are too (the air values are 1-2 A shorter above 3000 A).
SPECTRAL_LINES: tuple[tuple[str, tuple[float, ...], bool], ...] = (
    ("Ly$\\alpha$", (1215.67,), True),
    ("C IV", (1549.06,), True),
    ("Mg II", (2799.12,), True),
    ("[O II]", (3728.48,), True),
    ("Ca K,H", (3934.78, 3969.59), False),
    ("H$\\beta$", (4862.68,), True),
    ("[O III]", (5008.24,), True),
    ("Mg b", (5176.7,), False),
    ("Na D", (5891.58, 5897.56), False),
    ("H$\\alpha$", (6564.61,), True),
)
_KIND_NAMES = {
    "spectrum": "spectrum", "spectra": "spectrum",
    "lightcurve": "lightcurve", "lightcurves": "lightcurve", "light_curve": "lightcurve",
    "light_curves": "lightcurve",
}
_UNIT_LABELS = {
    "1e-17 erg / (s cm2 Angstrom)":
        "$10^{-17}$ erg s$^{-1}$ cm$^{-2}$ $\\AA^{-1}$",
}


# ---------------------------------------------------------------------------------------------
# What a light-curve plot shows (pure)
# ---------------------------------------------------------------------------------------------


def _band_key(name: str) -> str:
    """Normalise a band name to a :data:`BAND_STYLES` key ('ztfg' -> 'g', 'lsstY' -> 'y')."""
    raw = str(name).strip()
    if raw in BAND_STYLES:  # case matters: Johnson R, I, B, U, V are not SDSS r, i
        return raw
    short = _SURVEY_PREFIX.sub("", raw)
    if short in BAND_STYLES:
        return short
    if short.lower() in ("u", "g", "r", "i", "z", "y", "c", "o"):
        return short.lower()
    return raw


@dataclass(frozen=True)
class LightCurveView:
    """The points of a light-curve plot and how its axes read (no drawing).

    Attributes:
        x: (N,) phase in [0, 1) when folded (drawn twice, at x and x + 1), else days (MJD or
            since ``t_ref``).
        values: (N,) magnitudes or fluxes.
        err: (N,) uncertainties.
        bands: (N,) band names as in the record.
        band_order: distinct bands in legend order (by wavelength where known).
        is_mag: magnitudes (y axis inverted) or fluxes.
        choice: the folding decision.
        t_ref: MJD subtracted from the time axis (0 when drawn in MJD or folded).
        x_label: the x-axis label.
        y_label: the y-axis label.
    """

    x: np.ndarray
    values: np.ndarray
    err: np.ndarray
    bands: np.ndarray
    band_order: tuple[str, ...]
    is_mag: bool
    choice: PeriodChoice
    t_ref: float
    x_label: str
    y_label: str


def _classes(record: Mapping[str, Any], predicted_class: str | None) -> list[str | None]:
    return [record.get("label"), predicted_class]


def _band_order(bands: np.ndarray) -> tuple[str, ...]:
    present = list(dict.fromkeys(bands.tolist()))  # order of appearance

    def rank(band: str) -> tuple[int, int]:
        key = _band_key(band)
        known = _BAND_ORDER.index(key) if key in _BAND_ORDER else len(_BAND_ORDER)
        return known, present.index(band)

    return tuple(sorted(present, key=rank))


def light_curve_view(record: Mapping[str, Any], *, period: float | None = None,
                     fold: str = "auto", predicted_class: str | None = None) -> LightCurveView:
    """Work out what the light-curve plot of a record shows: folded or not, and the points.

    Args:
        record: a canonical light-curve row (lists or arrays for ``time``, ``band``, ``mag`` or
            ``flux``, ``err``).
        period: a known period (days) that overrides the record's own.
        fold: ``auto``, ``none``, ``period`` or ``lomb_scargle`` (see :func:`choose_period`).
        predicted_class: the model's class, which (with the true label) tells transients apart.

    Returns:
        The view: x values, y values, bands, labels and the folding decision.

    Raises:
        ValueError: when the record has no points or neither ``mag`` nor ``flux``.
    """
    time = np.asarray(record.get("time") if record.get("time") is not None else [], np.float64)
    mag, flux = record.get("mag"), record.get("flux")
    if mag is None and flux is None:
        raise ValueError(f"object {record.get('object_id')!r}: neither 'mag' nor 'flux'")
    is_mag = mag is not None
    values = np.asarray(mag if is_mag else flux, dtype=np.float64)
    n = time.size
    if n == 0 or values.size != n:
        raise ValueError(f"object {record.get('object_id')!r}: {n} times, {values.size} values")
    raw_bands = record.get("band")
    bands = (np.asarray(raw_bands).astype(str) if raw_bands is not None
             else np.full(n, "band"))
    err = (np.asarray(record["err"], dtype=np.float64) if record.get("err") is not None
           else np.zeros(n))
    known = positive_float(period) if period is not None else catalogue_period(record)
    choice = choose_period(time, values, err, bands, catalogue=known, fold=fold,
                           classes=_classes(record, predicted_class))
    order = _band_order(bands)
    meta = record_meta(record)
    if is_mag:
        system = meta.get("mag_system")
        y_label = f"magnitude ({system})" if system else "magnitude"
    else:
        y_label = "flux [nJy]"
    if choice.folded:
        counts = {b: int(np.sum(bands == b)) for b in order}
        reference = bands == max(order, key=lambda b: counts[b])  # first of the most sampled
        x = fold_phase(time, choice.period, values, is_mag, reference)
        return LightCurveView(x, values, err, bands, order, is_mag, choice, 0.0,
                              "phase (0 = maximum light)", y_label)
    baseline = float(time.max() - time.min())
    transient = choice.aperiodic or any(is_aperiodic_class(c)
                                        for c in _classes(record, predicted_class))
    if transient or baseline < 365.0:
        # First detection: for fluxes (forced photometry), the first point at 5 sigma.
        detected = np.ones(n, bool) if is_mag else values >= 5 * np.maximum(err, 1e-30)
        t_ref = float(time[np.argmax(detected)] if detected.any() else time[0])
        return LightCurveView(time - t_ref, values, err, bands, order, is_mag, choice, t_ref,
                              f"days since first detection (MJD {t_ref:.2f})", y_label)
    return LightCurveView(time, values, err, bands, order, is_mag, choice, 0.0, "MJD", y_label)


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


def _new_axes(size: tuple[float, float], dpi: int, title: str, subtitle: str,
              right: float) -> tuple[Any, Any]:
    """A figure with one axes placed by fixed margins (inches), its title and subtitle set.

    Fixed margins instead of matplotlib's constrained layout, which would double the drawing
    time; they are sized for two title lines, a subtitle, the tick labels, and a legend of
    ``right`` inches beside the axes.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib
        from matplotlib.figure import Figure  # lazy: matplotlib
    except ImportError as exc:  # matplotlib is an optional dependency
        raise ImportError("human plots need matplotlib: pip install matplotlib") from exc

    width, height = size
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    n_lines = title.count("\n") + 1
    left, bottom, top = 0.8, 0.5, 0.12 + 0.17 * n_lines + 0.25
    ax = fig.add_axes((left / width, bottom / height, 1 - (left + right) / width,
                       1 - (bottom + top) / height))
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / height, va="top")
    ax.set_title(subtitle, fontsize=8.5, color="0.3")
    ax.grid(True, color="0.92", lw=0.5)
    ax.tick_params(labelsize=8)
    return fig, ax


def _png(fig: Any, title: str, description: str) -> bytes:
    buf = io.BytesIO()
    fig.canvas.print_png(buf, metadata={"Title": title, "Description": description})
    return buf.getvalue()


def _title(record: Mapping[str, Any], predicted_class: str | None,
           predicted_prob: float | None, redshift: Any = None) -> str:
    """Two lines: id and survey; true and predicted class (and redshift)."""
    head = f"{record.get('object_id', '?')}  ·  {record.get('survey') or 'unknown survey'}"
    parts = []
    if predicted_class is not None:
        prob = _finite(predicted_prob)
        p = f" (p = {prob:.2f})" if prob is not None else ""
        parts.append(f"predicted: {predicted_class}{p}")
    label = record.get("label")
    if label:
        subclass = record.get("subclass")
        parts.append(f"true: {label}" + (f" ({subclass})" if subclass else ""))
    z = _finite(redshift)
    if z is not None:
        parts.append(f"z = {z:.4g}")
    return head + ("\n" + "  ·  ".join(parts) if parts else "")


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _robust_limits(values: np.ndarray, pad: float = 0.08) -> tuple[float, float] | None:
    """Axis limits that keep the bulk of the data when a few far outliers would squash it."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if finite.size >= 20:
        q_lo, q_hi = np.percentile(finite, [1, 99])
        # Only clip when the outliers stretch the range more than twice over.
        if q_hi > q_lo and hi - lo > 2 * (q_hi - q_lo):
            lo, hi = q_lo - 0.25 * (q_hi - q_lo), q_hi + 0.25 * (q_hi - q_lo)
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    return lo - pad * span, hi + pad * span


def _band_styles(order: Sequence[str]) -> dict[str, tuple[str, str]]:
    styles, spare = {}, iter(_FALLBACK * (1 + len(order) // len(_FALLBACK)))
    for band in order:
        key = _band_key(band)
        styles[band] = BAND_STYLES.get(key) or next(spare)
    return styles


def _plot_light_curve(record: Mapping[str, Any], predicted_class: str | None,
                      predicted_prob: float | None, period: float | None, fold: str,
                      dpi: int, size: tuple[float, float]) -> bytes:
    view = light_curve_view(record, period=period, fold=fold, predicted_class=predicted_class)
    title = _title(record, predicted_class, predicted_prob, record.get("redshift"))
    subtitle = view.choice.describe()
    fig, ax = _new_axes(size, dpi, title, subtitle, right=1.15)
    styles = _band_styles(view.band_order)
    n_points = view.x.size
    ms = 3.5 if n_points < 400 else 2.5  # dense light curves (MACHO) would turn into blots
    for band in view.band_order:
        m = view.bands == band
        x, y, e = view.x[m], view.values[m], view.err[m]
        if view.choice.folded:  # two cycles: phase 0-2
            x, y, e = np.r_[x, x + 1.0], np.r_[y, y], np.r_[e, e]
        colour, marker = styles[band]
        ax.errorbar(x, y, yerr=e, fmt=marker, color=colour, ms=ms, mew=0, elinewidth=0.6,
                    capsize=0, alpha=0.8, label=f"{band} ({int(m.sum())})")
    limits = _robust_limits(np.r_[view.values - view.err, view.values + view.err])
    if limits is not None:
        ax.set_ylim(*limits)
    if view.is_mag:
        ax.invert_yaxis()
    if view.choice.folded:
        ax.set_xlim(0.0, 2.0)
        ax.axvline(1.0, color="0.8", lw=0.6, zorder=0)
    ax.set_xlabel(view.x_label)
    ax.set_ylabel(view.y_label)
    # Outside the axes: a legend inside would cover points of a dense light curve.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8,
              title="band (points)", title_fontsize=8, handletextpad=0.3, borderaxespad=0.0)
    return _png(fig, title, subtitle)


def _smooth(flux: np.ndarray, good: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over good pixels only (masked pixels get no weight).

    NaN where the kernel sees too few good pixels.
    """
    half = int(math.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    w = good.astype(np.float64)
    num = np.convolve(np.where(good, flux, 0.0), kernel, mode="same")
    den = np.convolve(w, kernel, mode="same")
    out = np.full(flux.shape, np.nan)
    ok = den > 0.5 * kernel.sum()
    out[ok] = num[ok] / den[ok]
    return out


def _plot_spectrum(record: Mapping[str, Any], predicted_class: str | None,
                   predicted_prob: float | None, dpi: int, size: tuple[float, float]) -> bytes:
    from matplotlib.transforms import blended_transform_factory  # lazy: matplotlib

    wave = np.asarray(record.get("wavelength") if record.get("wavelength") is not None else [],
                      np.float64)
    flux = np.asarray(record.get("flux") if record.get("flux") is not None else [], np.float64)
    if wave.size < 2 or flux.size != wave.size:
        raise ValueError(f"object {record.get('object_id')!r}: {wave.size} wavelengths, "
                         f"{flux.size} fluxes")
    good = np.isfinite(flux)
    if record.get("mask") is not None:
        good &= np.asarray(record["mask"]) == 0
    if record.get("ivar") is not None:
        good &= np.asarray(record["ivar"], np.float64) > 0
    z = _finite(record.get("z"))
    title = _title(record, predicted_class, predicted_prob, z)
    subtitle = ("lines marked at the redshift: emission red, absorption green" if z is not None
                else "redshift unknown: no lines marked")
    fig, ax = _new_axes(size, dpi, title, subtitle, right=1.0)
    ax.plot(wave, np.where(good, flux, np.nan), color="#9ecae1", lw=0.5, label="raw")
    if not good.all():
        ax.plot(wave, np.where(good, np.nan, flux), color="0.75", lw=0.5,
                label="masked")
    sigma = max(2.0, wave.size / 1500)  # ~2 px for SDSS/LAMOST: light, keeps the lines sharp
    smooth = _smooth(np.where(np.isfinite(flux), flux, 0.0), good, sigma)
    ax.plot(wave, smooth, color="#08519c", lw=0.8, label="smoothed")
    limits = _robust_limits(smooth[np.isfinite(smooth)] if np.isfinite(smooth).any()
                            else flux[good])
    if limits is not None:
        ax.set_ylim(*limits)
    ax.set_xlim(wave[0], wave[-1])
    marked = []  # (label, observed wavelengths inside the spectrum, emission?)
    for name, rest, emission in SPECTRAL_LINES if z is not None else ():
        observed = [w * (1 + z) for w in rest if wave[0] <= w * (1 + z) <= wave[-1]]
        if observed:
            marked.append((name, observed, emission))
    if marked:
        if limits is not None:  # headroom above the data for the line labels
            ax.set_ylim(limits[0], limits[1] + 0.18 * (limits[1] - limits[0]))
        where = blended_transform_factory(ax.transData, ax.transAxes)
        for name, observed, emission in marked:
            colour = "#c0392b" if emission else "#2e7d32"
            for w in observed:
                ax.axvline(w, color=colour, lw=0.7, ls=":", alpha=0.8, zorder=0)
            ax.text(observed[0], 0.98, name, transform=where, rotation=90, ha="right",
                    va="top", fontsize=7, color=colour)
    meta = record_meta(record)
    unit = meta.get("flux_unit")
    ax.set_ylabel(f"flux [{_UNIT_LABELS.get(unit, unit)}]" if unit else "flux")
    ax.set_xlabel("observed wavelength [Å] (vacuum)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8,
              borderaxespad=0.0)
    return _png(fig, title, subtitle)


def _kind(kind: str) -> str:
    name = _KIND_NAMES.get(kind)
    if name is None:
        raise ValueError(f"unknown kind {kind!r}; expected 'lightcurve' or 'spectrum'")
    return name


def plot_object(record: Mapping[str, Any], kind: str, *, predicted_class: str | None = None,
                predicted_prob: float | None = None, period: float | None = None,
                fold: str = "auto", dpi: int = 100,
                size: tuple[float, float] | None = None) -> bytes:
    """Draw one object for a person and return the PNG file's bytes.

    Args:
        record: a canonical row as a dict (``Table.to_pylist()`` gives them): a light curve
            (``time``, ``band``, ``mag`` or ``flux``, ``err``) or a spectrum (``wavelength``,
            ``flux``, ``ivar``, ``mask``, ``z``), with ``object_id``, ``survey``, ``label``,
            ``meta``.
        kind: ``lightcurve`` or ``spectrum``.
        predicted_class: the model's class, shown in the title.
        predicted_prob: its probability, shown beside it.
        period: a period (days) to fold at, overriding the record's (light curves).
        fold: ``auto``, ``none``, ``period`` or ``lomb_scargle`` (light curves; module docstring).
        dpi: pixels per inch; the default 100 gives 640 x 400 (light curve) or 720 x 380.
        size: figure size in inches (default (6.4, 4.0) for light curves, (7.2, 3.8) spectra).

    Returns:
        PNG bytes; the title and subtitle are also in the PNG's ``Title`` / ``Description`` text.

    Raises:
        ValueError: unknown kind or fold, or a record without data points.
    """
    if _kind(kind) == "spectrum":
        return _plot_spectrum(record, predicted_class, predicted_prob, dpi, size or (7.2, 3.8))
    return _plot_light_curve(record, predicted_class, predicted_prob, period, fold, dpi,
                             size or (6.4, 4.0))


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _prediction_lookup(predictions: Any) -> dict[str, tuple[str | None, float | None]]:
    """object_id -> (class, probability) from a catalogue table or a mapping."""
    if predictions is None:
        return {}
    if isinstance(predictions, pa.Table):
        names = predictions.column_names
        ids = predictions.column("object_id").to_pylist()
        classes = (predictions.column("predicted_class").to_pylist()
                   if "predicted_class" in names else [None] * len(ids))
        probs = (predictions.column("predicted_prob").to_pylist()
                 if "predicted_prob" in names else [None] * len(ids))
        return {str(i): (c, p) for i, c, p in zip(ids, classes, probs, strict=True)}
    out: dict[str, tuple[str | None, float | None]] = {}
    for oid, value in predictions.items():
        if isinstance(value, Mapping):
            out[str(oid)] = (value.get("predicted_class"), value.get("predicted_prob"))
        elif isinstance(value, tuple | list):
            out[str(oid)] = (value[0], value[1] if len(value) > 1 else None)
        else:
            out[str(oid)] = (None if value is None else str(value), None)
    return out


def plot_table(table: pa.Table, kind: str, *, limit: int | None = None,
               predictions: Any = None, fold: str = "auto",
               dpi: int = 100) -> Iterator[tuple[str, bytes]]:
    """Draw the objects of a canonical table for people, one PNG each, in table order.

    Args:
        table: a canonical light-curve or spectrum table (a ``period`` column, when present and
            not null, is the catalogue period).
        kind: ``lightcurve`` or ``spectrum``.
        limit: draw only the first ``limit`` objects.
        predictions: a catalogue table (``object_id``, ``predicted_class``, ``predicted_prob``)
            or a mapping object_id -> (class, probability), ``{"predicted_class": ...,
            "predicted_prob": ...}`` or class name.
        fold: light-curve folding (see :func:`plot_object`).
        dpi: pixels per inch.

    Yields:
        (object_id, PNG bytes).
    """
    _kind(kind)
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        table = table.slice(0, limit)
    lookup = _prediction_lookup(predictions)
    step = 64  # rows converted to Python at a time: bounded memory on big tables
    for start in range(0, table.num_rows, step):
        for record in table.slice(start, step).to_pylist():
            oid = str(record.get("object_id"))
            cls, prob = lookup.get(oid, (None, None))
            yield oid, plot_object(record, kind, predicted_class=cls, predicted_prob=prob,
                                   fold=fold, dpi=dpi)


def render_human(table: pa.Table, kind: str, out_dir: str | Path, limit: int | None = None,
                 predictions: Any = None, *, fold: str = "auto", dpi: int = 100) -> list[str]:
    """Write one human-readable PNG per object of a canonical table into ``out_dir``.

    Files are named by ``object_id`` as :func:`astroray.render.render_files_to_png` names them
    (made file-name safe; repeated ids get a suffix), so both pictures of an object line up.

    Args:
        table: a canonical light-curve or spectrum table.
        kind: ``lightcurve`` or ``spectrum``.
        out_dir: folder for the PNGs (created).
        limit: draw only the first ``limit`` objects.
        predictions: predicted classes and probabilities (see :func:`plot_table`).
        fold: light-curve folding: ``auto``, ``none``, ``period`` or ``lomb_scargle``.
        dpi: pixels per inch.

    Returns:
        The paths written, in table order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    paths = []
    for oid, png in plot_table(table, kind, limit=limit, predictions=predictions, fold=fold,
                               dpi=dpi):
        base = name = safe_name(oid)
        while name in seen:
            seen[base] += 1
            name = f"{base}_{seen[base]}"
        seen.setdefault(name, 0)
        path = out / f"{name}.png"
        path.write_bytes(png)
        paths.append(str(path))
    return paths
