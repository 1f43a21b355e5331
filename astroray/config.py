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

__all__ = ["RENAMED_FIELDS", "ActorResources", "Config", "ConfigError", "Optimization",
           "TrainResources", "check", "check_cpus", "check_name", "check_positive_ints",
           "check_training"]

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


def check_cpus(cfg: Any, *names: str, most: float = 64.0) -> None:
    """Check that each named CPU request of ``cfg`` is a number in ``(0, most]``."""
    for name in names:
        value = getattr(cfg, name)
        check(isinstance(value, int | float) and not isinstance(value, bool)
              and 0 < value <= most, cfg, name, value, f"a number in (0, {most:g}]")


def check_name(cfg: Any, field: str = "name") -> None:
    """Check that a run's or a data set's name is non-empty text without '/' (a folder name)."""
    value = getattr(cfg, field)
    check(isinstance(value, str) and value != "" and "/" not in value, cfg, field, value,
          "a non-empty name without '/'")


def check_training(cfg: Any) -> None:
    """Check the Ray Train fields a training config shares.

    The resources (:meth:`TrainResources.check_train_resources`), ``fail_at_epoch`` (null or an
    epoch below ``epochs``) and ``name`` (a run name without '/').
    """
    if isinstance(cfg, TrainResources):
        cfg.check_train_resources()
    check(cfg.fail_at_epoch is None or (isinstance(cfg.fail_at_epoch, int)
                                        and 0 <= cfg.fail_at_epoch < cfg.epochs),
          cfg, "fail_at_epoch", cfg.fail_at_epoch, f"null or an epoch in [0, {cfg.epochs})")
    check_name(cfg)


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


#: CPU settings renamed to the one naming (``cpus_per_worker`` for Ray Train workers,
#: ``task_cpus`` for Ray tasks, Ray Data's read and map tasks included, ``actor_cpus`` for
#: actors); an old key is an error that names the new one.
RENAMED_FIELDS = {"data_cpus": "task_cpus", "read_cpus": "task_cpus",
                  "cpus_per_task": "task_cpus", "predict_cpus": "actor_cpus"}

#: The YAML key of a configuration's smoke overlay (see :meth:`Config.smoke`).
SMOKE_KEY = "smoke"


def _merge(base: Any, changes: Any) -> Any:
    """``changes`` deep-merged into ``base``: mappings merge key by key, other values replace.

    A mapping of changes to a null value leaves it null: a smoke overlay shrinks what a
    configuration has and never adds a part it does not have.
    """
    if isinstance(changes, dict) and isinstance(base, dict):
        return {**base, **{k: _merge(base.get(k), v) if k in base else v
                           for k, v in changes.items()}}
    if isinstance(changes, dict) and base is None:
        return None
    return changes


@dataclasses.dataclass
class Config:
    """Base class: dict/YAML/JSON round trips with unknown keys rejected.

    A mapping may carry a ``smoke:`` section: an overlay of fields that :meth:`smoke` merges in
    (the jobs' ``--smoke``). It is not a field, is checked when the config is read and travels
    with :meth:`replace`.
    """

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from a mapping; unknown keys and values of the wrong type are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a mapping of fields, got "
                              f"{type(data).__name__} {data!r:.80}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        overlay = None
        if SMOKE_KEY in data and SMOKE_KEY not in fields:
            data = dict(data)
            overlay = data.pop(SMOKE_KEY)
        renamed = [f"{k} is now {RENAMED_FIELDS[k]}" for k in sorted(data)
                   if k not in fields and RENAMED_FIELDS.get(k) in fields]
        if renamed:
            raise ConfigError(f"{cls.__name__}: {'; '.join(renamed)} (one CPU naming: "
                              "cpus_per_worker, task_cpus, actor_cpus)")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; "
                              f"known: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        kwargs = {k: _convert(v, hints[k], f"{cls.__name__}.{k}") for k, v in data.items()}
        config = cls(**kwargs)
        if overlay is not None:
            config = config._with_smoke(overlay)
        return config

    def _with_smoke(self: C, overlay: Any) -> C:
        """This config carrying a smoke overlay, checked by applying it once."""
        name = type(self).__name__
        if type(self).smoke is not Config.smoke:
            raise ConfigError(f"{name}: its smoke settings are code ({name}.smoke), not a "
                              f"'{SMOKE_KEY}:' section")
        if not isinstance(overlay, dict):
            raise ConfigError(f"{name}.{SMOKE_KEY} = {overlay!r:.80} is invalid: expected a "
                              "mapping of fields to change")
        try:
            self.overlay(overlay)
        except ConfigError as exc:
            raise ConfigError(f"{name}.{SMOKE_KEY}: {exc}") from None
        self.__dict__["_smoke"] = overlay
        return self

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
        """A validated copy with some fields changed (a smoke overlay travels with it)."""
        copy = dataclasses.replace(self, **changes)
        if "_smoke" in self.__dict__:
            copy.__dict__["_smoke"] = self.__dict__["_smoke"]
        return copy

    def overlay(self: C, changes: dict[str, Any]) -> C:
        """A validated copy with ``changes`` deep-merged into its fields.

        Nested configs and mappings merge key by key, other values (lists included) replace;
        a mapping onto a null field leaves it null.
        """
        return type(self).from_dict(_merge(self.to_dict(), changes))

    def has_smoke(self) -> bool:
        """Whether :meth:`smoke` can shrink this config (an overlay, or a class's own code)."""
        return "_smoke" in self.__dict__ or type(self).smoke is not Config.smoke

    def smoke(self: C) -> C:
        """This configuration shrunk to run in minutes on 2 CPUs (the jobs' ``--smoke``).

        The base form merges the ``smoke:`` section read with the config (see
        :meth:`overlay`), after shrinking every nested config that has smoke settings of its
        own (a sweep's ``base``). A family whose shrinking depends on the machine or on the
        values themselves (a folder that exists here, each of a list of data sets) overrides
        this method instead.

        Raises:
            ConfigError: the config has no smoke settings.
        """
        overlay = self.__dict__.get("_smoke")
        if overlay is None:
            raise ConfigError(f"{type(self).__name__}: no smoke settings (a '{SMOKE_KEY}:' "
                              "section of its YAML)")
        nested = {f.name: value.smoke() for f in dataclasses.fields(self)
                  if isinstance(value := getattr(self, f.name), Config) and value.has_smoke()}
        shrunk = self.replace(**nested) if nested else self
        return shrunk.overlay(overlay)


# ------------------------------------------------------------------------------------------
# Shared groups of fields (mixed into the configs that train on Ray Train)
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainResources(Config):
    """What a Ray Train run asks the cluster for; :meth:`scaling_config` is Ray's form of it.

    The one CPU/GPU naming of the package: ``cpus_per_worker`` for a Train worker,
    ``task_cpus`` for a Ray task (Ray Data's read and map tasks included), ``actor_cpus`` for
    an actor, ``use_gpu`` for one GPU per worker (see :data:`RENAMED_FIELDS`).

    Attributes:
        num_workers: Ray Train workers (DDP).
        use_gpu: one GPU per worker (NCCL, bf16 autocast); None: when the cluster has them.
        cpus_per_worker: CPUs each worker reserves (its torch threads); fractions leave CPUs to
            Ray Data's tasks, which a run short of CPUs waits for rather than fails.
        max_failures: worker-group restarts allowed, each from the last checkpoint.
    """

    num_workers: int = 2
    use_gpu: bool | None = None
    cpus_per_worker: float = 0.5
    max_failures: int = 1

    def check_train_resources(self) -> None:
        """Check the fields (called by :func:`check_training`)."""
        check(isinstance(self.num_workers, int) and not isinstance(self.num_workers, bool)
              and self.num_workers > 0, self, "num_workers", self.num_workers,
              "a positive integer")
        check(self.use_gpu is None or isinstance(self.use_gpu, bool), self, "use_gpu",
              self.use_gpu, "true, false or null")
        check_cpus(self, "cpus_per_worker")
        check(isinstance(self.max_failures, int) and self.max_failures >= 0, self,
              "max_failures", self.max_failures, "a non-negative integer")

    def scaling_config(self, use_gpu: bool | None = None) -> Any:
        """Ray Train's ``ScalingConfig`` of these resources.

        Args:
            use_gpu: the decision for ``use_gpu: null`` (whether the cluster has GPUs);
                ignored when the field says true or false.
        """
        from ray.train import ScalingConfig  # lazy: Ray Train is heavy; configs load without it

        gpu = bool(self.use_gpu if self.use_gpu is not None else use_gpu)
        # use_gpu gives each worker one GPU; the CPU request stays as set (fractional), so
        # that Ray Data's read and windowing tasks keep CPUs.
        return ScalingConfig(num_workers=self.num_workers, use_gpu=gpu,
                             resources_per_worker={"CPU": self.cpus_per_worker})


@dataclasses.dataclass
class ActorResources(Config):
    """A Ray Data actor pool (bulk inference, embedding); :meth:`actor_pool` is Ray's form of it.

    Attributes:
        num_actors: model actors (one per GPU on a GPU cluster).
        actor_cpus: CPUs per actor (its torch threads on a CPU machine).
        use_gpu: one GPU per actor; None: when the cluster has one.
    """

    num_actors: int = 1
    actor_cpus: float = 1.0
    use_gpu: bool | None = None

    def check_actor_resources(self) -> None:
        """Check the fields."""
        check_positive_ints(self, "num_actors")
        check_cpus(self, "actor_cpus")
        check(self.use_gpu is None or isinstance(self.use_gpu, bool), self, "use_gpu",
              self.use_gpu, "true, false or null")

    def actor_pool(self, use_gpu: bool | None = None) -> dict[str, Any]:
        """The ``map_batches`` arguments of the pool: ``compute``, ``num_cpus``, ``num_gpus``.

        Args:
            use_gpu: the decision for ``use_gpu: null`` (whether the cluster has a GPU);
                ignored when the field says true or false.
        """
        import ray.data  # lazy: Ray Data is heavy; configs load without it

        gpu = bool(self.use_gpu if self.use_gpu is not None else use_gpu)
        return {"compute": ray.data.ActorPoolStrategy(size=self.num_actors),
                "num_cpus": self.actor_cpus, "num_gpus": 1 if gpu else 0}


@dataclasses.dataclass
class Optimization(Config):
    """The optimiser settings of a training run (AdamW; each family sets its schedule).

    Attributes:
        epochs: most passes over the training objects.
        batch_size: examples per step and worker.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        grad_clip: gradient-norm clip (0: none).
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0

    def check_optimization(self) -> None:
        """Check the fields."""
        check_positive_ints(self, "epochs", "batch_size")
        check(isinstance(self.lr, int | float) and not isinstance(self.lr, bool)
              and self.lr > 0, self, "lr", self.lr, "a positive number")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and not isinstance(value, bool) and value >= 0,
                  self, name, value, "a non-negative number")
