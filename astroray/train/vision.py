"""Fine-tuning vision transformers on spectra and light curves rendered on the fly (Ray Train).

:func:`finetune` prepares each data set (a generated synthetic survey and/or survey files,
ingested once to canonical Parquet), splits it by object into train / validation / test
(stratified by class), fits the classical baselines (:mod:`astroray.models.baselines`) on the
same split, and fine-tunes a :class:`~astroray.models.vision.VisionTransformer` with a
``TorchTrainer``: the raw arrays (padded to a fixed length) travel as Ray Data shards and every
training step renders its batch with :func:`astroray.render.render_spectra` or
:func:`astroray.render.render_light_curves` *on the worker's device*, so that no image is ever
written or shipped. AdamW with a linear warm-up and cosine decay, class-balanced resampling of
each batch (weights 1 / class frequency), bf16 autocast on GPUs, a checkpoint every epoch (the
model folder, the optimizer state, and the best model so far under ``best/``) and early
stopping on the validation macro F1 (classification) or R^2 (regression). The best model is
then scored on the test split by a Ray Data actor (:class:`VisionPredictor`) that renders and
predicts on its own device.

Light curves may be drawn folded (layouts such as ``overlay:lomb_scargle``): each object's
period is found once, when the arrays are prepared (:func:`light_curve_periods`), travels with
the arrays and is recorded in the model's ``render.json``. With several ``seeds`` every seed
draws its own object split, shared by the vision runs, the baselines and the optional Astromer
classifier (a frozen published encoder + the papers' MLP), and the table reports the mean and
spread of each method; what no seed changes (data, features, periods, embeddings) is computed
once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from astroray.config import Config, check, check_positive_ints, check_training
from astroray.data.inputs import check_inputs
from astroray.data.synthetic import SyntheticSurveyConfig

__all__ = ["RENDER_SPEC", "FinetuneConfig", "VisionDataset", "VisionPredictor", "finetune",
           "format_table", "label_grouping", "light_curve_periods", "prepare_arrays",
           "render_batch", "split_layout", "write_render_spec"]

logger = logging.getLogger(__name__)

KINDS = ("spectra", "lightcurves")
TASKS = ("class", "subclass", "redshift")
LAYOUTS = {"spectra": ("single", "overlap_split"), "lightcurves": ("overlay", "grid")}
#: Light-curve layouts may be folded: ``overlay:lomb_scargle``, ``grid:period``.
FOLDS = ("period", "lomb_scargle")


def split_layout(name: str) -> tuple[str, str]:
    """``'overlay:lomb_scargle'`` -> ``('overlay', 'lomb_scargle')``; no suffix: ``'none'``."""
    layout, _, fold = str(name).partition(":")
    return layout, fold or "none"


def _valid_layout(kind: str, name: Any) -> bool:
    if not isinstance(name, str):
        return False
    layout, fold = split_layout(name)
    if kind != "lightcurves":
        return fold == "none" and layout in LAYOUTS[kind]
    return layout in LAYOUTS[kind] and (fold == "none" or fold in FOLDS)


@dataclasses.dataclass
class VisionDataset(Config):
    """One labelled data set to fine-tune and evaluate on.

    Attributes:
        name: its name in the results.
        paths: survey files/folders or canonical Parquet (ingested).
        optional_paths: the same, used when present (the data set is skipped when nothing is).
        synthetic: a labelled synthetic survey to generate.
        label_map: renames labels (``{"ab": "RRab"}``); others are kept.
        classes: keep only these classes (after renaming); None keeps all labelled objects.
        bands: light-curve band order (colours and panels); None: the bands present.
        min_class_count: classes with fewer objects are dropped (and counted).
        apply_paths: survey files whose objects each fine-tuned model predicts after training
            (used when present; e.g. the few real SDSS/LAMOST spectra, too few to train on):
            the results list their catalogue class / redshift beside the prediction.
        grouping: a label set of ``groupings`` in ``astroray/data/taxonomy.yaml`` (e.g.
            ``elasticc20``, the SwinV2 paper's 20 ELAsTiCC classes): labels come from the
            source's own spelling (``label_raw``: a model name or class id), mapped by
            :func:`label_grouping`; objects outside the grouping are left out. None: the
            canonical ``label`` (then ``label_map``).
    """

    name: str = "synthetic"
    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: SyntheticSurveyConfig | None = None
    label_map: dict[str, str] = dataclasses.field(default_factory=dict)
    classes: tuple[str, ...] | None = None
    bands: tuple[str, ...] | None = None
    min_class_count: int = 3
    apply_paths: tuple[str, ...] = ()
    grouping: str | None = None

    def __post_init__(self) -> None:
        self.apply_paths = tuple(self.apply_paths)
        if self.grouping is not None:
            try:
                label_grouping(self.grouping)
            except KeyError as exc:
                check(False, self, "grouping", self.grouping, str(exc.args[0]))
        if self.classes is not None:
            self.classes = tuple(self.classes)
        if self.bands is not None:
            self.bands = tuple(self.bands)
        check(isinstance(self.name, str) and self.name != "" and "/" not in self.name, self,
              "name", self.name, "a non-empty name without '/'")
        check_inputs(self)
        check(isinstance(self.label_map, dict), self, "label_map", self.label_map,
              "a mapping of label renames")
        check(isinstance(self.min_class_count, int) and self.min_class_count >= 3, self,
              "min_class_count", self.min_class_count, "an integer >= 3 (one per split)")


def _spelling(value: Any) -> str:
    """A raw label as text: numbers as integers where integral (``2222.0`` is ``2222``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def label_grouping(name: str) -> dict[str, str]:
    """Source spelling -> class of a grouping of ``astroray/data/taxonomy.yaml``.

    The spellings are each class's own name, its simulation model names and its class ids
    (as text); e.g. ``label_grouping("elasticc20")["SNIax"] == "Iax"``.

    Raises:
        KeyError: for an unknown grouping (the message lists the known ones).
    """
    groupings = _groupings()
    if name not in groupings:
        raise KeyError(f"one of {sorted(groupings)}")
    out: dict[str, str] = {}
    for cls, entry in groupings[name]["classes"].items():
        for spelling in [cls, *entry.get("models", ()), *entry.get("class_ids", ())]:
            out[_spelling(spelling)] = str(cls)
    return out


def _groupings() -> dict[str, Any]:
    """The ``groupings`` section of the packaged taxonomy file."""
    from importlib import resources

    import yaml

    text = resources.files("astroray.data").joinpath("taxonomy.yaml").read_text()
    return yaml.safe_load(text).get("groupings") or {}


# Model fields a smoke run keeps (the rest describe the full-size model it replaces).
_SMOKE_OVERRIDES = ("uncertainty", "passes", "hidden_dropout", "attention_dropout",
                    "head_dropout")


@dataclasses.dataclass
class FinetuneConfig(Config):
    """Settings of ``jobs/finetune_vit_spectra.py`` and ``jobs/finetune_swin_lightcurves.py``.

    Attributes:
        kind: ``spectra`` or ``lightcurves``.
        task: ``class`` (object class), ``subclass`` (spectra: class and subclass, stellar
            types by their letter) or ``redshift`` (spectra: ``z / z_max`` by MSE).
        model: registry name (``vit-b16-spectra``, ``swinv2-t-lightcurves``, tiny variants).
        model_overrides: model config fields changed from the registered ones.
        load_pretrained: copy the backbone weights of the model's ``pretrained`` checkpoints
            when available locally (else random initialisation, said in one warning line).
        datasets: the data sets; each is fine-tuned and evaluated on its own.
        layouts: picture layouts, one run each (spectra: ``single``/``overlap_split``; light
            curves: ``overlay``/``grid``, drawn against time, or ``overlay:lomb_scargle``,
            ``grid:period``, ...: folded at the best Lomb-Scargle period or the catalogue
            period, which are found once per object before training and saved in the model's
            ``render.json`` so that bulk inference and Serve fold the same way).
        render: further fields of the render config (size, layout and fold are set from the
            model and ``layouts``); ``preset`` names a
            :data:`~astroray.render.config.LIGHT_CURVE_PRESETS` picture to start from.
        max_length: pixels per spectrum or points per light curve kept (longer ones are
            thinned evenly); shorter ones are padded.
        val_fraction: fraction of each class for validation (early stopping).
        test_fraction: fraction of each class for the test set.
        epochs: most passes over the training objects.
        batch_size: images per step and worker.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_fraction: fraction of the steps of the linear warm-up (then cosine decay).
        grad_clip: gradient-norm clip (0: none).
        weighted_sampling: resample each training batch with weights 1 / class frequency.
        patience: epochs without validation improvement before stopping.
        z_max: redshift scale of the regression target; None: the training maximum.
        baselines: baselines fitted on the same split (``svm``, ``rf``).
        baseline_bins: wavelength bins of the spectra resampled for the baselines.
        baseline_jobs: Random Forest parallelism.
        num_workers: Ray Train workers (DDP).
        use_gpu: one GPU per worker (NCCL, bf16 autocast); None: when the cluster has them.
        cpus_per_worker: CPUs reserved per worker.
        predict_cpus: CPUs of the test-set prediction actor.
        eval_batch_size: images per validation / prediction batch.
        name: run-name prefix under ``OUT/ray``; re-running with the same output resumes.
        max_failures: worker-group restarts allowed.
        fail_at_epoch: test hook: the last worker raises once at the start of this epoch.
        seed: seed of the splits, the initialisation and the sampling.
        seeds: several seeds, each with its own object split (shared by every method of that
            seed) and initialisation; the table gives the mean and spread of each method's
            test figures. Empty: ``seed`` only.
        astromer: an Astromer encoder (published weights such as ``astromer1-macho``, or a
            model folder) for an extra light-curve row: its frozen per-band embeddings
            (computed once) and the Astromer papers' classifier (weighted per-sample
            embedding, MLP 1024-512-256) trained on each seed's training objects with early
            stopping on its validation objects. None: no such row.
        astromer_head_steps: most optimizer steps of that classifier.
    """

    kind: str = "spectra"
    task: str = "class"
    model: str = "vit-b16-spectra"
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    load_pretrained: bool = True
    datasets: tuple[VisionDataset, ...] = ()
    layouts: tuple[str, ...] = ("single",)
    render: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_length: int = 4700
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    grad_clip: float = 1.0
    weighted_sampling: bool = True
    patience: int = 3
    z_max: float | None = None
    baselines: tuple[str, ...] = ("svm", "rf")
    baseline_bins: int = 1000
    baseline_jobs: int = 1
    num_workers: int = 2
    use_gpu: bool | None = None
    cpus_per_worker: float = 0.5
    predict_cpus: float = 0.5
    eval_batch_size: int = 64
    name: str = "vision"
    max_failures: int = 1
    fail_at_epoch: int | None = None
    seed: int = 0
    seeds: tuple[int, ...] = ()
    astromer: str | None = None
    astromer_head_steps: int = 2000

    def __post_init__(self) -> None:
        from astroray.models import list_models
        from astroray.models.baselines import BASELINES

        self.datasets = tuple(d if isinstance(d, VisionDataset) else VisionDataset.from_dict(d)
                              for d in self.datasets)
        self.layouts = tuple(self.layouts)
        self.baselines = tuple(self.baselines)
        check(self.kind in KINDS, self, "kind", self.kind, f"one of {KINDS}")
        check(self.task in TASKS, self, "task", self.task, f"one of {TASKS}")
        check(self.kind == "spectra" or self.task == "class", self, "task", self.task,
              "'class' for light curves")
        check(self.model in list_models(), self, "model", self.model, f"one of {list_models()}")
        check(isinstance(self.model_overrides, dict), self, "model_overrides",
              self.model_overrides, "a mapping of config fields")
        check(len(self.datasets) > 0, self, "datasets", self.datasets, "at least one data set")
        names = [d.name for d in self.datasets]
        check(len(set(names)) == len(names), self, "datasets", names, "distinct names")
        folds = f", optionally ':' + one of {FOLDS}" if self.kind == "lightcurves" else ""
        check(len(self.layouts) > 0 and all(_valid_layout(self.kind, v) for v in self.layouts)
              and len(set(self.layouts)) == len(self.layouts), self, "layouts", self.layouts,
              f"distinct values of {LAYOUTS[self.kind]}{folds}")
        self.seeds = tuple(self.seeds)
        check(all(isinstance(v, int) and not isinstance(v, bool) for v in self.seeds)
              and len(set(self.seeds)) == len(self.seeds), self, "seeds", self.seeds,
              "distinct integers")
        check(self.astromer is None or (self.kind == "lightcurves" and isinstance(
            self.astromer, str) and self.astromer), self, "astromer", self.astromer,
              "null, or an Astromer encoder name or folder (light curves only)")
        check_positive_ints(self, "astromer_head_steps")
        check(isinstance(self.render, dict), self, "render", self.render,
              "a mapping of render config fields")
        check(all(b in BASELINES for b in self.baselines), self, "baselines", self.baselines,
              f"names from {BASELINES}")
        check_positive_ints(self, "max_length", "epochs", "batch_size", "patience", "baseline_bins",
                            "baseline_jobs", "eval_batch_size")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and 0.0 < value < 0.5, self, name, value,
                  "a number in (0, 0.5)")
        for name in ("lr", "predict_cpus"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and value > 0, self, name, value,
                  "a positive number")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and value >= 0, self, name, value,
                  "a non-negative number")
        check(isinstance(self.warmup_fraction, int | float) and 0 <= self.warmup_fraction < 1,
              self, "warmup_fraction", self.warmup_fraction, "a number in [0, 1)")
        check(self.z_max is None or (isinstance(self.z_max, int | float) and self.z_max > 0),
              self, "z_max", self.z_max, "a positive number or null")
        check_training(self)
        self.render_config(self.layouts[0])  # invalid render fields fail here

    def model_config(self) -> Any:
        """The registered model config with ``model_overrides`` applied."""
        from astroray.models import get_config

        return get_config(self.model, **self.model_overrides)

    def render_config(self, layout: str) -> Any:
        """The picture for ``layout`` (``'overlay:lomb_scargle'`` folds), at the model's size."""
        from astroray.render import LightCurveRenderConfig, SpectrumRenderConfig

        size = self.model_config().image_size
        if self.kind == "spectra":
            return SpectrumRenderConfig.from_dict({**self.render, "height": size, "width": size,
                                                   "layout": layout})
        name, fold = split_layout(layout)
        fields = {**self.render, "height": size, "width": size, "layout": name, "fold": fold}
        preset = fields.pop("preset", None)
        if preset is not None:
            base = LightCurveRenderConfig.preset(preset, layout=name).to_dict()
            fields = {**{k: v for k, v in base.items() if k not in fields}, **fields}
        return LightCurveRenderConfig.from_dict(fields)

    @property
    def run_seeds(self) -> tuple[int, ...]:
        """The seeds run: ``seeds``, or ``seed`` alone."""
        return self.seeds or (self.seed,)

    def smoke(self) -> FinetuneConfig:
        """This configuration shrunk to run in a couple of minutes on 2 CPUs."""
        datasets = []
        for d in self.datasets:
            synthetic = d.synthetic.replace(n=min(d.synthetic.n, 300),
                                            chunk_size=min(d.synthetic.chunk_size, 300)
                                            ) if d.synthetic else None
            datasets.append(d.replace(synthetic=synthetic))
        tiny = "vit-tiny-spectra" if self.kind == "spectra" else "swinv2-tiny-lightcurves"
        kept = {k: v for k, v in self.model_overrides.items() if k in _SMOKE_OVERRIDES}
        if "passes" in kept:
            kept["passes"] = min(int(kept["passes"]), 5)
        return self.replace(model=tiny, model_overrides=kept, load_pretrained=False,
                            datasets=tuple(datasets), layouts=self.layouts[:1], seeds=(),
                            astromer=None,
                            epochs=min(self.epochs, 2), batch_size=min(self.batch_size, 16),
                            lr=max(self.lr, 1e-3), max_length=min(self.max_length, 4700),
                            baseline_bins=min(self.baseline_bins, 300), patience=2,
                            eval_batch_size=min(self.eval_batch_size, 64))


# ------------------------------------------------------------------------------------------
# Data: canonical tables -> fixed-size arrays, splits, labels
# ------------------------------------------------------------------------------------------

SPECTRUM_COLUMNS = ["object_id", "wavelength", "flux", "ivar", "mask", "z", "label",
                    "subclass"]
LC_COLUMNS = ["object_id", "time", "band", "mag", "flux", "err", "label", "label_raw",
              "period"]


def _subclass_label(label: str | None, subclass: str | None) -> str | None:
    """``CLASS_SUBCLASS``; stellar spectral types (``G2``, ``M3V``) by their letter only."""
    if label is None:
        return None
    sub = (subclass or "").strip()
    if not sub:
        return label
    if label == "STAR" and sub[0].upper() in "OBAFGKMLT":
        sub = sub[0].upper()
    return f"{label}_{sub}"


def _thin(length: int, max_length: int) -> np.ndarray:
    """Indices of at most ``max_length`` points spread evenly over ``length``."""
    if length <= max_length:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, max_length).round().astype(np.int64))


def _pad(rows: list[np.ndarray], width: int, dtype: Any, fill: Any) -> np.ndarray:
    out = np.full((len(rows), width), fill, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def light_curve_periods(table: pa.Table, render: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per object of a canonical table: the period a folded picture uses, and its power.

    :func:`astroray.render.lightcurves.fold_periods` over every point of each object (before
    any thinning), with the table's ``period`` column as the catalogue period. All NaN when
    ``render`` does not fold.
    """
    from astroray.render.lightcurves import fold_periods

    names = table.column_names
    n = table.num_rows
    if not render.folded:
        return np.full(n, np.nan), np.full(n, np.nan)
    mags = table.column("mag").to_pylist() if "mag" in names else [None] * n
    fluxes = table.column("flux").to_pylist() if "flux" in names else [None] * n
    values = [m if m is not None else f for m, f in zip(mags, fluxes, strict=True)]
    catalogue = table.column("period").to_pylist() if "period" in names else None
    return fold_periods(table.column("time").to_pylist(), values,
                        table.column("err").to_pylist(), table.column("band").to_pylist(),
                        config=render, catalogue=catalogue)


def prepare_arrays(table: pa.Table, kind: str, *, max_length: int,
                   bands: tuple[str, ...] | None = None,
                   render: Any = None) -> tuple[dict[str, np.ndarray], dict]:
    """Fixed-size arrays of a canonical table, as the renderers take them.

    Spectra: ``wavelength`` (B, L) float32 and ``flux`` (B, L) float32 with NaN at bad pixels
    (``ivar <= 0`` or ``mask != 0``: gaps in the line), ``length`` (B,). Light curves:
    ``time`` (B, L) float64, ``value`` (B, L) float32 (magnitudes where present, else fluxes),
    ``err`` (B, L) float32, ``band`` (B, L) int8 index into the band list (-1 padding),
    ``is_mag`` (B,) bool, ``length`` (B,); with a folding ``render`` config also ``period``
    and ``period_power`` (B,) float64 (:func:`light_curve_periods`: the periodogram runs
    here, once per object, not in the renderer).

    Returns:
        ``(arrays, info)``; ``info`` holds the band list (light curves) and thinning counts.
    """
    info: dict[str, Any] = {"thinned": 0}
    if kind == "spectra":
        waves, fluxes = [], []
        for w, f, iv, m in zip(*(table.column(c).to_pylist() for c in
                                 ("wavelength", "flux", "ivar", "mask")), strict=True):
            w = np.asarray(w if w is not None else [], dtype=np.float32)
            f = np.asarray(f if f is not None else [], dtype=np.float32).copy()
            bad = ~np.isfinite(f)
            if iv is not None:
                bad |= ~(np.asarray(iv, dtype=np.float32) > 0)
            if m is not None:
                bad |= np.asarray(m) != 0
            f[bad] = np.nan
            keep = _thin(w.size, max_length)
            info["thinned"] += int(keep.size < w.size)
            waves.append(w[keep])
            fluxes.append(f[keep])
        width = max([1] + [w.size for w in waves])
        arrays = {"wavelength": _pad(waves, width, np.float32, np.inf),
                  "flux": _pad(fluxes, width, np.float32, np.nan),
                  "length": np.array([w.size for w in waves], dtype=np.int64)}
        return arrays, info
    names = table.column_names
    n = table.num_rows
    mags = table.column("mag").to_pylist() if "mag" in names else [None] * n
    fluxes = table.column("flux").to_pylist() if "flux" in names else [None] * n
    times, band_lists, errs = (table.column(c).to_pylist() for c in ("time", "band", "err"))
    if bands is None:
        from astroray.render.config import CANONICAL_BANDS

        present = {b for bl in band_lists if bl for b in bl}
        rank = {b: i for i, b in enumerate(CANONICAL_BANDS)}
        bands = tuple(sorted(present, key=lambda b: (rank.get(b, len(rank)), b)))
    index = {b: i for i, b in enumerate(bands)}
    t_rows, v_rows, e_rows, b_rows, is_mag = [], [], [], [], []
    for t, b, e, m, f in zip(times, band_lists, errs, mags, fluxes, strict=True):
        t = np.asarray(t if t is not None else [], dtype=np.float64)
        values = m if m is not None else f
        v = np.asarray(values if values is not None else np.full(t.size, np.nan),
                       dtype=np.float32)
        e = np.asarray(e if e is not None else np.full(t.size, np.nan), dtype=np.float32)
        bi = np.array([index.get(x, -1) for x in (b or [])], dtype=np.int8)
        order = np.argsort(t, kind="stable")
        keep = order[_thin(order.size, max_length)]
        info["thinned"] += int(keep.size < t.size)
        t_rows.append(t[keep])
        v_rows.append(v[keep])
        e_rows.append(e[keep])
        b_rows.append(bi[keep])
        is_mag.append(m is not None)
    width = max([1] + [t.size for t in t_rows])
    arrays = {"time": _pad(t_rows, width, np.float64, np.nan),
              "value": _pad(v_rows, width, np.float32, np.nan),
              "err": _pad(e_rows, width, np.float32, np.nan),
              "band": _pad(b_rows, width, np.int8, -1),
              "is_mag": np.array(is_mag, dtype=bool),
              "length": np.array([t.size for t in t_rows], dtype=np.int64)}
    info["bands"] = list(bands)
    if render is not None and getattr(render, "folded", False):
        arrays["period"], arrays["period_power"] = light_curve_periods(table, render)
    return arrays, info


def _stratified_split(strata: np.ndarray, val_fraction: float, test_fraction: float,
                      seed: int) -> np.ndarray:
    """0 = train, 1 = val, 2 = test per object; every stratum in every split."""
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
    from astroray.train.astromer import prepare_light_curves

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
        labels = [mapping.get(_spelling(v)) if v is not None else None for v in raw]
    else:
        raw = table.column("label").to_pylist()
        labels = [ds_cfg.label_map.get(v, v) if v is not None else None for v in raw]
    if task == "subclass":
        subs = (table.column("subclass").to_pylist() if "subclass" in table.column_names
                else [None] * len(labels))
        labels = [_subclass_label(v, s) for v, s in zip(labels, subs, strict=True)]
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
    if kind == "spectra":
        from astroray.models.baselines import resample_spectra, spectrum_grid

        cols = {c: table.column(c).to_pylist() for c in ("wavelength", "flux", "ivar", "mask")}
        return resample_spectra(cols["wavelength"], cols["flux"], cols["ivar"], cols["mask"],
                                edges=spectrum_grid(n_bins=bins))
    from astroray.features import table_features

    feats, _ = table_features(table, bands=bands)
    return feats


def _tensor_dataset(arrays: dict[str, np.ndarray], rows: np.ndarray, blocks: int) -> Any:
    """A Ray Dataset of the given rows with tensor columns (a few blocks, for sharding)."""
    import ray
    from ray.data.extensions import ArrowTensorArray

    tables = []
    for part in np.array_split(rows, max(1, min(blocks, rows.size))):
        cols = {k: (ArrowTensorArray.from_numpy(np.ascontiguousarray(v[part])) if v.ndim > 1
                    else pa.array(v[part])) for k, v in arrays.items()}
        tables.append(pa.table(cols))
    ds = ray.data.from_arrow(tables)
    ds.context.enable_progress_bars = False
    return ds


# ------------------------------------------------------------------------------------------
# Rendering and the training loop (runs on every Ray Train worker)
# ------------------------------------------------------------------------------------------


#: Written beside a fine-tuned vision model: the input kind, render config, bands, length cap.
RENDER_SPEC = "render.json"


def write_render_spec(model_dir: str | Path, kind: str, render: dict[str, Any],
                      max_length: int, bands: list[str] | tuple[str, ...] | None) -> Path:
    """Save how inputs are drawn for a vision model (``model_dir/render.json``)."""
    import json

    path = Path(model_dir) / RENDER_SPEC
    path.write_text(json.dumps({"kind": kind, "render": render, "max_length": int(max_length),
                                "bands": None if bands is None else list(bands)}, indent=2))
    return path


def render_batch(batch: dict[str, torch.Tensor], kind: str, render_cfg: Any) -> torch.Tensor:
    """Render a batch of prepared arrays (on their device) as (B, 3, H, W) uint8 images.

    Always renders under ``torch.inference_mode()``, as the Ray Data render stages do: the
    renderer caches work buffers per device, and a buffer made in inference mode cannot be
    reused outside it (nor the reverse). Outside inference mode the images are cloned into a
    normal tensor that training can use.
    """
    from astroray.render import render_light_curves, render_spectra

    inside = torch.is_inference_mode_enabled()
    with torch.inference_mode():
        if kind == "spectra":
            images = render_spectra(batch["wavelength"], batch["flux"], lengths=batch["length"],
                                    config=render_cfg)
        else:
            images = render_light_curves(batch["time"], batch["value"], batch["err"],
                                         batch["band"].long(), lengths=batch["length"],
                                         magnitude=batch["is_mag"], config=render_cfg,
                                         period=_batch_period(batch, render_cfg))
    return images if inside else images.clone()


def _batch_period(batch: dict[str, torch.Tensor], render_cfg: Any) -> torch.Tensor | None:
    """The batch's ``period`` column for a folded picture (None when it does not fold)."""
    if not getattr(render_cfg, "folded", False):
        return None
    if "period" not in batch:
        # Searching here would run a periodogram per object in every training step.
        raise ValueError("a folded picture needs the periods found when the arrays were "
                         "prepared: prepare_arrays(..., render=<the folding config>)")
    return batch["period"]


def _lr_lambda(warmup: int, total: int):
    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _score(task: str, y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    from astroray.eval import classification_metrics, redshift_metrics

    if task == "regression":
        return redshift_metrics(y_true, y_pred)
    m = classification_metrics(y_true, y_pred, labels=list(range(len(labels))))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]}


def _gather(values: list[np.ndarray]) -> list[np.ndarray]:
    """Concatenate per-worker arrays across the process group (every worker gets all)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, values)
        return [np.concatenate([g[i] for g in gathered]) for i in range(len(values))]
    return values


def _evaluate(model: torch.nn.Module, shard: Any, kind: str, render_cfg: Any, task: str,
              device: torch.device, batch_size: int, labels: list[str]) -> dict[str, Any]:
    """Validation figures over every worker's shard (the same on every worker)."""
    target_scale = float(model.config.target_scale)
    from astroray.train.trainer import autocast

    model.eval()
    ys, ps = [], []
    with torch.inference_mode():
        for batch in shard.iter_torch_batches(batch_size=batch_size, device=device):
            images = render_batch(batch, kind, render_cfg)
            with autocast(device):
                out = model(images).float()
            pred = out.argmax(-1) if task == "classification" else out * target_scale
            ys.append(batch["target"].float().cpu().numpy())
            ps.append(pred.float().cpu().numpy())
    model.train()
    y = np.concatenate(ys) if ys else np.empty(0)
    p = np.concatenate(ps) if ps else np.empty(0)
    y, p = _gather([y, p])
    if task == "classification":
        y, p = y.astype(np.int64), p.astype(np.int64)
    return _score(task, y, p, labels)


def _train_loop(loop_config: dict[str, Any]) -> dict[str, Any]:
    """Per-worker loop: resume, fine-tune epochs, validate, checkpoint, stop early."""
    import ray.train
    import ray.train.torch
    from ray.train import Checkpoint

    from astroray.models import create_model
    from astroray.models.vision import VisionTransformer
    from astroray.train.checkpoint import load_checkpoint, save_checkpoint, unwrap
    from astroray.train.trainer import autocast, in_lockstep, mark_progress

    cfg = FinetuneConfig.from_dict(loop_config["config"])
    kind, layout = cfg.kind, loop_config["layout"]
    render_cfg = cfg.render_config(layout)
    if kind == "lightcurves":
        render_cfg = render_cfg.replace(bands=tuple(loop_config["bands"]))
    labels: list[str] = loop_config["labels"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(round(cfg.cpus_per_worker))))
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **{**cfg.model_overrides, **loop_config["model_fields"]})
    mcfg = model.config
    task = mcfg.task
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = int(loop_config["total_steps"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(int(cfg.warmup_fraction * total), total))
    state: dict[str, Any] = {"epoch": -1, "history": [], "best": -math.inf, "best_epoch": -1,
                             "bad_epochs": 0, "attempts": 0, "pretrained": None}
    best_state: dict[str, torch.Tensor] | None = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state.update(load_checkpoint(folder, model, optimizer, scheduler,
                                         map_location=device))
            if (Path(folder) / "best").is_dir():
                best_state = VisionTransformer.from_pretrained(Path(folder) / "best").state_dict()
    elif cfg.load_pretrained and rank == 0:
        # DDP broadcasts rank 0's weights to the others: one load, one warning line at most.
        state["pretrained"] = model.load_backbone()
        model.to(device)
    state["attempts"] += 1
    start_epoch = state["epoch"] + 1
    ddp_model = ray.train.torch.prepare_model(model) if world > 1 else model
    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    marker = Path(loop_config["fail_marker"])
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed * 1000 + rank)
    epochs_run = []
    for epoch in range(start_epoch, cfg.epochs):
        if state["bad_epochs"] >= cfg.patience:
            break
        if cfg.fail_at_epoch == epoch and rank == world - 1 and not marker.exists():
            marker.write_text(f"injected failure at epoch {epoch} on rank {rank}\n")
            raise RuntimeError(f"injected failure at epoch {epoch} on rank {rank}")
        started = time.perf_counter()
        render_seconds, total_loss, steps, images_seen = 0.0, 0.0, 0, 0
        ddp_model.train()
        batches = train_shard.iter_torch_batches(batch_size=cfg.batch_size, device=device,
                                                 local_shuffle_buffer_size=4 * cfg.batch_size)
        for batch in in_lockstep(batches, device):
            if cfg.weighted_sampling and task == "classification":
                # Class-balanced resampling of the batch (weights 1 / class frequency).
                pick = torch.multinomial(batch["weight"].float().cpu(), batch["weight"].shape[0],
                                         replacement=True, generator=generator).to(device)
                batch = {k: v[pick] for k, v in batch.items()}
            t0 = time.perf_counter()
            images = render_batch(batch, kind, render_cfg)  # (B, 3, H, W) uint8, on device
            render_seconds += time.perf_counter() - t0
            with autocast(device):
                out = ddp_model(images)
            if task == "classification":
                loss = torch.nn.functional.cross_entropy(out.float(), batch["target"].long())
            else:
                target = batch["target"].float() / mcfg.target_scale
                loss = torch.nn.functional.mse_loss(out.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(ddp_model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            total_loss += float(loss.detach())
            steps += 1
            images_seen += int(images.shape[0])
        train_seconds = time.perf_counter() - started
        counts = torch.tensor([images_seen, steps, total_loss], dtype=torch.float64,
                              device=device)
        if world > 1:
            torch.distributed.all_reduce(counts)
        val = _evaluate(unwrap(ddp_model), val_shard, kind, render_cfg, task, device,
                        cfg.eval_batch_size, labels)
        metric = val["macro_f1"] if task == "classification" else val["r2"]
        metric = metric if math.isfinite(metric) else -math.inf
        improved = metric > state["best"] + 1e-4
        if improved:
            state.update(best=metric, best_epoch=epoch, bad_epochs=0)
            if rank == 0:
                best_state = {k: v.detach().cpu().clone()
                              for k, v in unwrap(ddp_model).state_dict().items()}
        else:
            state["bad_epochs"] += 1
        record = {"epoch": epoch, "train_loss": float(counts[2]) / max(float(counts[1]), 1),
                  "train_images": int(counts[0]), "steps": int(counts[1]) // world,
                  "train_seconds": round(train_seconds, 3),
                  "render_seconds": round(render_seconds, 3),
                  "train_images_per_second": float(counts[0]) / max(train_seconds, 1e-9),
                  "lr": scheduler.get_last_lr()[0], "attempt": state["attempts"],
                  **{f"val_{k}": v for k, v in val.items()}, "val_metric": metric,
                  "improved": improved}
        state["history"].append(record)
        state["epoch"] = epoch
        epochs_run.append(epoch)
        if rank == 0:
            with tempfile.TemporaryDirectory() as tmp:
                save_checkpoint(tmp, ddp_model, optimizer, scheduler,
                                **{k: v for k, v in state.items()})
                if best_state is not None:
                    best = VisionTransformer(mcfg)
                    best.load_state_dict(best_state)
                    best.save_pretrained(Path(tmp) / "best")
                ray.train.report(record, checkpoint=Checkpoint.from_directory(tmp))
            if loop_config.get("progress_file"):
                mark_progress(loop_config["progress_file"], epoch + 1, cfg.epochs,
                              val_metric=round(float(metric), 4))
        else:
            ray.train.report(record, checkpoint=None)
    return {"history": state["history"], "best_epoch": state["best_epoch"],
            "best": state["best"], "start_epoch": start_epoch, "epochs_run": epochs_run,
            "attempts": state["attempts"], "world_size": world, "device": str(device),
            "pretrained": state["pretrained"],
            "stopped_early": state["bad_epochs"] >= cfg.patience and (
                state["epoch"] < cfg.epochs - 1)}


# ------------------------------------------------------------------------------------------
# Prediction actor
# ------------------------------------------------------------------------------------------


class VisionPredictor:
    """Ray Data stage: render prepared arrays and predict with a saved vision model.

    Args:
        model_dir: a saved :class:`~astroray.models.vision.VisionTransformer` folder.
        kind: ``spectra`` or ``lightcurves``.
        render: the render config fields (a mapping).
        device: torch device; None: CUDA when available, else CPU.
    """

    def __init__(self, model_dir: str, kind: str, render: dict[str, Any],
                 device: str | None = None):
        from astroray.models.vision import VisionTransformer
        from astroray.render import LightCurveRenderConfig, SpectrumRenderConfig

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = VisionTransformer.from_pretrained(model_dir).to(self.device).eval()
        cls = SpectrumRenderConfig if kind == "spectra" else LightCurveRenderConfig
        self.render_cfg = cls.from_dict(render)
        self.kind = kind

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add ``pred`` (class index or value) and ``seconds`` (per object) to the batch."""
        from astroray.train.trainer import autocast

        started = time.perf_counter()
        tensors = {k: torch.as_tensor(np.array(v), device=self.device)
                   for k, v in batch.items() if k in ("wavelength", "flux", "length", "time",
                                                      "value", "err", "band", "is_mag",
                                                      "period")}
        with torch.inference_mode():
            images = render_batch(tensors, self.kind, self.render_cfg)
            with autocast(self.device):
                out = self.model.predict(images)
        pred = out["label"] if "label" in out else out["value"]
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        n = max(len(pred), 1)
        result = {"row": batch["row"], "pred": pred.float().cpu().numpy(),
                  "seconds": np.full(len(pred), (time.perf_counter() - started) / n)}
        if "samples" in out:  # MC Dropout: every pass's probabilities, (B, T * K)
            samples = out["samples"].float().cpu().numpy()  # (T, B, K)
            result["samples"] = samples.transpose(1, 0, 2).reshape(len(pred), -1)
        return result


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------


def _predict(model_dir: str, arrays: dict[str, np.ndarray], rows: np.ndarray, kind: str,
             render: dict[str, Any], cfg: FinetuneConfig, use_gpu: bool
             ) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Predictions for ``rows`` (in that order), objects per second, sampled probabilities.

    The last is (T, N, K) for a model with an uncertainty head (MC Dropout), else None.
    """
    import ray

    ds = _tensor_dataset({**arrays, "row": np.arange(len(arrays["length"]))}, rows, 4)
    out = ds.map_batches(VisionPredictor, batch_format="numpy", batch_size=cfg.eval_batch_size,
                         fn_constructor_kwargs={"model_dir": model_dir, "kind": kind,
                                                "render": render},
                         compute=ray.data.ActorPoolStrategy(size=1),
                         num_cpus=cfg.predict_cpus, num_gpus=1 if use_gpu else 0)
    res = out.to_pandas()
    order = {int(r): i for i, r in enumerate(res["row"].to_numpy())}
    index = [order[int(r)] for r in rows]
    pred = res["pred"].to_numpy()[index]
    seconds = float(res["seconds"].sum())
    samples = None
    if "samples" in res:
        flat = np.stack(res["samples"].to_numpy()[index])  # (N, T * K)
        samples = flat.reshape(len(rows), _passes(model_dir), -1).transpose(1, 0, 2)  # T, N, K
    return pred, (len(rows) / seconds if seconds > 0 else float("nan")), samples


def _passes(model_dir: str) -> int:
    from astroray.models._pretrained import read_config_json

    return int(read_config_json(model_dir).get("passes", 1))


def _prepare_dataset(ds_cfg: VisionDataset, cfg: FinetuneConfig, out: Path) -> dict[str, Any]:
    """Everything about a data set that no seed changes, computed once.

    The table and labels, the fixed-size arrays, the baselines' features, the periods of every
    folded layout (a periodogram per object) and the Astromer embeddings.
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
        key = _period_key(render_cfg)
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


def _period_key(render_cfg: Any) -> str:
    """What the periods of a folded picture depend on."""
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
    from astroray.train.classify import _embed_table, _published_folder

    folder, why = _published_folder(cfg.astromer)
    if folder is None:
        return {"skipped": why}
    t0 = time.perf_counter()
    x = _embed_table(table, folder, random_init=False, seed=0, min_points=ASTROMER_MIN_POINTS,
                     actor_cpus=cfg.predict_cpus, embedding="band_concat")
    return {"x": x, "encoder": folder, "seconds": round(time.perf_counter() - t0, 2),
            "without_windows": int(np.isnan(x).all(axis=(1, 2)).sum())}


#: Fewest points of a band that Astromer embeds (jobs/classify_astromer.yaml's min_points).
ASTROMER_MIN_POINTS = 5


def _astromer_row(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
                  test: np.ndarray, n_classes: int, cfg: FinetuneConfig) -> np.ndarray:
    """Test predictions of the Astromer classifier trained on this seed's training objects.

    The settings of ``jobs/classify_astromer.yaml``: the weighted per-sample embedding and
    an MLP 1024-512-256 on features z-scored with the training objects' statistics, AdamW
    (lr 1e-3, weight decay 1e-4), batches of 64, early stopping on the validation loss
    (checked every 20 steps, patience 10).
    """
    from torch import nn

    from astroray.models.astromer import AstromerClassifierHead
    from astroray.train._labelled import fit_early_stopping
    from astroray.train.classify import _impute

    fit = np.concatenate([train, val])
    x = _impute(x, fit)
    torch.manual_seed(cfg.seed)
    head = AstromerClassifierHead(x.shape[1], x.shape[2], n_classes)
    head.set_standardization(torch.from_numpy(x[fit].mean(axis=0)),
                             torch.from_numpy(x[fit].std(axis=0)))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(cfg.seed)

    def steps(model: nn.Module):
        order = train[torch.randperm(len(train), generator=gen).numpy()]
        for lo in range(0, len(order), 64):
            idx = order[lo:lo + 64]
            yield nn.functional.cross_entropy(model(xt[idx]), yt[idx])

    def val_loss(model: nn.Module) -> float:
        return float(nn.functional.cross_entropy(model(xt[val]), yt[val]))

    head = fit_early_stopping(head, steps, val_loss, max_steps=cfg.astromer_head_steps,
                              eval_every=20, patience=10, lr=1e-3, weight_decay=1e-4)
    with torch.no_grad():
        return head(xt[test]).argmax(1).numpy()


def _run_dataset(ds_cfg: VisionDataset, cfg: FinetuneConfig, out: Path,
                 use_gpu: bool, prepared: dict[str, Any] | None = None,
                 tag: str = "") -> dict[str, Any]:
    """One seed (``cfg.seed``) on one data set: split, baselines, fine-tuning, Astromer.

    ``tag`` is appended to run, model and figure names (``-seed1``) when several seeds share
    ``out``.
    """
    from astroray.eval import (
        classification_metrics,
        plot_confusion_matrix,
        plot_redshift,
        redshift_metrics,
    )
    from astroray.models.baselines import run_baselines
    from astroray.train.trainer import fit_with_progress, make_torch_trainer

    d = prepared if prepared is not None else _prepare_dataset(ds_cfg, cfg, out)
    if "skipped" in d:
        return d
    classes, y_cls, prep, z = d["classes"], d["y"], d["prep"], d["z"]
    split = _stratified_split(y_cls, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    train, val, test = (np.flatnonzero(split == s) for s in (0, 1, 2))
    regression = cfg.task == "redshift"
    if regression:
        target = z.astype(np.float32)
        z_max = float(cfg.z_max or max(z[train].max(), 1e-3))
    else:
        target = y_cls
        z_max = 1.0
    counts = np.bincount(y_cls[train], minlength=len(classes)).astype(np.float64)
    weight = (1.0 / np.maximum(counts, 1.0))[y_cls].astype(np.float32)
    arrays = {**d["arrays"], "target": target, "weight": weight}
    model_fields: dict[str, Any] = {"task": "regression" if regression else "classification",
                                    "target_scale": z_max}
    if not regression:
        model_fields["labels"] = tuple(classes)
    data_info = {
        "objects": int(d["table"].num_rows), "classes": classes,
        "per_class": {c: int((y_cls == i).sum()) for i, c in enumerate(classes)},
        "splits": {"train": int(train.size), "val": int(val.size), "test": int(test.size)},
        "test_per_class": {c: int((y_cls[test] == i).sum()) for i, c in enumerate(classes)},
        "max_length": cfg.max_length, "thinned": prep["thinned"], "bands": prep.get("bands"),
        "inputs": d["info"],
        "periods": {k: v["info"] for k, v in d["periods"].items()} or None,
    }
    # ---- baselines on the same split (fit on train + val: they have no early stopping)
    t0 = time.perf_counter()
    feats = d["features"]
    fit_rows = np.concatenate([train, val])
    base = run_baselines(feats[fit_rows], (target if regression else y_cls)[fit_rows],
                         feats[test], task="regression" if regression else "classification",
                         names=cfg.baselines, seed=cfg.seed, n_jobs=cfg.baseline_jobs)
    baseline_seconds = time.perf_counter() - t0 + d["feature_seconds"]
    results: dict[str, Any] = {"data": data_info, "baselines": {}, "runs": {}}
    for name, res in base.items():
        if regression:
            metrics = redshift_metrics(z[test], res["pred"])
        else:
            metrics = classification_metrics(y_cls[test], res["pred"].astype(np.int64),
                                             labels=list(range(len(classes))))
            metrics = _named(metrics, classes)
        results["baselines"][name] = {**metrics, "fit_seconds": res["fit_seconds"],
                                      "features": feats.shape[1]}
    results["baseline_seconds"] = round(baseline_seconds, 2)
    # ---- the Astromer classifier on its frozen embeddings, on the same split
    emb = d.get("astromer")
    if emb is not None and "x" in emb and not regression:
        t0 = time.perf_counter()
        pred = _astromer_row(emb["x"], y_cls, train, val, test, len(classes), cfg)
        metrics = _named(classification_metrics(y_cls[test], pred.astype(np.int64),
                                                 labels=list(range(len(classes)))), classes)
        results["astromer"] = {**metrics, "encoder": emb["encoder"],
                               "embed_seconds": emb["seconds"],
                               "fit_seconds": round(time.perf_counter() - t0, 2),
                               "without_windows": emb["without_windows"]}
    elif emb is not None:
        results["astromer"] = {"skipped": emb.get("skipped", "regression")}
    # ---- fine-tuning, one run per layout
    steps_per_epoch = math.ceil(train.size / (cfg.batch_size * cfg.num_workers))
    for layout in cfg.layouts:
        slug = layout.replace(":", "-")
        run_name = f"{cfg.name}-{ds_cfg.name}-{slug}{tag}"
        render_cfg = cfg.render_config(layout)
        run_arrays = arrays
        if cfg.kind == "lightcurves":
            render_cfg = render_cfg.replace(bands=tuple(prep["bands"]))
            if render_cfg.folded:  # the periods found once, before any training step
                run_arrays = {**arrays,
                              "period": d["periods"][_period_key(render_cfg)]["period"]}
        storage = out / "ray"
        storage.mkdir(parents=True, exist_ok=True)
        marker = storage / f".{run_name}.failure-injected"
        blocks = max(2 * cfg.num_workers, 4)
        trainer = make_torch_trainer(
            _train_loop,
            {"config": cfg.to_dict(), "layout": layout, "labels": classes,
             "bands": prep.get("bands"), "model_fields": model_fields,
             "total_steps": steps_per_epoch * cfg.epochs, "fail_marker": str(marker),
             "progress_file": str(storage / f".{run_name}.progress.json")},
            datasets={"train": _tensor_dataset(run_arrays, train, blocks),
                      "val": _tensor_dataset(run_arrays, val, blocks)},
            num_workers=cfg.num_workers, use_gpu=use_gpu, cpus_per_worker=cfg.cpus_per_worker,
            storage_path=str(storage), name=run_name, max_failures=cfg.max_failures)
        started = time.perf_counter()
        result = fit_with_progress(trainer, storage / f".{run_name}.progress.json", cfg.epochs,
                                   f"fine-tune {run_name}")
        if result.error is not None:
            raise result.error
        if result.checkpoint is None:
            raise RuntimeError(f"fine-tuning {run_name} reported no checkpoint")
        value = result.return_value or {}
        model_dir = out / "models" / f"{ds_cfg.name}-{slug}{tag}"
        shutil.rmtree(model_dir, ignore_errors=True)
        with result.checkpoint.as_directory() as folder:
            shutil.copytree(Path(folder) / "best", model_dir)
            # How inputs become images for this model: what bulk inference and Serve need.
            write_render_spec(model_dir, cfg.kind, render_cfg.to_dict(), cfg.max_length,
                              prep.get("bands"))
            state = torch.load(Path(folder) / "training_state.pt", map_location="cpu",
                               weights_only=False)
        history = state.get("history") or value.get("history", [])
        train_seconds = time.perf_counter() - started
        pred, per_second, samples = _predict(str(model_dir), run_arrays, test, cfg.kind,
                                             render_cfg.to_dict(), cfg, use_gpu)
        figure = None
        name = f"{ds_cfg.name}_{slug}{tag}"
        if regression:
            metrics = redshift_metrics(z[test], pred)
            figure = plot_redshift(z[test], pred, out / f"redshift_{name}.png",
                                   title=f"{cfg.model} on {ds_cfg.name} ({layout}), test set")
        else:
            metrics = _named(classification_metrics(y_cls[test], pred.astype(np.int64),
                                                    labels=list(range(len(classes)))), classes)
            figure = plot_confusion_matrix(
                metrics["confusion"], classes, out / f"confusion_{name}.png",
                title=f"{cfg.model} on {ds_cfg.name} ({layout}), test set")
            if samples is not None:
                metrics["uncertainty"] = _uncertainty(y_cls[test], samples, out, name,
                                                      cfg.model)
        applied = _apply(ds_cfg, cfg, out, str(model_dir), render_cfg.to_dict(), classes,
                         regression, use_gpu)
        results["runs"][layout] = {
            "applied": applied,
            "test": metrics, "model_dir": str(model_dir), "checkpoint": result.checkpoint.path,
            "best_epoch": state.get("best_epoch"), "best_val_metric": state.get("best"),
            "epochs": len(history), "history": history,
            "stopped_early": value.get("stopped_early"),
            "resume": {"start_epoch": value.get("start_epoch"),
                       "epochs_run": value.get("epochs_run"),
                       "attempts": value.get("attempts"), "failure_injected": marker.exists()},
            "pretrained": state.get("pretrained"), "device": value.get("device"),
            "train_images_per_second": (float(np.mean([h["train_images_per_second"]
                                                       for h in history])) if history else None),
            "inference_images_per_second": per_second,
            "seconds": round(train_seconds, 2), "figure": str(figure) if figure else None,
        }
    return results


def _apply(ds_cfg: VisionDataset, cfg: FinetuneConfig, out: Path, model_dir: str,
           render: dict[str, Any], classes: list[str], regression: bool,
           use_gpu: bool) -> list[dict[str, Any]] | None:
    """Predictions of a trained model for the objects of ``ds_cfg.apply_paths``."""
    from astroray.train.astromer import prepare_light_curves

    present = [p for p in ds_cfg.apply_paths if Path(p).exists()]
    if not present:
        return None
    info = prepare_light_curves((), tuple(present), None, out / "data" / f"{ds_cfg.name}-apply")
    wanted = SPECTRUM_COLUMNS if cfg.kind == "spectra" else LC_COLUMNS
    tables = [pq.read_table(f) for f in info["parquet"]]
    table = pa.concat_tables([t.select([c for c in wanted if c in t.column_names])
                              for t in tables], promote_options="default")
    if table.num_rows == 0:
        return []
    render_cfg = None
    if cfg.kind == "lightcurves":
        from astroray.render import LightCurveRenderConfig

        render_cfg = LightCurveRenderConfig.from_dict(render)
    arrays, _ = prepare_arrays(table, cfg.kind, max_length=cfg.max_length,
                               bands=tuple(render["bands"]) if render.get("bands") else None,
                               render=render_cfg)
    pred, _, _ = _predict(model_dir, arrays, np.arange(table.num_rows), cfg.kind, render, cfg,
                       use_gpu)
    rows = []
    names = table.column_names
    for i, oid in enumerate(table.column("object_id").to_pylist()):
        row: dict[str, Any] = {"object_id": oid,
                               "label": table.column("label")[i].as_py()
                               if "label" in names else None}
        if "z" in names:
            row["z"] = table.column("z")[i].as_py()
        if regression:
            row["z_pred"] = float(pred[i])
        else:
            row["pred"] = classes[int(pred[i])]
        rows.append(row)
    return rows


def _uncertainty(y: np.ndarray, samples: np.ndarray, out: Path, name: str,
                 model: str) -> dict[str, Any]:
    """Test-set uncertainty of an MC Dropout head: misclassification ROC-AUCs, ECE, diagram."""
    from astroray.eval.plots import plot_reliability
    from astroray.uncertainty import reliability_curve, uncertainty_metrics

    metrics = uncertainty_metrics(y, samples)
    figure = plot_reliability({"mc_dropout": reliability_curve(y, samples)},
                              out / f"reliability_{name}.png",
                              f"{model} on {name}: MC Dropout ({samples.shape[0]} passes)")
    return {**metrics, "passes": int(samples.shape[0]),
            "reliability_figure": str(figure) if figure else None}


def _named(metrics: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """Replace class indices by names in a classification metrics mapping."""
    rename = {str(i): c for i, c in enumerate(classes)}
    return {**metrics, "labels": list(classes),
            "per_class": {rename[k]: v for k, v in metrics["per_class"].items()},
            "per_class_recall": {rename[k]: v for k, v in metrics["per_class_recall"].items()}}


def finetune(config: FinetuneConfig, out: str | Path) -> dict[str, Any]:
    """Fine-tune and evaluate on every data set and layout; the entry point of both jobs.

    Output layout of ``out``::

        out/data/NAME/         canonical Parquet of the inputs (generated / ingested once)
        out/ray/RUN/           Ray Train runs: checkpoints (model folder, training state,
                               best/); the same ``out`` resumes
        out/models/NAME-LAYOUT the best model of each run (config.json + model.safetensors,
                               render.json); ``-seedN`` appended with several ``seeds``
        out/confusion_*.png    test confusion matrices (classification)
        out/redshift_*.png     predicted vs true redshift (regression)

    With several ``seeds`` each seed draws its own object split, shared by every method of
    that seed; what does not depend on the seed (data, features, periods, Astromer
    embeddings) is computed once per data set.

    Returns:
        ``{"table", "datasets", "use_gpu", "seeds"}``: ``table`` has one row per (data set,
        method): the vision model (one row per layout), each baseline and the Astromer
        classifier, with the test metrics (their mean over the seeds, with ``*_std`` and the
        per-seed ``*_seeds`` values, when there are several).
    """
    from astroray.runtime import init_ray
    from astroray.train.trainer import gpu_available

    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    use_gpu = gpu_available(config.num_workers) if config.use_gpu is None else config.use_gpu
    datasets, table = {}, []
    regression = config.task == "redshift"
    keys = (("r2", "nmad", "outlier_fraction") if regression
            else ("accuracy", "macro_f1"))
    for ds_cfg in config.datasets:
        started = time.perf_counter()
        prepared = _prepare_dataset(ds_cfg, config, out)
        if "skipped" in prepared:
            res = prepared
        elif not config.seeds:
            res = _run_dataset(ds_cfg, config, out, use_gpu, prepared)
        else:
            per_seed = {s: _run_dataset(ds_cfg, config.replace(seed=s), out, use_gpu, prepared,
                                        tag=f"-seed{s}") for s in config.seeds}
            first = per_seed[config.seeds[0]]
            res = {"data": {**first["data"], "splits_per_seed": {
                       str(s): r["data"]["splits"] for s, r in per_seed.items()}},
                   "seeds": {str(s): {k: v for k, v in r.items() if k != "data"}
                             for s, r in per_seed.items()}}
        res["seconds"] = round(time.perf_counter() - started, 2)
        datasets[ds_cfg.name] = res
        if "skipped" in res:
            table.append({"dataset": ds_cfg.name, "skipped": res["skipped"]})
            continue
        seed_results = ([res] if not config.seeds
                        else [res["seeds"][str(s)] for s in config.seeds])
        table += _table_rows(ds_cfg.name, seed_results, res["data"]["splits"]["test"],
                             config, keys)
    return {"table": table, "datasets": datasets, "use_gpu": use_gpu,
            "seeds": list(config.run_seeds)}


def _method_metrics(res: dict[str, Any], config: FinetuneConfig) -> dict[str, dict[str, Any]]:
    """Method -> test metrics of one seed's results, in table order."""
    out: dict[str, dict[str, Any]] = {}
    for layout, run in res["runs"].items():
        out[f"{config.model} ({layout})"] = {
            **run["test"], "epochs": run["epochs"],
            **{k: v for k, v in run["test"].get("uncertainty", {}).items()
               if k.startswith("auroc_") or k == "ece"}}
    for name, metrics in res["baselines"].items():
        out[name] = metrics
    astromer = res.get("astromer")
    if astromer is not None and "skipped" not in astromer:
        out["astromer"] = astromer
    return out


def _table_rows(dataset: str, seed_results: list[dict[str, Any]], n_test: int,
                config: FinetuneConfig, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The table's rows of one data set: one per method, figures averaged over the seeds."""
    per_seed = [_method_metrics(r, config) for r in seed_results]
    rows = []
    for method in per_seed[0]:
        values = [m[method] for m in per_seed if method in m]
        row: dict[str, Any] = {"dataset": dataset, "method": method, "test_objects": n_test}
        extra = [k for k in values[0] if k == "epochs" or k.startswith("auroc_") or k == "ece"]
        if len(seed_results) == 1:
            row.update({k: values[0][k] for k in (*extra[:1], *keys, *extra[1:])})
            rows.append(row)
            continue
        row["seeds"] = len(values)
        for k in (*keys, *extra):
            v = np.array([float(x[k]) for x in values], dtype=np.float64)
            row[k] = round(float(np.nanmean(v)), 4)
            row[f"{k}_std"] = round(float(np.nanstd(v)), 4)
            row[f"{k}_seeds"] = [round(float(x), 4) for x in v]
        rows.append(row)
    return rows


def format_table(summary: dict[str, Any], config: FinetuneConfig) -> str:
    """The results table as Markdown: macro F1 (or R^2) mean +- spread over the seeds."""
    regression = config.task == "redshift"
    key, label = ("r2", "R^2") if regression else ("macro_f1", "macro F1")
    second, second_label = ("nmad", "NMAD") if regression else ("accuracy", "accuracy")
    seeds = summary.get("seeds") or [config.seed]
    spread = len(seeds) > 1
    head = (f"| data set | method | {label} | {second_label} | test objects |\n"
            "| --- | --- | --- | --- | --- |")
    lines = [head]
    for row in summary["table"]:
        if "skipped" in row:
            lines.append(f"| {row['dataset']} | (skipped: {row['skipped']}) | | | |")
            continue

        def cell(k: str, r: dict[str, Any] = row) -> str:
            value = r.get(k)
            if value is None:
                return "n/a"
            return f"{value:.3f} ± {r[f'{k}_std']:.3f}" if spread else f"{value:.3f}"

        lines.append(f"| {row['dataset']} | {row['method']} | {cell(key)} | {cell(second)} | "
                     f"{row['test_objects']} |")
    note = (f"Mean ± standard deviation (ddof 0) over seeds {', '.join(map(str, seeds))}; "
            "each seed draws its own object split, shared by every method of that seed."
            if spread else f"Seed {seeds[0]}.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def write_finetune_results(summary: dict[str, Any], config: FinetuneConfig, out: str | Path,
                           job: str, *, smoke: bool, started: float) -> None:
    """Print the results table; write ``out/results.json`` and ``out/table.md``."""
    from astroray.runtime import write_results

    for row in summary["table"]:
        if "skipped" in row:
            print(f"{job}: {row['dataset']}: skipped ({row['skipped']})")
            continue
        figures = ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                            if isinstance(v, float))
        print(f"{job}: {row['dataset']}: {row['method']}: {figures} "
              f"({row['test_objects']} test objects)")
    data = {name: res.get("data") for name, res in summary["datasets"].items()}
    runs = {name: {k: v for k, v in res.items() if k != "data"}
            for name, res in summary["datasets"].items()}
    markdown = format_table(summary, config)
    write_results(out, job, metrics={"table": summary["table"], "task": config.task,
                                     "seeds": summary.get("seeds"), "table_md": markdown,
                                     "datasets": runs},
                  data=data, model={"name": config.model, "use_gpu": summary["use_gpu"],
                                    "config": config.model_config().to_dict()},
                  config=config.to_dict(), smoke=smoke, started=started)
    Path(out, "table.json").write_text(json.dumps(summary["table"], indent=2))
    Path(out, "table.md").write_text(markdown)
