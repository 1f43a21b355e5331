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

__all__ = ["Config", "ConfigError", "check", "check_positive_ints", "check_training"]

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


def _type_name(annotation: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "a mapping"}
    if annotation in names:
        return names[annotation]
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        return "a list"
    if origin is dict:
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a)
                           for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML/JSON value to the annotated type, checking it on the way.

    Nested configs come from mappings, tuples and lists from lists (a lone string where a list
    of strings is expected is a list of one: ``paths: survey/``), integers are accepted as
    floats; anything else of the wrong type is a :class:`ConfigError` naming the field, the
    value and what was expected (a string is never split into characters, a number is never a
    path, true is not 1).
    """
    if annotation is Any or annotation is typing.Any:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        for option in others:
            try:
                return _convert(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} = {value!r} is invalid: expected "
                          f"{_type_name(annotation)}")
    if isinstance(annotation, type) and issubclass(annotation, Config):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where} = {value!r} is invalid: expected a mapping of "
                              f"{annotation.__name__} fields")
        return annotation.from_dict(value)
    if origin in (tuple, list):
        inner = args[0] if args else Any
        if isinstance(value, str) and inner is str:
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} = {value!r} is invalid: expected a list")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis or origin is list:
            items = [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(value) != len(args):
                raise ConfigError(f"{where} = {value!r} is invalid: expected {len(args)} "
                                  "items")
            items = [_convert(v, a, f"{where}[{i}]")
                     for i, (v, a) in enumerate(zip(value, args, strict=True))]
        else:
            items = list(value)
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} = {value!r} is invalid: expected a mapping")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r} is invalid: expected true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} = {value!r} is invalid: expected an integer")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} = {value!r} is invalid: expected a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {value!r} is invalid: expected a string")
        return value
    return value


@dataclasses.dataclass
class Config:
    """Base class: dict/YAML/JSON round trips with unknown keys rejected."""

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from a mapping; unknown keys and values of the wrong type are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a mapping of fields, got "
                              f"{type(data).__name__} {data!r:.80}")
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
        """Load from a ``.yaml``/``.yml`` or ``.json`` file.

        Raises:
            FileNotFoundError: naming the file.
            ConfigError: a syntax error (with the file, line and column), a file that is not a
                mapping, or a field that is wrong (naming the file and the field).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read as text ({exc})") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: "
                              f"{exc.msg}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{where}: not valid YAML: {problem}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of {cls.__name__} fields, got "
                              f"{type(data).__name__} {data!r:.80}")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

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
