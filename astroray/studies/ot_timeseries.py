"""Evaluate OT and linear interpolation of supernova spectral time series against truth.

Each supernova of a dense spectral survey with known truth (one spectrum a day) is thinned to
one epoch every ``gap`` days, rebuilt at every original epoch inside the kept span by each
method, and measured through real filter curves. A point is one (supernova, gap, method,
interpolated epoch, band); its relative residual is ``|F_interp - F_true| / F_true`` of the
band flux, and the table gives, per band and gap (all supernovae and per type), the fraction
of points below ``threshold`` (10% in the published comparison). Ray Data runs the supernovae
in parallel (an actor pool of :class:`SupernovaEvaluator`); a supernova that cannot be
evaluated goes to the errors table with its id and the reason.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astroray.config import Config, check
from astroray.data.inputs import check_inputs, resolve_inputs
from astroray.data.schema import error_table
from astroray.ot.ot import METHODS
from astroray.ot.photometry import BANDS, SyntheticPhotometry
from astroray.ot.plots import plot_series_comparison
from astroray.ot.series import build_time_series
from astroray.runtime import check_actor_pool, init_ray

__all__ = [
    "OTTimeSeriesConfig",
    "SupernovaEvaluator",
    "evaluate_supernova",
    "group_supernovae",
    "residual_table",
    "run_ot_timeseries",
]

log = logging.getLogger(__name__)

_ROW_KEYS = ("sn_id", "type", "gap", "method", "band", "phase", "interpolated", "residual",
             "uncertainty", "error")


@dataclasses.dataclass
class OTTimeSeriesConfig(Config):
    """Settings of ``jobs/ot_timeseries.py``.

    Attributes:
        paths: canonical spectrum Parquet files whose ``meta`` has ``sn_id`` and ``mjd``.
        optional_paths: the same, skipped when absent.
        synthetic: a ``sn_series`` :class:`~astroray.data.synthetic.SyntheticSurveyConfig`
            (its mapping), generated as the input (the truth is its full cadence).
        bands: bands to measure (keys of :data:`astroray.ot.photometry.BANDS`); those the
            spectra do not cover are skipped with the reason in the results.
        gaps: days between kept epochs.
        methods: interpolation methods (``exact``, ``entropic``, ``linear``).
        threshold: relative band-flux residual a point must stay below.
        min_coverage: least share of a band's response inside the spectra.
        gap_scale: days for the gap uncertainty to reach one (see :mod:`astroray.ot.series`).
        reg: entropic regularisation.
        n_bins: coarse bins of the entropic barycenter.
        num_actors: evaluator actors.
        actor_cpus: CPUs per actor (fractional, so that reading is not starved).
        n_plot: supernovae drawn in the figure (alternating types).
    """

    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: Any = None
    bands: tuple[str, ...] = tuple(BANDS)
    gaps: tuple[float, ...] = (3.0, 5.0, 10.0, 20.0)
    methods: tuple[str, ...] = ("exact", "linear")
    threshold: float = 0.1
    min_coverage: float = 0.99
    gap_scale: float = 100.0
    reg: float = 1e-3
    n_bins: int = 128
    num_actors: int = 2
    actor_cpus: float = 0.5
    n_plot: int = 2

    def __post_init__(self) -> None:
        check_inputs(self)
        cls = type(self)
        if self.synthetic is not None:
            check(self.synthetic.kind == "sn_series", cls, "synthetic", self.synthetic,
                  "a synthetic survey of kind sn_series")
        self.bands, self.gaps = tuple(self.bands), tuple(float(g) for g in self.gaps)
        self.methods = tuple(self.methods)
        check(bool(self.bands) and all(b in BANDS for b in self.bands), cls, "bands",
              self.bands, f"a non-empty subset of {tuple(BANDS)}")
        check(bool(self.gaps) and all(g > 0 for g in self.gaps), cls, "gaps", self.gaps,
              "positive numbers of days")
        check(bool(self.methods) and all(m in METHODS for m in self.methods), cls, "methods",
              self.methods, f"a non-empty subset of {METHODS}")
        check(0 < self.threshold < 1, cls, "threshold", self.threshold, "a number in (0, 1)")
        check(0 < self.min_coverage <= 1, cls, "min_coverage", self.min_coverage,
              "a number in (0, 1]")
        check(self.gap_scale > 0, cls, "gap_scale", self.gap_scale, "a positive number")
        check(self.reg > 0, cls, "reg", self.reg, "a positive number")
        check(isinstance(self.n_bins, int) and self.n_bins >= 8, cls, "n_bins", self.n_bins,
              "an integer >= 8")
        check(isinstance(self.num_actors, int) and self.num_actors > 0, cls, "num_actors",
              self.num_actors, "a positive integer")
        check(0 < self.actor_cpus <= 64, cls, "actor_cpus", self.actor_cpus,
              "a number in (0, 64]")
        check(isinstance(self.n_plot, int) and self.n_plot >= 0, cls, "n_plot", self.n_plot,
              "a non-negative integer")

    def smoke(self) -> OTTimeSeriesConfig:
        """This configuration shrunk to well under a minute on 2 CPUs."""
        synthetic = (self.synthetic.replace(n=min(self.synthetic.n, 4))
                     if self.synthetic is not None else None)
        return self.replace(synthetic=synthetic, gaps=self.gaps[:2],
                            methods=tuple(m for m in self.methods if m != "entropic"),
                            num_actors=1, actor_cpus=0.5)


# ------------------------------------------------------------------------------------------
# One supernova
# ------------------------------------------------------------------------------------------


def evaluate_supernova(
    wavelength: np.ndarray,
    mjd: np.ndarray,
    flux: np.ndarray,
    phot: SyntheticPhotometry,
    gaps: Sequence[float],
    methods: Sequence[str],
    *,
    phase: np.ndarray | None = None,
    gap_scale: float = 100.0,
    reg: float = 1e-3,
    n_bins: int = 128,
) -> dict[str, np.ndarray]:
    """Residuals of rebuilt synthetic photometry of one supernova, per gap and method.

    Args:
        wavelength: grid ``(L,)``.
        mjd: epochs ``(E,)`` of the dense truth series.
        flux: truth spectra ``(E, L)``.
        phot: synthetic photometry of the grid.
        gaps: days between kept epochs; each keeps one epoch every ``round(gap / cadence)``.
        methods: interpolation methods.
        phase: phase of each epoch ``(E,)`` (defaults to days from the first epoch).
        gap_scale: see :func:`astroray.ot.series.build_time_series`.
        reg: entropic regularisation.
        n_bins: entropic coarse bins.

    Returns:
        Columns ``gap``, ``method``, ``band``, ``phase``, ``interpolated``, ``residual``,
        ``uncertainty`` of every (gap, method, epoch inside the kept span, band) point.
    """
    order = np.argsort(mjd)
    mjd, flux = np.asarray(mjd, dtype=np.float64)[order], np.asarray(flux)[order]
    phase = mjd - mjd[0] if phase is None else np.asarray(phase, dtype=np.float64)[order]
    if mjd.size < 3:
        raise ValueError(f"too few epochs ({mjd.size}) to drop any")
    if not np.all(np.isfinite(flux)):
        raise ValueError("truth spectra contain NaN/inf")
    cadence = float(np.median(np.diff(mjd)))
    truth = phot.band_fluxes(flux)  # (E, B)
    if np.any(truth <= 0):
        raise ValueError("a truth band flux is not positive")
    n_bands = len(phot.bands)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("gap", "method", "band", "phase",
                                                          "interpolated", "residual",
                                                          "uncertainty")}
    for gap in gaps:
        step = max(1, int(round(gap / cadence)))
        kept = np.arange(0, mjd.size, step)
        if kept.size < 2:
            raise ValueError(f"fewer than 2 epochs kept at a {gap:g}-day gap "
                             f"(series of {mjd[-1] - mjd[0]:.1f} days)")
        span = np.arange(kept[0], kept[-1] + 1)  # every truth epoch inside the kept span
        interpolated = ~np.isin(span, kept)
        for method in methods:
            series = build_time_series(wavelength, mjd[kept], flux[kept], mjd[span], method,
                                       gap_scale=gap_scale, reg=reg, n_bins=n_bins)
            rebuilt = phot.band_fluxes(series.flux)  # (T, B)
            resid = np.abs(rebuilt - truth[span]) / truth[span]  # (T, B)
            n = resid.size
            cols["gap"].append(np.full(n, gap))
            cols["method"].append(np.full(n, method, dtype=object))
            cols["band"].append(np.tile(np.array(phot.bands, dtype=object), span.size))
            cols["phase"].append(np.repeat(phase[span], n_bands))
            cols["interpolated"].append(np.repeat(interpolated, n_bands))
            cols["residual"].append(resid.ravel())
            cols["uncertainty"].append(np.repeat(series.uncertainty, n_bands))
    return {k: np.concatenate(v) for k, v in cols.items()}


class SupernovaEvaluator:
    """Ray Data batch function: evaluate each supernova of a batch (one row per supernova).

    Args:
        config: the job's configuration, as a mapping (:meth:`Config.to_dict`).
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = OTTimeSeriesConfig.from_dict(dict(config))
        self._phot: dict[bytes, SyntheticPhotometry] = {}

    def _photometry(self, wavelength: np.ndarray) -> SyntheticPhotometry:
        key = wavelength.tobytes()
        if key not in self._phot:  # one weight matrix per wavelength grid
            self._phot[key] = SyntheticPhotometry(wavelength, self.config.bands,
                                                  min_coverage=self.config.min_coverage)
        return self._phot[key]

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Residual rows of every supernova of the batch, and one error row per failure."""
        cfg = self.config
        parts: list[dict[str, np.ndarray]] = []
        for i, sn_id in enumerate(batch["sn_id"]):
            sn_type = str(batch["type"][i])
            try:
                wave = np.asarray(batch["wavelength"][i], dtype=np.float64)
                mjd = np.asarray(batch["mjd"][i], dtype=np.float64)
                flux = np.asarray(batch["flux"][i], dtype=np.float64).reshape(mjd.size,
                                                                              wave.size)
                rows = evaluate_supernova(
                    wave, mjd, flux, self._photometry(wave), cfg.gaps, cfg.methods,
                    phase=np.asarray(batch["phase"][i], dtype=np.float64),
                    gap_scale=cfg.gap_scale, reg=cfg.reg, n_bins=cfg.n_bins)
                n = rows["residual"].size
                rows.update(sn_id=np.full(n, str(sn_id), dtype=object),
                            type=np.full(n, sn_type, dtype=object),
                            error=np.full(n, "", dtype=object))
            except (ValueError, FloatingPointError) as exc:
                rows = {"sn_id": np.array([str(sn_id)], dtype=object),
                        "type": np.array([sn_type], dtype=object), "gap": np.array([np.nan]),
                        "method": np.array([""], dtype=object),
                        "band": np.array([""], dtype=object), "phase": np.array([np.nan]),
                        "interpolated": np.array([False]), "residual": np.array([np.nan]),
                        "uncertainty": np.array([np.nan]),
                        "error": np.array([f"{type(exc).__name__}: {exc}"], dtype=object)}
            parts.append(rows)
        return {k: np.concatenate([p[k] for p in parts]) for k in _ROW_KEYS}


# ------------------------------------------------------------------------------------------
# Input: one row per supernova
# ------------------------------------------------------------------------------------------


def group_supernovae(table: pa.Table) -> tuple[pa.Table, list[dict[str, str]]]:
    """Group a canonical spectrum table (one row per epoch) into one row per supernova.

    Args:
        table: spectra whose ``meta`` JSON has ``sn_id`` and ``mjd`` (``phase``, ``type``
            optional; the type falls back to ``label``).

    Returns:
        ``(supernovae, errors)``: columns ``sn_id``, ``type``, ``wavelength`` ``(L,)``,
        ``mjd`` ``(E,)``, ``phase`` ``(E,)`` and ``flux`` ``(E * L,)`` (epochs in time
        order); error rows (``object_id``, ``stage``, ``error``) of spectra or supernovae
        left out.
    """
    metas = table.column("meta").to_pylist()
    labels = table.column("label").to_pylist()
    ids = table.column("object_id").to_pylist()
    errors: list[dict[str, str]] = []
    epochs: dict[str, list[int]] = {}
    info: list[tuple[str, float, float, str]] = []
    for row, (oid, meta, label) in enumerate(zip(ids, metas, labels, strict=True)):
        m = json.loads(meta) if meta else {}
        if "sn_id" not in m or m.get("mjd") is None:
            errors.append({"object_id": oid, "stage": "group",
                           "error": "meta lacks sn_id or mjd"})
            info.append(("", 0.0, 0.0, ""))
            continue
        info.append((m["sn_id"], float(m["mjd"]), float(m.get("phase", np.nan)),
                     str(m.get("type") or label or "")))
        epochs.setdefault(m["sn_id"], []).append(row)
    waves, fluxes = table.column("wavelength"), table.column("flux")
    out: dict[str, list[Any]] = {k: [] for k in ("sn_id", "type", "wavelength", "mjd", "phase",
                                                 "flux")}
    for sn_id, rows in epochs.items():
        rows = sorted(rows, key=lambda r: info[r][1])
        wave = np.asarray(waves[rows[0]].values, dtype=np.float32)
        if any(len(waves[r]) != wave.size or not np.array_equal(
                np.asarray(waves[r].values, dtype=np.float32), wave) for r in rows[1:]):
            errors.append({"object_id": sn_id, "stage": "group",
                           "error": "epochs are not on one wavelength grid"})
            continue
        out["sn_id"].append(sn_id)
        out["type"].append(info[rows[0]][3])
        out["wavelength"].append(wave)
        out["mjd"].append(np.array([info[r][1] for r in rows]))
        out["phase"].append(np.array([info[r][2] for r in rows]))
        out["flux"].append(np.concatenate([np.asarray(fluxes[r].values, dtype=np.float32)
                                           for r in rows]))  # (E * L,)
    sn = pa.table({"sn_id": pa.array(out["sn_id"], pa.string()),
                   "type": pa.array(out["type"], pa.string()),
                   "wavelength": pa.array(out["wavelength"], pa.list_(pa.float32())),
                   "mjd": pa.array(out["mjd"], pa.list_(pa.float64())),
                   "phase": pa.array(out["phase"], pa.list_(pa.float64())),
                   "flux": pa.array(out["flux"], pa.list_(pa.float32()))})
    return sn, errors


# ------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------


def residual_table(rows: Mapping[str, np.ndarray], methods: Sequence[str],
                   threshold: float = 0.1) -> list[dict[str, Any]]:
    """Fraction of interpolated points with relative residual below ``threshold``.

    Args:
        rows: the evaluator's columns (error rows, ``error`` non-empty, are ignored).
        methods: the methods, one fraction column each.
        threshold: relative residual a point must stay below.

    Returns:
        One row per (type: ``all`` then each type, gap, band) with ``n`` (points per method)
        and, per method, the fraction below the threshold and the median residual
        (``<method>_median``).
    """
    import pandas as pd  # lazy: pandas

    df = pd.DataFrame({k: rows[k] for k in ("type", "gap", "method", "band", "interpolated",
                                            "residual", "error")})
    df = df[(df["error"] == "") & df["interpolated"]]
    if df.empty:
        return []
    df["below"] = df["residual"] < threshold
    band_order = {b: i for i, b in enumerate(BANDS)}
    table = []
    for sn_type in ["all", *sorted(df["type"].unique())]:
        part = df if sn_type == "all" else df[df["type"] == sn_type]
        stats = part.groupby(["gap", "band", "method"]).agg(
            n=("below", "size"), frac=("below", "mean"), median=("residual", "median"))
        for gap, band in sorted({(g, b) for g, b, _ in stats.index},
                                key=lambda gb: (gb[0], band_order.get(gb[1], 99))):
            row: dict[str, Any] = {"type": sn_type, "gap": float(gap), "band": band}
            for method in methods:
                if (gap, band, method) in stats.index:
                    s = stats.loc[(gap, band, method)]
                    row["n"] = int(s["n"])
                    row[method] = round(float(s["frac"]), 4)
                    row[f"{method}_median"] = round(float(s["median"]), 5)
            table.append(row)
    return table


def markdown_table(table: Sequence[Mapping[str, Any]], methods: Sequence[str],
                   threshold: float) -> str:
    """The residual table as Markdown, one section per type."""
    lines = []
    for sn_type in dict.fromkeys(r["type"] for r in table):
        lines += [f"### {sn_type}: fraction of interpolated points with |relative band-flux "
                  f"residual| < {threshold:g}", "",
                  "| gap (d) | band | points | " + " | ".join(methods) + " |",
                  "| ---: | :--- | ---: | " + " | ".join("---:" for _ in methods) + " |"]
        for r in table:
            if r["type"] == sn_type:
                vals = " | ".join(f"{r[m]:.3f}" if m in r else "-" for m in methods)
                lines.append(f"| {r['gap']:g} | {r['band']} | {r.get('n', 0)} | {vals} |")
        lines.append("")
    return "\n".join(lines)


def _uncertainty_rank_correlation(rows: Mapping[str, np.ndarray], method: str) -> float | None:
    """Spearman correlation of the uncertainty factor with the residual (interpolated points)."""
    import pandas as pd  # lazy: pandas

    df = pd.DataFrame({k: rows[k] for k in ("method", "interpolated", "residual",
                                            "uncertainty", "error")})
    df = df[(df["error"] == "") & df["interpolated"] & (df["method"] == method)]
    if len(df) < 3:
        return None
    value = df["uncertainty"].rank().corr(df["residual"].rank())
    return None if not np.isfinite(value) else round(float(value), 4)


# ------------------------------------------------------------------------------------------
# The job
# ------------------------------------------------------------------------------------------


def _read_input(config: OTTimeSeriesConfig, out: Path) -> tuple[pa.Table, dict[str, Any]]:
    resolved = resolve_inputs(config.paths, config.optional_paths, config.synthetic, out,
                              to_parquet=False)
    paths = resolved.paths
    info: dict[str, Any] = {"paths": resolved.present}
    if config.synthetic is not None:
        info["synthetic"] = config.synthetic.to_dict()
    files = []
    for p in paths:
        files += sorted(Path(p).rglob("*.parquet")) if Path(p).is_dir() else [Path(p)]
    return pa.concat_tables([pq.read_table(f) for f in files]), info


def run_ot_timeseries(config: OTTimeSeriesConfig, out: str | Path) -> dict[str, Any]:
    """Run the comparison: residual tables, errors, a Markdown table and a figure.

    Args:
        config: the job's configuration.
        out: output folder (``table.md``, ``points.parquet``, ``errors.parquet``,
            ``ot_timeseries.png``).

    Returns:
        A summary: ``table``, ``markdown``, ``bands``, ``counts``, ``uncertainty``, paths.
    """
    import ray  # lazy: ray

    init_ray()  # joins the running Ray (or RAY_ADDRESS), else starts a local one
    # The repartition before the actors runs as tasks of 1 CPU each.
    check_actor_pool("OTTimeSeriesConfig", config.num_actors, config.actor_cpus, 1.0)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spectra, data_info = _read_input(config, out)
    supernovae, errors = group_supernovae(spectra)
    log.info("ot_timeseries: %d spectra of %d supernovae", spectra.num_rows,
             supernovae.num_rows)
    n_blocks = max(1, min(supernovae.num_rows, 4 * config.num_actors))
    ds = ray.data.from_arrow(supernovae).repartition(n_blocks)
    ds = ds.map_batches(SupernovaEvaluator, fn_constructor_kwargs={"config": config.to_dict()},
                        batch_size=1, batch_format="numpy", num_cpus=config.actor_cpus,
                        compute=ray.data.ActorPoolStrategy(size=config.num_actors))
    result = ds.to_arrow_refs()
    points = pa.concat_tables(ray.get(result)) if result else pa.table(
        {k: pa.array([], pa.string()) for k in _ROW_KEYS})
    rows = {k: points.column(k).to_numpy(zero_copy_only=False) for k in _ROW_KEYS}
    failed = rows["error"] != ""
    for sn_id, msg in zip(rows["sn_id"][failed], rows["error"][failed], strict=True):
        errors.append({"object_id": str(sn_id), "stage": "evaluate", "error": str(msg)})
    err = error_table([{"source": "ot_timeseries", "kind": "supernova", **e} for e in errors])
    pq.write_table(err, out / "errors.parquet")
    pq.write_table(points.filter(pa.compute.equal(points.column("error"), "")),
                   out / "points.parquet")
    table = residual_table(rows, config.methods, config.threshold)
    markdown = markdown_table(table, config.methods, config.threshold)
    (out / "table.md").write_text(markdown)
    phot = SyntheticPhotometry(np.asarray(supernovae.column("wavelength")[0].values),
                               config.bands, min_coverage=config.min_coverage) \
        if supernovae.num_rows else None
    figure = None
    if config.n_plot and supernovae.num_rows and phot is not None:

        figure = str(plot_series_comparison(supernovae, config, phot,
                                            out / "ot_timeseries.png"))
    evaluated = set(rows["sn_id"][~failed].tolist())
    return {
        "table": table, "markdown": str(out / "table.md"),
        "bands": phot.describe() if phot is not None else {},
        "counts": {"spectra": spectra.num_rows, "supernovae": supernovae.num_rows,
                   "evaluated": len(evaluated), "failed": len(errors),
                   "points": int((~failed).sum())},
        "uncertainty_spearman": {m: _uncertainty_rank_correlation(rows, m)
                                 for m in config.methods},
        "figure": figure, "errors": str(out / "errors.parquet"),
        "points": str(out / "points.parquet"), "data": data_info,
    }
