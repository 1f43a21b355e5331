"""Configuration of the vision fine-tuning study: its data sets, label groupings and settings.

The protocol itself (:func:`~astroray.studies.finetune_vision.finetune`) is in
:mod:`astroray.studies.finetune_vision`; this module holds what its YAML files
(``jobs/finetune_vit_spectra.yaml``, ``jobs/finetune_swin_lightcurves.yaml``) describe, kept
apart as transformers keeps a ``configuration_*.py`` beside a model.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any

import yaml

from astroray.config import (
    Config,
    Optimization,
    TrainResources,
    check,
    check_cpus,
    check_name,
    check_positive_ints,
    check_training,
)
from astroray.data.inputs import check_inputs
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.models import get_config, list_models
from astroray.models.baselines import BASELINES
from astroray.models.vision.processing import split_layout
from astroray.render import LightCurveRenderConfig, SpectrumRenderConfig

__all__ = ["FOLDS", "KINDS", "LAYOUTS", "TASKS", "FinetuneConfig", "VisionDataset",
           "label_grouping", "label_spelling"]

KINDS = ("spectra", "lightcurves")
TASKS = ("class", "subclass", "redshift")
LAYOUTS = {"spectra": ("single", "overlap_split"), "lightcurves": ("overlay", "grid")}
#: Light-curve layouts may be folded: ``overlay:lomb_scargle``, ``grid:period``.
FOLDS = ("period", "lomb_scargle")


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
        check_name(self)
        check_inputs(self)
        check(isinstance(self.label_map, dict), self, "label_map", self.label_map,
              "a mapping of label renames")
        check(isinstance(self.min_class_count, int) and self.min_class_count >= 3, self,
              "min_class_count", self.min_class_count, "an integer >= 3 (one per split)")


def label_spelling(value: Any) -> str:
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
            out[label_spelling(spelling)] = str(cls)
    return out


def _groupings() -> dict[str, Any]:
    """The ``groupings`` section of the packaged taxonomy file."""
    text = resources.files("astroray.data").joinpath("taxonomy.yaml").read_text()
    return yaml.safe_load(text).get("groupings") or {}


# Model fields a smoke run keeps (the rest describe the full-size model it replaces).
_SMOKE_OVERRIDES = ("uncertainty", "passes", "hidden_dropout", "attention_dropout",
                    "head_dropout")


@dataclasses.dataclass
class FinetuneConfig(TrainResources, Optimization):
    """Settings of ``jobs/finetune_vit_spectra.py`` and ``jobs/finetune_swin_lightcurves.py``.

    The resources (``num_workers``, ``use_gpu``, ``cpus_per_worker``, ``max_failures``) are the
    :class:`~astroray.config.TrainResources` group, the optimiser (``epochs``: most passes,
    ``batch_size``: images per step and worker, ``lr``: the peak, ``weight_decay``,
    ``grad_clip``) the :class:`~astroray.config.Optimization` group.

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
        warmup_fraction: fraction of the steps of the linear warm-up (then cosine decay).
        weighted_sampling: resample each training batch with weights 1 / class frequency.
        patience: epochs without validation improvement before stopping.
        z_max: redshift scale of the regression target; None: the training maximum.
        baselines: baselines fitted on the same split (``svm``, ``rf``).
        baseline_bins: wavelength bins of the spectra resampled for the baselines.
        baseline_jobs: Random Forest parallelism.
        actor_cpus: CPUs of the test-set prediction actor.
        eval_batch_size: images per validation / prediction batch.
        name: run-name prefix under ``OUT/ray``; re-running with the same output resumes.
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
    weighted_sampling: bool = True
    patience: int = 3
    z_max: float | None = None
    baselines: tuple[str, ...] = ("svm", "rf")
    baseline_bins: int = 1000
    baseline_jobs: int = 1
    actor_cpus: float = 0.5
    eval_batch_size: int = 64
    name: str = "vision"
    fail_at_epoch: int | None = None
    seed: int = 0
    seeds: tuple[int, ...] = ()
    astromer: str | None = None
    astromer_head_steps: int = 2000

    def __post_init__(self) -> None:
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
        check_positive_ints(self, "max_length", "patience", "baseline_bins", "baseline_jobs",
                            "eval_batch_size")
        self.check_optimization()
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and 0.0 < value < 0.5, self, name, value,
                  "a number in (0, 0.5)")
        check_cpus(self, "actor_cpus")
        check(isinstance(self.warmup_fraction, int | float) and 0 <= self.warmup_fraction < 1,
              self, "warmup_fraction", self.warmup_fraction, "a number in [0, 1)")
        check(self.z_max is None or (isinstance(self.z_max, int | float) and self.z_max > 0),
              self, "z_max", self.z_max, "a positive number or null")
        check_training(self)
        self.render_config(self.layouts[0])  # invalid render fields fail here

    def model_config(self) -> Any:
        """The registered model config with ``model_overrides`` applied."""
        return get_config(self.model, **self.model_overrides)

    def render_config(self, layout: str) -> Any:
        """The picture for ``layout`` (``'overlay:lomb_scargle'`` folds), at the model's size."""
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
