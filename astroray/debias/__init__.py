"""Labelling bias of galaxy morphologies: the metric L, biased synthetic labels, de-biasing.

* :func:`bias_metric`: L, the change of a class fraction with the observables at fixed
  intrinsic properties (:mod:`astroray.debias.metric`);
* :func:`galaxy_images`: galaxies with intrinsic morphology, observed at a redshift and
  through a PSF, with human labels that miss unresolved features; :func:`degrade`: artificially
  redshifted copies (:mod:`astroray.debias.galaxies`).

The study built on them (a naive CNN on the biased labels and the de-biasing strategies, with
their accuracy against the true morphology and their L; ``jobs/debias.py``) is
:mod:`astroray.studies.debias`.
"""

from astroray.debias.galaxies import (
    CLASSES,
    GalaxyConfig,
    angular_scale,
    degrade,
    galaxy_images,
    gaussian_blur,
    label_probability,
)
from astroray.debias.metric import (
    bias_metric,
    bootstrap_bias_metric,
    class_fraction_curve,
    quantile_bins,
)

__all__ = [
    "CLASSES",
    "GalaxyConfig",
    "angular_scale",
    "bias_metric",
    "bootstrap_bias_metric",
    "class_fraction_curve",
    "degrade",
    "galaxy_images",
    "gaussian_blur",
    "label_probability",
    "quantile_bins",
]
