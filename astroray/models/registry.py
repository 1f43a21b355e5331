"""Models built by name: ``create_model("astromer-v2", dropout=0.0)``.

Each family registers its named configurations (and a tiny variant for tests) here; a model
class takes only its config, and saved model folders (``config.json`` + ``model.safetensors``)
name their family in ``model_type`` so that :func:`load_model` can rebuild any of them.

The registry knows no family: :mod:`astroray.models` imports the families, which register
themselves (timm's pattern), so any import of ``astroray.models.*`` fills it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from astroray.config import Config, ConfigError
from astroray.models.pretrained import WEIGHTS_NAME, read_config_json, read_safetensors_header

__all__ = ["ModelEntry", "check_model_folder", "create_model", "create_tiny_model", "get_config",
           "list_families", "list_models", "list_published", "load_model", "register_family",
           "register_model", "register_published", "resolve_model_path", "tiny_overrides"]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered model: its class, its default config, overrides that make it tiny."""

    name: str
    model_cls: type[nn.Module]
    config: Config
    tiny: dict[str, Any]


_REGISTRY: dict[str, ModelEntry] = {}
#: Families that exist only as trained, saved models (a classifier built around a pretrained
#: encoder), by ``model_type``: :func:`load_model` rebuilds them; they have no named config,
#: only a tiny one for tests (the entry's ``config``).
_FAMILIES: dict[str, ModelEntry] = {}
#: Published weights by name (``astromer1-macho``): a function returning the model folder
#: (a cache, or a conversion of a local copy of the authors' weights).
_PUBLISHED: dict[str, Callable[[], Path]] = {}


def _check_model_class(model_cls: type[nn.Module]) -> None:
    """Refuse a class that :func:`load_model` or the all-models test could not handle."""
    missing = [a for a in ("model_type", "config_class", "from_pretrained", "dummy_inputs")
               if not hasattr(model_cls, a)]
    if missing:
        raise TypeError(f"{model_cls.__name__} cannot be registered: it lacks {missing}")


def register_family(model_cls: type[nn.Module], *, tiny: Config) -> None:
    """Make saved folders of ``model_cls`` (by its ``model_type``) loadable by load_model.

    Args:
        model_cls: a family without named configurations (a classifier assembled around a
            trained encoder), with ``model_type``, ``config_class`` and ``dummy_inputs``.
        tiny: a tiny configuration of the family (for tests).

    Raises:
        TypeError: when the class lacks one of those attributes.
    """
    _check_model_class(model_cls)
    model_type = model_cls.model_type  # type: ignore[attr-defined]
    _FAMILIES[model_type] = ModelEntry(model_type, model_cls, tiny, {})


def list_families() -> list[str]:
    """``model_type`` of the families registered without a named configuration, sorted."""
    return sorted(_FAMILIES)


def register_published(name: str, resolver: Callable[[], Path]) -> None:
    """Make ``load_model(name)`` open the folder that ``resolver()`` returns."""
    _PUBLISHED[name] = resolver


def list_published() -> list[str]:
    """Names of published weights that :func:`load_model` accepts, sorted."""
    return sorted(_PUBLISHED)


def resolve_model_path(model: str | Path) -> str:
    """A saved model folder for ``model``: the path itself, or a published name's folder.

    Raises:
        FileNotFoundError: for a published name whose weights are not available here, or a
            path that is neither a folder nor a published name.
    """
    if Path(model).is_dir():
        return str(model)
    if str(model) in _PUBLISHED:
        return str(_PUBLISHED[str(model)]())
    raise FileNotFoundError(f"{model}: no such model folder (and not a published model: "
                            f"{sorted(_PUBLISHED)})")


def register_model(name: str, model_cls: type[nn.Module], config: Config, *,
                   tiny: dict[str, Any] | None = None) -> None:
    """Register a named configuration of a model class.

    Args:
        name: the registry name (``astromer-v1``).
        model_cls: a ``torch.nn.Module`` built from its config alone, with a ``model_type``,
            its ``config_class`` and a ``dummy_inputs(config)`` class method (tiny inputs of
            its forward, for tests).
        config: the default configuration.
        tiny: config overrides giving a tiny model of the same family (for tests).

    Raises:
        ValueError: when the name is taken by another class or config.
        TypeError: when the class lacks ``model_type``, ``config_class`` or
            ``dummy_inputs``.
    """
    _check_model_class(model_cls)
    entry = ModelEntry(name, model_cls, config, dict(tiny or {}))
    old = _REGISTRY.get(name)
    if old is not None and (old.model_cls is not model_cls or old.config != config):
        raise ValueError(f"model name {name!r} is already registered to {old.model_cls.__name__}")
    config.replace(**entry.tiny)  # fail now, not in a test run, if the overrides are invalid
    _REGISTRY[name] = entry


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {sorted(_REGISTRY)}") from None


def get_config(name: str, **overrides: Any) -> Config:
    """The validated config of a registered model with ``overrides`` applied."""
    return _entry(name).config.replace(**overrides)


def tiny_overrides(name: str) -> dict[str, Any]:
    """Config overrides that shrink a registered model for tests."""
    return dict(_entry(name).tiny)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model (random initialisation) with config ``overrides``.

    Raises:
        KeyError: for an unknown name (the message lists the registered ones).
        astroray.config.ConfigError: for an invalid override.
    """
    entry = _entry(name)
    return entry.model_cls(entry.config.replace(**overrides))  # type: ignore[call-arg]


def create_tiny_model(name: str) -> nn.Module:
    """A tiny, randomly initialised model of a registered name or family (for tests).

    Args:
        name: a registered name (its ``tiny`` overrides applied) or the ``model_type`` of a
            family registered without one (:func:`list_families`; its tiny config).

    Raises:
        KeyError: for a name that is neither.
    """
    if name in _REGISTRY or name not in _FAMILIES:
        return create_model(name, **tiny_overrides(name))
    entry = _FAMILIES[name]
    return entry.model_cls(entry.config)  # type: ignore[call-arg]


def _families() -> dict[str, type[nn.Module]]:
    """Every loadable family's class by ``model_type``."""
    families = {getattr(e.model_cls, "model_type", None): e.model_cls for e in _REGISTRY.values()}
    families.update({k: e.model_cls for k, e in _FAMILIES.items()})
    return families  # type: ignore[return-value]


def load_model(path: str | Path, **overrides: Any) -> nn.Module:
    """Rebuild any registered family's model from a saved folder (``from_pretrained``).

    Args:
        path: a folder ``save_pretrained`` wrote, or the name of published weights
            (:func:`list_published`, e.g. ``astromer1-macho``).
        **overrides: config fields to change.

    Raises:
        FileNotFoundError: when the folder does not exist or lacks ``config.json``.
    """
    path = resolve_model_path(path)
    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"{Path(path) / 'config.json'} not found: not a saved model "
                                "folder")
    model_type = read_config_json(path).get("model_type")
    families = _families()
    if model_type in families:
        return families[model_type].from_pretrained(path, **overrides)  # type: ignore[attr-defined]
    raise ValueError(f"{path}: unknown model_type {model_type!r}")


def check_model_folder(path: str | Path) -> dict[str, Any]:
    """Check a saved model folder without loading its weights; returns its raw config.

    Checks that ``config.json`` parses, names a known ``model_type`` and is a valid config of
    that family, and that ``model.safetensors`` is complete and holds exactly the tensors, of
    the shapes, that the config's model has (built on the ``meta`` device: no memory).

    Raises:
        FileNotFoundError: when the folder or one of its files is missing.
        ValueError: naming the file and what is wrong.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such model folder")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a saved model folder (no config.json)")
    raw = read_config_json(path)
    model_type = raw.get("model_type")
    families = _families()
    if model_type not in families:
        raise ValueError(f"{path / 'config.json'}: unknown model_type {model_type!r}; known: "
                         f"{sorted(k for k in families if k)}")
    tensors = read_safetensors_header(path / WEIGHTS_NAME)
    cls = families[model_type]
    fields = {k: v for k, v in raw.items() if k != "model_type"}
    try:
        config = cls.config_class.from_dict(fields)  # type: ignore[attr-defined]
    except ConfigError as exc:
        raise ValueError(f"{path / 'config.json'}: {exc}") from None
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in cls(config).state_dict().items()}
    except Exception:  # noqa: BLE001 - a family that cannot be built on meta: header only
        return raw
    got = {k: tuple(int(d) for d in v["shape"]) for k, v in tensors.items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}")
        if wrong:
            parts.append("shape " + ", ".join(f"{k} {got[k]} (config says {expected[k]})"
                                              for k in wrong[:3]))
        raise ValueError(f"{path / WEIGHTS_NAME}: does not match {path / 'config.json'}: "
                         + "; ".join(parts))
    return raw
