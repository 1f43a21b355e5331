"""One class vocabulary for every survey: canonical label names and the spellings mapped to them.

The vocabulary is data, not code: ``astroray/data/taxonomy.yaml`` (shipped with the package)
lists each canonical class with its aliases and sub-types, and survey-specific spellings (the
Stripe 82 RR Lyrae ``ab``/``c``, ELAsTiCC's numeric classId). Readers do not call this module
themselves: :func:`astroray.data.registry.read_records` applies :func:`resolve_label` to every
record at the ingest boundary, so that every canonical table holds the canonical name in
``label`` and the source's own spelling in ``label_raw``. Labels the vocabulary does not know
are kept as they are (and counted as unknown by the ingest summary); canonical names map to
themselves, so canonical tables read back unchanged.

Matching ignores case, white space, ``_`` and ``-`` (``SN Ia``, ``sn_ia`` and ``SNIa`` are one
spelling), which is why the loader refuses an alias listed under two classes.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

__all__ = [
    "ClassInfo",
    "Taxonomy",
    "TaxonomyError",
    "ancestors",
    "canonical_label",
    "canonical_labels",
    "canonical_names",
    "count_unknown",
    "is_canonical",
    "load_taxonomy",
    "resolve_label",
]

_GROUPS = ("periodic", "stochastic", "transient", "spectrum", "stamp")
_SEPARATORS = re.compile(r"[\s_\-]+")


class TaxonomyError(ValueError):
    """The taxonomy file is malformed (names the class or alias at fault)."""


def _key(raw: str) -> str:
    """The matching key of a spelling: case, white space, ``_`` and ``-`` ignored."""
    return _SEPARATORS.sub("", raw.strip()).casefold()


def _text(value: Any) -> str | None:
    """A raw label as text: numbers as integers where integral (ELAsTiCC's 2222.0 is 2222)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


@dataclass(frozen=True)
class ClassInfo:
    """One canonical class."""

    name: str
    group: str
    description: str = ""
    parent: str | None = None
    aliases: tuple[str, ...] = ()
    subtypes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Scope:
    name: str
    patterns: tuple[str, ...]
    lookup: dict[str, str]

    def matches(self, survey: str) -> bool:
        survey = survey.lower()
        return any(fnmatch.fnmatchcase(survey, p.lower()) for p in self.patterns)


@dataclass
class Taxonomy:
    """The loaded vocabulary.

    Attributes:
        classes: canonical name -> its :class:`ClassInfo`.
        null_labels: matching keys of spellings that mean "no class".
        version: the file's version number.
    """

    classes: dict[str, ClassInfo]
    null_labels: frozenset[str]
    version: int
    _lookup: dict[str, str] = field(default_factory=dict, repr=False)
    _scopes: tuple[_Scope, ...] = field(default=(), repr=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Taxonomy:
        """Build and check a taxonomy from the parsed YAML.

        Raises:
            TaxonomyError: an unknown group or parent, or a spelling listed under two classes.
        """
        raw_classes = data.get("classes") or {}
        if not isinstance(raw_classes, Mapping) or not raw_classes:
            raise TaxonomyError("taxonomy: 'classes' must be a non-empty mapping")
        classes: dict[str, ClassInfo] = {}
        lookup: dict[str, str] = {}

        def claim(spelling: Any, canonical: str, where: str) -> None:
            text = _text(spelling)
            if text is None:
                raise TaxonomyError(f"taxonomy: empty spelling under {where}")
            key = _key(text)
            other = lookup.get(key)
            if other is not None and other != canonical:
                raise TaxonomyError(f"taxonomy: spelling {text!r} ({where}) is also a spelling "
                                    f"of {other!r}")
            lookup[key] = canonical

        for name, spec in raw_classes.items():
            name = str(name)
            spec = spec or {}
            group = spec.get("group")
            if group not in _GROUPS:
                raise TaxonomyError(f"taxonomy: class {name!r}: group {group!r} is not one of "
                                    f"{_GROUPS}")
            info = ClassInfo(name=name, group=group, description=str(spec.get("description", "")),
                             parent=spec.get("parent"),
                             aliases=tuple(str(a) for a in spec.get("aliases") or ()),
                             subtypes=tuple(str(a) for a in spec.get("subtypes") or ()))
            classes[name] = info
            claim(name, name, f"class {name!r}")
        for info in classes.values():
            for alias in info.aliases:
                claim(alias, info.name, f"aliases of {info.name!r}")
            for sub in info.subtypes:
                claim(sub, info.name, f"subtypes of {info.name!r}")
            if info.parent is not None and info.parent not in classes:
                raise TaxonomyError(f"taxonomy: class {info.name!r}: parent {info.parent!r} is "
                                    "not a class")
        scopes = []
        for scope_name, spec in (data.get("surveys") or {}).items():
            patterns = tuple(str(p) for p in spec.get("match") or ())
            if not patterns:
                raise TaxonomyError(f"taxonomy: survey {scope_name!r} has no 'match' patterns")
            scoped: dict[str, str] = {}
            for spelling, canonical in (spec.get("aliases") or {}).items():
                canonical = str(canonical)
                if canonical not in classes:
                    raise TaxonomyError(f"taxonomy: survey {scope_name!r}: alias {spelling!r} "
                                        f"maps to {canonical!r}, which is not a class")
                key = _key(_text(spelling) or "")
                if scoped.get(key, canonical) != canonical:
                    raise TaxonomyError(f"taxonomy: survey {scope_name!r}: spelling {spelling!r}"
                                        f" maps to both {scoped[key]!r} and {canonical!r}")
                scoped[key] = canonical
            scopes.append(_Scope(str(scope_name), patterns, scoped))
        nulls = frozenset(_key(str(v)) for v in data.get("null_labels") or ())
        clash = sorted(k for k in nulls if k in lookup)
        if clash:
            raise TaxonomyError(f"taxonomy: null labels {clash} are also class spellings")
        return cls(classes, nulls, int(data.get("version", 1)), lookup, tuple(scopes))

    def resolve(self, raw: Any, survey: str | None = None) -> tuple[str | None, bool]:
        """``(label, known)`` for one raw label.

        Returns:
            ``(canonical, True)`` for a known spelling, ``(None, True)`` for a spelling of "no
            class" (``Unknown``, ``?``) or no label at all, ``(raw, False)`` for a label the
            vocabulary does not know (kept as given, stripped).
        """
        text = _text(raw)
        if text is None:
            return None, True
        key = _key(text)
        if survey:
            for scope in self._scopes:
                if key in scope.lookup and scope.matches(survey):
                    return scope.lookup[key], True
        canonical = self._lookup.get(key)
        if canonical is not None:
            return canonical, True
        if key in self.null_labels or not key:
            return None, True
        return text, False

    def ancestors(self, name: str) -> list[str]:
        """The class and its coarser parents, finest first (``RRab`` -> ``[RRab, RRL]``)."""
        out: list[str] = []
        while name in self.classes and name not in out:
            out.append(name)
            parent = self.classes[name].parent
            if parent is None:
                break
            name = parent
        return out


def _default_path() -> Path:
    return Path(str(resources.files("astroray.data").joinpath("taxonomy.yaml")))


@lru_cache(maxsize=4)
def load_taxonomy(path: str | None = None) -> Taxonomy:
    """Load (once per process) the taxonomy shipped with astroray, or another file.

    Raises:
        TaxonomyError: when the file is malformed.
    """
    source = Path(path) if path is not None else _default_path()
    with open(source, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, Mapping):
        raise TaxonomyError(f"{source}: not a YAML mapping")
    return Taxonomy.from_mapping(data)


def resolve_label(raw: Any, survey: str | None = None) -> tuple[str | None, bool]:
    """What goes into ``label`` for a raw label, and whether the vocabulary knows it.

    See :meth:`Taxonomy.resolve`.
    """
    return load_taxonomy().resolve(raw, survey)


def canonical_label(raw: Any, survey: str | None = None) -> str | None:
    """The canonical class name of a raw label; None when unknown or empty.

    Args:
        raw: the label as a survey spells it (``"SN Ia-91bg"``, ``"ab"``, ``2222``).
        survey: the survey of the record, which enables survey-specific spellings
            (``"ab"`` is ``RRab`` for ``rrlyrae_stripe82``).
    """
    label, known = resolve_label(raw, survey)
    return label if known else None


def is_canonical(name: str | None) -> bool:
    """Whether ``name`` is a canonical class name (exactly, not an alias)."""
    return name is not None and name in load_taxonomy().classes


def canonical_names(group: str | None = None) -> list[str]:
    """The canonical class names, in file order (optionally of one group)."""
    return [n for n, c in load_taxonomy().classes.items() if group is None or c.group == group]


def ancestors(name: str) -> list[str]:
    """The class and its coarser parents, finest first; [] for a name that is not a class."""
    return load_taxonomy().ancestors(name)


def canonical_labels(labels: pa.Array | pa.ChunkedArray | Iterable[Any],
                     survey: str | None = None) -> pa.Array:
    """The vectorised form of :func:`resolve_label`'s label: one lookup per distinct value.

    Unknown labels are kept as they are, null spellings become null.

    Args:
        labels: raw labels (Arrow array of strings or numbers, or any iterable).
        survey: the survey of all the labels (enables survey-specific spellings).

    Returns:
        A string array of the same length.
    """
    if not isinstance(labels, pa.Array | pa.ChunkedArray):
        labels = pa.array([_text(v) for v in labels], type=pa.string())
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    if not pa.types.is_string(labels.type) and not pa.types.is_large_string(labels.type):
        labels = pa.array([_text(v) for v in labels.to_pylist()], type=pa.string())
    encoded = labels.dictionary_encode()
    mapped = pa.array([resolve_label(v, survey)[0] for v in encoded.dictionary.to_pylist()],
                      type=pa.string())
    return mapped.take(encoded.indices)


def count_unknown(labels: pa.Array | pa.ChunkedArray | Iterable[Any]) -> dict[str, int]:
    """Counts of the labels that are not canonical names (nulls ignored), most common first."""
    if isinstance(labels, pa.Array | pa.ChunkedArray):
        counts = pc.value_counts(labels).to_pylist()
        pairs = [(c["values"], c["counts"]) for c in counts if c["values"] is not None]
    else:
        pairs = list(Counter(v for v in labels if v is not None).items())
    names = load_taxonomy().classes
    unknown = Counter({str(v): int(n) for v, n in pairs if str(v) not in names})
    return dict(unknown.most_common())
