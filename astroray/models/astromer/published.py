"""Published Astromer weights by name: ``load_model("astromer1-macho")``.

A name resolves to a converted model folder in the cache
(``$ASTRORAY_CACHE/models/<name>``, default ``~/.cache/astroray/models/<name>``). When the
cache has none, the official TensorFlow weights are converted from the first local copy found:

1. the ``source`` argument;
2. the environment variable of the name (``ASTRORAY_ASTROMER1_MACHO``), a folder with the
   official ``conf.json`` and checkpoint;
3. ``<dir>/<name>`` for each ``dir`` in ``ASTRORAY_WEIGHTS_DIR`` (``os.pathsep``-separated);
4. ``../shared/data/weights/<name>`` from the working directory and from the project root;

and, only with ``download=True`` on a machine with network, the authors' zip from its public
release location (``github.com/astromer-science/weights``, the file the pip package's
``SingleBandEncoder.from_pretraining('macho')`` fetches). Conversion writes into a temporary
folder and renames it into place, so concurrent callers never see half a folder.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from astroray.models.astromer.convert import convert_astromer1

__all__ = ["PUBLISHED", "PublishedWeights", "available_published", "cache_dir", "find_source",
           "published_folder", "resolve_published"]

logger = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    """A published checkpoint: where the authors release it and what it is."""

    name: str
    url: str
    description: str

    @property
    def env_var(self) -> str:
        """The environment variable naming a local copy of the official weights."""
        return "ASTRORAY_" + self.name.upper().replace("-", "_")


PUBLISHED = {
    "astromer1-macho": PublishedWeights(
        "astromer1-macho",
        "https://github.com/astromer-science/weights/raw/main/macho_a0.zip",
        "Astromer 1 (Donoso-Oliva et al. 2023), masked-magnitude pretraining on MACHO "
        "light curves; the authors' TensorFlow weights, converted"),
}


def cache_dir() -> Path:
    """``$ASTRORAY_CACHE/models`` (default ``~/.cache/astroray/models``)."""
    root = os.environ.get("ASTRORAY_CACHE") or os.path.join(Path.home(), ".cache", "astroray")
    return Path(root) / "models"


def _is_official(folder: Path) -> bool:
    return (folder / "conf.json").is_file() and any(folder.glob("*.index"))


def find_source(name: str, source: str | Path | None = None) -> Path | None:
    """The first local copy of the official weights of ``name`` (see the module docstring)."""
    entry = _entry(name)
    candidates: list[Path] = []
    if source is not None:
        candidates.append(Path(source))
    if os.environ.get(entry.env_var):
        candidates.append(Path(os.environ[entry.env_var]))
    for root in filter(None, os.environ.get("ASTRORAY_WEIGHTS_DIR", "").split(os.pathsep)):
        candidates.append(Path(root) / name)
    candidates += [Path.cwd().parent / "shared" / "data" / "weights" / name,
                   _PROJECT_ROOT.parent / "shared" / "data" / "weights" / name]
    for folder in candidates:
        if _is_official(folder):
            return folder
    if source is not None:
        raise FileNotFoundError(f"{source}: not a folder of official Astromer weights "
                                "(conf.json + a TensorFlow checkpoint *.index)")
    return None


def _entry(name: str) -> PublishedWeights:
    try:
        return PUBLISHED[name]
    except KeyError:
        raise KeyError(f"unknown published model {name!r}; known: {sorted(PUBLISHED)}") from None


def _download(entry: PublishedWeights, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    archive = target / "weights.zip"
    logger.info("downloading %s from %s", entry.name, entry.url)
    with urllib.request.urlopen(entry.url, timeout=60) as response:  # noqa: S310 (fixed URL)
        archive.write_bytes(response.read())
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    for folder in [target, *sorted(p for p in target.rglob("*") if p.is_dir())]:
        if _is_official(folder):
            return folder
    raise FileNotFoundError(f"{entry.url}: the archive holds no conf.json + checkpoint")


def resolve_published(name: str, *, source: str | Path | None = None, download: bool = False,
                      refresh: bool = False) -> Path:
    """The converted model folder of a published model, converting (once) when needed.

    Args:
        name: a key of :data:`PUBLISHED` (``astromer1-macho``).
        source: a local folder of the official weights to convert from.
        download: fetch the authors' release when no local copy exists.
        refresh: convert again even when the cache has the folder.

    Returns:
        The folder (``config.json`` + ``model.safetensors``).

    Raises:
        KeyError: for an unknown name.
        FileNotFoundError: when neither the cache nor a local copy has it (and no download).
    """
    entry = _entry(name)
    target = cache_dir() / name
    if not refresh and (target / "model.safetensors").is_file() and (
            target / "config.json").is_file():
        return target
    found = find_source(name, source)
    tmp_root = None
    try:
        if found is None:
            if not download:
                raise FileNotFoundError(
                    f"published model {name!r} is not available here: no converted folder in "
                    f"{target}, no local copy of the official weights (set {entry.env_var} or "
                    f"ASTRORAY_WEIGHTS_DIR, or run `astroray convert astromer1 SRC --out "
                    f"{target}`), and downloading from {entry.url} was not asked for")
            tmp_root = Path(tempfile.mkdtemp(prefix=f"{name}-download-"))
            found = _download(entry, tmp_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            convert_astromer1(found, staging)
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:  # another process won the race: its folder is as good
                if not (target / "model.safetensors").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        if tmp_root is not None:
            shutil.rmtree(tmp_root, ignore_errors=True)
    logger.info("published model %s converted from %s into %s", name, found, target)
    return target


def available_published(name: str) -> Path | None:
    """The converted folder of ``name`` when it is here (cached, or a local copy to convert).

    Never downloads; None when neither the cache nor a local copy has it (a caller then falls
    back, e.g. to pretraining on the spot).
    """
    if (cache_dir() / name / "model.safetensors").is_file() or find_source(name) is not None:
        return resolve_published(name)
    return None


def published_folder(name: str | None) -> tuple[str | None, str | None]:
    """The folder of an encoder given as a model folder or published weights, or why none.

    Never downloads and never raises for weights that are not here: a caller reports the
    reason and skips a row (or falls back, e.g. to pretraining on the spot).

    Args:
        name: a model folder, the name of published weights (a key of :data:`PUBLISHED`,
            ``astromer1-macho``), or None (none asked for).

    Returns:
        ``(folder, None)``: the model folder, or the converted folder of the published
        weights; or ``(None, why not)``.
    """
    if name is None:
        return None, "no published weights asked for (published: null)"
    if Path(name).is_dir():
        return str(name), None

    if name not in PUBLISHED:
        return None, f"{name!r} is neither a model folder nor published weights"
    folder = available_published(name)
    if folder is None:
        return None, (f"the published weights {name!r} are not available here (no cache, no "
                      f"local copy; set {PUBLISHED[name].env_var})")
    return str(folder), None
