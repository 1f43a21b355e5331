"""astroray: survey-scale astronomy machine learning on Ray.

Read light curves, spectra and alert stamps from the surveys' own formats into canonical Arrow
tables (:mod:`astroray.data`), render them as images, train and sweep the field's models, run
bulk inference and serve them, on a laptop or a Ray cluster. From Python, without Ray::

    model = astroray.load_model("out/demo/catalogue/train/model")   # or "astromer1-macho"
    rows = astroray.predict(model, "light-curves/")                 # a pandas DataFrame

Public names are imported when first used (PEP 562), so that ``import astroray`` and the
CLI's argument checks do not pay for Ray and torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from astroray._version import __version__

_EXPORTS = {
    "list_formats": "astroray.data.registry",
    "read_files": "astroray.data.registry",
    "read_light_curves": "astroray.data.datasource",
    "read_spectra": "astroray.data.datasource",
    "read_stamps": "astroray.data.datasource",
    "validate_table": "astroray.data.schema",
    "load_model": "astroray.api",
    "predict": "astroray.api",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'astroray' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
