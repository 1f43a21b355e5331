"""Typed, validated dataclass configs that load from and save to YAML or JSON.

Every job and model family describes its settings with a dataclass deriving from
:class:`Config`. Validation happens in ``__post_init__``; an error names the field and the value
(as Ray's ``ScalingConfig`` does), so a typo in a YAML file fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["Config", "ConfigError", "IngestConfig", "check", "check_inputs"]

C = TypeVar("C", bound="Config")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the value."""


def check(condition: bool, cls: Any, field: str, value: Any, expected: str) -> None:
    """Raise :class:`ConfigError` unless ``condition`` holds.

    Args:
        condition: what must hold.
        cls: the config (instance, class or name) the field belongs to.
        field: the field's name.
        value: the offending value.
        expected: what a valid value looks like.
    """
    if not condition:
        if isinstance(cls, str):
            name = cls
        else:
            name = cls.__name__ if isinstance(cls, type) else type(cls).__name__
        raise ConfigError(f"{name}.{field} = {value!r} is invalid: expected {expected}")


def check_positive_ints(cfg: Any, *names: str) -> None:
    """Check that each named field of ``cfg`` is a positive integer (booleans are not)."""
    for name in names:
        value = getattr(cfg, name)
        check(isinstance(value, int) and not isinstance(value, bool) and value > 0, cfg, name,
              value, "a positive integer")


def check_inputs(cfg: Any) -> None:
    """Normalise and check the input fields a job config shares.

    ``paths`` and ``optional_paths`` become tuples, a ``synthetic`` mapping becomes a
    :class:`~astroray.data.synthetic.SyntheticSurveyConfig`, and at least one of the three must
    give some input.
    """
    from astroray.data.synthetic import SyntheticSurveyConfig

    cfg.paths, cfg.optional_paths = tuple(cfg.paths), tuple(cfg.optional_paths)
    if isinstance(cfg.synthetic, dict):
        cfg.synthetic = SyntheticSurveyConfig.from_dict(cfg.synthetic)
    check(cfg.synthetic is None or isinstance(cfg.synthetic, SyntheticSurveyConfig), cfg,
          "synthetic", cfg.synthetic, "a SyntheticSurveyConfig mapping or null")
    check(bool(cfg.paths) or bool(cfg.optional_paths) or cfg.synthetic is not None, cfg,
          "paths", cfg.paths, "some input: paths, optional_paths or synthetic")


def check_training(cfg: Any) -> None:
    """Check the Ray Train fields a training config shares.

    ``num_workers`` (a positive integer), ``use_gpu`` (true, false or null), ``cpus_per_worker``
    (positive), ``max_failures`` (non-negative), ``fail_at_epoch`` (null or an epoch below
    ``epochs``) and ``name`` (a run name without '/').
    """
    check(isinstance(cfg.num_workers, int) and not isinstance(cfg.num_workers, bool)
          and cfg.num_workers > 0, cfg, "num_workers", cfg.num_workers, "a positive integer")
    check(cfg.use_gpu is None or isinstance(cfg.use_gpu, bool), cfg, "use_gpu", cfg.use_gpu,
          "true, false or null")
    check(isinstance(cfg.cpus_per_worker, int | float) and cfg.cpus_per_worker > 0, cfg,
          "cpus_per_worker", cfg.cpus_per_worker, "a positive number")
    check(isinstance(cfg.max_failures, int) and cfg.max_failures >= 0, cfg,
          "max_failures", cfg.max_failures, "a non-negative integer")
    check(cfg.fail_at_epoch is None or (isinstance(cfg.fail_at_epoch, int)
                                        and 0 <= cfg.fail_at_epoch < cfg.epochs),
          cfg, "fail_at_epoch", cfg.fail_at_epoch, f"null or an epoch in [0, {cfg.epochs})")
    check(isinstance(cfg.name, str) and cfg.name and "/" not in cfg.name, cfg, "name",
          cfg.name, "a non-empty name without '/'")


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML/JSON value to the annotated type (nested configs, tuples, lists)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        return _convert(value, others[0], where) if len(others) == 1 else value
    if isinstance(annotation, type) and issubclass(annotation, Config):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return annotation.from_dict(value)
    if origin in (tuple, list) and isinstance(value, list | tuple):
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@dataclasses.dataclass
class Config:
    """Base class: dict/YAML/JSON round trips with unknown keys rejected."""

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from a mapping; unknown keys are an error naming them."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; "
                              f"known: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        kwargs = {k: _convert(v, hints[k], f"{cls.__name__}.{k}") for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def from_file(cls: type[C], path: str | Path) -> C:
        """Load from a ``.yaml``/``.yml`` or ``.json`` file."""
        text = Path(path).read_text()
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        return cls.from_dict(data or {})

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping (tuples become lists) that :meth:`from_dict` reads back."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def save(self, path: str | Path) -> None:
        """Write as JSON or YAML, by the file's extension."""
        data = self.to_dict()
        text = json.dumps(data, indent=2) if str(path).endswith(".json") else yaml.safe_dump(
            data, sort_keys=False)
        Path(path).write_text(text)

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class IngestConfig(Config):
    """Settings of ``astroray ingest`` / ``jobs/ingest.py``.

    Attributes:
        paths: input files or folders (local paths or URIs).
        format: reader name for every file; None sniffs each file.
        labels: label tables to join instead of those found beside the data.
        survey: override the survey name readers infer.
        synthetic: a :class:`astroray.data.synthetic.SyntheticSurveyConfig` (or its mapping)
            generated as input when ``paths`` is empty.
        read_cpus: CPUs per read task (fractional values let more tasks share a core).
        num_blocks: number of read tasks; None lets Ray decide.
    """

    paths: tuple[str, ...] = ()
    format: str | None = None
    labels: tuple[str, ...] = ()
    survey: str | None = None
    # Typed loosely here because the synthetic module itself builds on this one.
    synthetic: Any = None
    read_cpus: float = 1.0
    num_blocks: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.paths, str):
            self.paths = (self.paths,)
        if isinstance(self.labels, str):
            self.labels = (self.labels,)
        self.paths, self.labels = tuple(self.paths), tuple(self.labels)
        if self.synthetic is not None:
            from astroray.data.synthetic import SyntheticSurveyConfig

            if isinstance(self.synthetic, dict):
                self.synthetic = SyntheticSurveyConfig.from_dict(self.synthetic)
            check(isinstance(self.synthetic, SyntheticSurveyConfig), self, "synthetic",
                  self.synthetic, "a SyntheticSurveyConfig mapping or null")
        check(bool(self.paths) or self.synthetic is not None, self, "paths", self.paths,
              "at least one input path (or a synthetic survey)")
        if self.format is not None:
            from astroray.data.registry import list_formats

            check(self.format in list_formats(), self, "format", self.format,
                  f"one of {list_formats()}")
        check(isinstance(self.read_cpus, int | float) and 0 < self.read_cpus <= 64, self,
              "read_cpus", self.read_cpus, "a number in (0, 64]")
        check(self.num_blocks is None or (isinstance(self.num_blocks, int)
                                          and self.num_blocks > 0),
              self, "num_blocks", self.num_blocks, "a positive integer or null")
