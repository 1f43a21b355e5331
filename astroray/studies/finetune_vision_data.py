"""Data of the vision fine-tuning study: what no seed changes, prepared once per data set.

:func:`prepare_dataset` loads a data set (a generated synthetic survey and/or survey files,
ingested once to canonical Parquet), keeps its labelled objects of the wanted classes, and
computes once what every seed and method of :func:`~astroray.studies.finetune_vision.finetune`
shares: the fixed-size arrays the vision models read, the classical baselines' features, the
periods of every folded layout (a periodogram per object) and the frozen Astromer embeddings
of the Astromer classifier row. :func:`stratified_split` draws each seed's object split.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astroray.features import table_features
from astroray.infer.astromer import embed_table
from astroray.models.astromer import published_folder
from astroray.models.baselines import resample_spectra, spectrum_grid
from astroray.models.vision.processing import (
    LC_COLUMNS,
    SPECTRUM_COLUMNS,
    light_curve_periods,
    prepare_arrays,
    split_layout,
    subclass_label,
)
from astroray.studies.finetune_vision_config import (
    FinetuneConfig,
    VisionDataset,
    label_grouping,
    label_spelling,
)
from astroray.train.astromer import prepare_light_curves

__all__ = ["ASTROMER_MIN_POINTS", "period_key", "prepare_dataset", "stratified_split"]

logger = logging.getLogger(__name__)

#: Fewest points of a band that Astromer embeds (jobs/classify_astromer.yaml's min_points).
ASTROMER_MIN_POINTS = 5


def stratified_split(strata: np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int) -> np.ndarray:
    """0 = train, 1 = val, 2 = test per object; every stratum in every split.

    Args:
        strata: (N,) stratum (class index) of every object.
        val_fraction: share of each stratum for validation (at least one object).
        test_fraction: share of each stratum for the test (at least one object).
        seed: seed of the draw.

    Returns:
        (N,) int8 split of every object.
    """
    rng = np.random.default_rng(seed)
    split = np.zeros(strata.size, dtype=np.int8)
    for s in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == s))
        n_test = max(1, int(round(test_fraction * idx.size)))
        n_val = max(1, int(round(val_fraction * idx.size)))
        split[idx[:n_test]] = 2
        split[idx[n_test:n_test + n_val]] = 1
    return split


def _load_table(ds_cfg: VisionDataset, kind: str, workdir: Path) -> tuple[pa.Table | None, dict]:
    """The data set's canonical table (the columns a vision model reads), ingested once."""
    if not ds_cfg.paths and ds_cfg.synthetic is None and not any(
            Path(p).exists() for p in ds_cfg.optional_paths):
        return None, {"skipped": f"none of {list(ds_cfg.optional_paths)} is present"}
    info = prepare_light_curves(ds_cfg.paths, ds_cfg.optional_paths, ds_cfg.synthetic, workdir)
    wanted = SPECTRUM_COLUMNS if kind == "spectra" else LC_COLUMNS
    tables = []
    for folder in info["parquet"]:
        t = pq.read_table(folder)
        tables.append(t.select([c for c in wanted if c in t.column_names]))
    table = pa.concat_tables(tables, promote_options="default")
    return table, info


def _labels(table: pa.Table, ds_cfg: VisionDataset, task: str) -> tuple[pa.Table, list, dict]:
    """Rows kept (labelled, in the wanted classes, frequent enough) and their labels."""
    if ds_cfg.grouping is not None:
        mapping = label_grouping(ds_cfg.grouping)
        column = "label_raw" if "label_raw" in table.column_names else "label"
        raw = table.column(column).to_pylist()
        labels = [mapping.get(label_spelling(v)) if v is not None else None for v in raw]
    else:
        raw = table.column("label").to_pylist()
        labels = [ds_cfg.label_map.get(v, v) if v is not None else None for v in raw]
    if task == "subclass":
        subs = (table.column("subclass").to_pylist() if "subclass" in table.column_names
                else [None] * len(labels))
        labels = [subclass_label(v, s) for v, s in zip(labels, subs, strict=True)]
    keep = np.array([v is not None and (ds_cfg.classes is None or v in ds_cfg.classes)
                     for v in labels], dtype=bool)
    if task == "redshift":
        z = np.asarray(table.column("z").to_numpy(zero_copy_only=False), dtype=np.float64)
        keep &= np.isfinite(z)
    kept = [v for v, k in zip(labels, keep, strict=True) if k]
    counts = {c: kept.count(c) for c in sorted(set(kept))}
    rare = {c: n for c, n in counts.items() if n < ds_cfg.min_class_count}
    keep &= np.array([v not in rare for v in labels], dtype=bool)
    info = {"labelled": int(sum(v is not None for v in labels)), "rare_classes_dropped": rare}
    rows = np.flatnonzero(keep)
    return table.take(pa.array(rows)), [labels[i] for i in rows], info


def _baseline_features(table: pa.Table, kind: str, bins: int,
                       bands: list[str] | None) -> np.ndarray:
    """The baselines' features: resampled flux (spectra) or light-curve features."""
    if kind == "spectra":
        cols = {c: table.column(c).to_pylist() for c in ("wavelength", "flux", "ivar", "mask")}
        return resample_spectra(cols["wavelength"], cols["flux"], cols["ivar"], cols["mask"],
                                edges=spectrum_grid(n_bins=bins))
    feats, _ = table_features(table, bands=bands)
    return feats


def prepare_dataset(ds_cfg: VisionDataset, cfg: FinetuneConfig, out: Path) -> dict[str, Any]:
    """Everything about a data set that no seed changes, computed once.

    The table and labels, the fixed-size arrays, the baselines' features, the periods of every
    folded layout (a periodogram per object) and the Astromer embeddings.

    Args:
        ds_cfg: the data set.
        cfg: the study's settings (kind, task, layouts, baselines, Astromer encoder).
        out: the study's output folder (the canonical Parquet goes to ``out/data/NAME``).

    Returns:
        ``{"skipped", "data"}`` when the data set cannot be used (absent, no objects, fewer
        than two classes); else ``{"table", "classes", "y", "arrays", "prep", "info", "z",
        "features", "feature_seconds", "periods", "astromer"}``: ``periods`` maps
        :func:`period_key` to ``{"period", "power", "info"}``, ``astromer`` is None without an
        encoder, else its embeddings ``x`` (or ``skipped``, the reason).
    """
    table, info = _load_table(ds_cfg, cfg.kind, out / "data" / ds_cfg.name)
    if table is None or table.num_rows == 0:
        return {"skipped": info.get("skipped", "no objects"), "data": info}
    table, labels, label_info = _labels(table, ds_cfg, cfg.task)
    info.update(label_info)
    classes = sorted(set(labels))
    if len(classes) < 2 and cfg.task != "redshift":
        return {"skipped": f"fewer than two classes: {classes}", "data": info}
    y_cls = np.array([classes.index(v) for v in labels], dtype=np.int64)
    arrays, prep = prepare_arrays(table, cfg.kind, max_length=cfg.max_length,
                                  bands=ds_cfg.bands)
    z = (np.asarray(table.column("z").to_numpy(zero_copy_only=False), dtype=np.float64)
         if cfg.task == "redshift" else None)
    t0 = time.perf_counter()
    feats = _baseline_features(table, cfg.kind, cfg.baseline_bins, prep.get("bands"))
    feature_seconds = time.perf_counter() - t0
    periods: dict[str, dict[str, Any]] = {}
    for layout in cfg.layouts:
        if cfg.kind != "lightcurves" or split_layout(layout)[1] == "none":
            continue
        render_cfg = cfg.render_config(layout)
        key = period_key(render_cfg)
        if key not in periods:
            t0 = time.perf_counter()
            period, power = light_curve_periods(table, render_cfg)
            periods[key] = {"period": period, "power": power,
                            "info": _period_info(table, period, power,
                                                 time.perf_counter() - t0)}
            logger.info("%s: periods of %s: %s", ds_cfg.name, layout, periods[key]["info"])
    astromer = None
    if cfg.astromer is not None:
        astromer = _astromer_embeddings(table, cfg)
        logger.info("%s: Astromer embeddings: %s", ds_cfg.name,
                    {k: v for k, v in astromer.items() if k != "x"})
    return {"table": table, "classes": classes, "y": y_cls, "arrays": arrays, "prep": prep,
            "info": info, "z": z, "features": feats, "feature_seconds": feature_seconds,
            "periods": periods, "astromer": astromer}


def period_key(render_cfg: Any) -> str:
    """What the periods of a folded picture depend on.

    Args:
        render_cfg: a folded :class:`~astroray.render.LightCurveRenderConfig`.

    Returns:
        A key shared by the layouts whose periods are the same.
    """
    return (f"{render_cfg.fold}/{render_cfg.period_fallback}/{render_cfg.min_period}/"
            f"{render_cfg.max_period}")


def _period_info(table: pa.Table, period: np.ndarray, power: np.ndarray,
                 seconds: float) -> dict[str, Any]:
    """How many objects fold, and how often a searched period matches the catalogue's."""
    found = np.isfinite(period)
    info: dict[str, Any] = {"objects": int(period.size), "folded": int(found.sum()),
                            "searched": int(np.isfinite(power).sum()),
                            "seconds": round(seconds, 2)}
    if "period" in table.column_names:
        known = np.array([np.nan if p is None else float(p)
                          for p in table.column("period").to_pylist()])
        both = found & np.isfinite(power) & np.isfinite(known) & (known > 0)
        if both.any():
            ratio = period[both] / known[both]
            info["searched_with_catalogue"] = int(both.sum())
            info["within_1pct_of_catalogue"] = round(float(np.mean(np.abs(ratio - 1) < 0.01)), 4)
            info["within_1pct_of_catalogue_or_half_double"] = round(float(np.mean(
                np.min(np.abs(ratio[:, None] * [1.0, 2.0, 0.5] - 1), axis=1) < 0.01)), 4)
    return info


def _astromer_embeddings(table: pa.Table, cfg: FinetuneConfig) -> dict[str, Any]:
    """Frozen per-band Astromer layer means of every object (the classifier's input).

    The encoder's windows and embeddings follow ``jobs/classify_astromer.py`` (the Astromer
    papers' protocol): per-band layer means, concatenated over the bands (Astromer is a
    single-band model).
    """
    folder, why = published_folder(cfg.astromer)
    if folder is None:
        return {"skipped": why}
    t0 = time.perf_counter()
    x = embed_table(table, folder, random_init=False, seed=0, min_points=ASTROMER_MIN_POINTS,
                    actor_cpus=cfg.actor_cpus, embedding="band_concat")
    return {"x": x, "encoder": folder, "seconds": round(time.perf_counter() - t0, 2),
            "without_windows": int(np.isnan(x).all(axis=(1, 2)).sum())}
