"""Figure of the OT time-series comparison: true vs interpolated spectra and light curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from astroray.ot.photometry import SyntheticPhotometry
from astroray.ot.series import build_time_series

__all__ = ["plot_series_comparison"]

_COLOURS = {"exact": "tab:red", "entropic": "tab:orange", "linear": "tab:blue"}


def _pick(supernovae: pa.Table, n: int) -> list[int]:
    """Rows of up to ``n`` supernovae, alternating between types."""
    types = supernovae.column("type").to_pylist()
    by_type: dict[str, list[int]] = {}
    for i, t in enumerate(types):
        by_type.setdefault(t, []).append(i)
    picked: list[int] = []
    while len(picked) < n and any(by_type.values()):
        for rows in by_type.values():
            if rows and len(picked) < n:
                picked.append(rows.pop(0))
    return picked


def plot_series_comparison(supernovae: pa.Table, config: Any, phot: SyntheticPhotometry,
                           path: str | Path) -> Path:
    """Plot, for a few supernovae at the largest gap, spectra and light curves: truth vs methods.

    Args:
        supernovae: one row per supernova (:func:`astroray.studies.ot_timeseries.group_supernovae`).
        config: the :class:`~astroray.studies.ot_timeseries.OTTimeSeriesConfig`.
        phot: synthetic photometry of the supernovae's grid.
        path: PNG to write.

    Returns:
        The path written.
    """
    import matplotlib  # lazy: matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib

    rows = _pick(supernovae, config.n_plot)
    gap = max(config.gaps)
    lc_bands = [b for b in ("V", "r", "B", "g") if b in phot.bands][:2] or phot.bands[:1]
    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 3.6 * len(rows)), squeeze=False)
    for ax_row, r in zip(axes, rows, strict=True):
        wave = np.asarray(supernovae.column("wavelength")[r].values, dtype=np.float64)
        mjd = np.asarray(supernovae.column("mjd")[r].values, dtype=np.float64)
        phase = np.asarray(supernovae.column("phase")[r].values, dtype=np.float64)
        flux = np.asarray(supernovae.column("flux")[r].values,
                          dtype=np.float64).reshape(mjd.size, wave.size)
        step = max(1, int(round(gap / float(np.median(np.diff(mjd))))))
        kept = np.arange(0, mjd.size, step)
        span = np.arange(kept[0], kept[-1] + 1)
        series = {m: build_time_series(wave, mjd[kept], flux[kept], mjd[span], m,
                                       gap_scale=config.gap_scale, reg=config.reg,
                                       n_bins=config.n_bins) for m in config.methods}
        # Spectra half way between two kept epochs, early and late.
        ax = ax_row[0]
        mids = [kept[min(1, kept.size - 2)] + step // 2, kept[max(kept.size - 2, 0)] + step // 2]
        scale = np.nanmax(flux[sorted(set(mids))])
        for k, e in enumerate(dict.fromkeys(mids)):
            off = 1.1 * k
            ax.plot(wave, flux[e] / scale + off, color="k", lw=1.0,
                    label="truth" if k == 0 else None)
            for m, s in series.items():
                ax.plot(wave, s.flux[e - span[0]] / scale + off, color=_COLOURS[m], lw=0.8,
                        label=m if k == 0 else None)
            ax.text(wave[-1], off + 0.05, f"phase {phase[e]:+.0f} d", ha="right", fontsize=8)
        sn_id, sn_type = supernovae.column("sn_id")[r].as_py(), supernovae.column("type")[r]
        ax.set(title=f"{sn_id} ({sn_type}): spectra mid-gap, gap {gap:g} d",
               xlabel="wavelength (A)", ylabel="f_lambda (scaled, offset)")
        ax.legend(fontsize=8)
        # Light curves in AB magnitudes.
        ax = ax_row[1]
        true_mag = phot.ab_mags(flux)
        for b in lc_bands:
            j = phot.bands.index(b)
            ax.plot(phase, true_mag[:, j], color="k", lw=1.0)
            ax.plot(phase[kept], true_mag[kept, j], "ko", ms=4)
            for m, s in series.items():
                ax.plot(phase[span], phot.ab_mags(s.flux)[:, j], color=_COLOURS[m], lw=0.9,
                        ls="-" if b == lc_bands[0] else "--")
            ax.text(phase[0], true_mag[0, j], b, fontsize=9)
        ax.invert_yaxis()
        ax.set(title=f"light curves {', '.join(lc_bands)} (dots: kept epochs)",
               xlabel="phase (rest days)", ylabel="AB mag")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
