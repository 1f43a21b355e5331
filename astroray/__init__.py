"""astroray: survey-scale astronomy machine learning on Ray.

Read light curves, spectra and alert stamps from the surveys' own formats into canonical Arrow
tables (:mod:`astroray.data`), render them as images, train and sweep the field's models, run
bulk inference and serve them, on a laptop or a Ray cluster.
"""

from astroray.data import (
    list_formats,
    read_files,
    read_light_curves,
    read_spectra,
    read_stamps,
    validate_table,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "list_formats",
    "read_files",
    "read_light_curves",
    "read_spectra",
    "read_stamps",
    "validate_table",
]
