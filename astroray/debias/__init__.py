"""Labelling bias of galaxy morphologies: the metric L, biased synthetic labels, de-biasing.

* :func:`bias_metric`: L, the change of a class fraction with the observables at fixed
  intrinsic properties (:mod:`astroray.debias.metric`);
* :func:`galaxy_images`: galaxies with intrinsic morphology, observed at a redshift and
  through a PSF, with human labels that miss unresolved features; :func:`degrade`: artificially
  redshifted copies (:mod:`astroray.debias.galaxies`);
* :func:`run_debias`: a naive CNN on the biased labels and the de-biasing strategies, with
  their accuracy against the true morphology and their L (:mod:`astroray.debias.train`).
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
from astroray.debias.train import (
    STRATEGIES,
    DebiasConfig,
    evaluate,
    run_debias,
    train_strategy,
    well_resolved,
)

__all__ = [
    "CLASSES",
    "STRATEGIES",
    "DebiasConfig",
    "GalaxyConfig",
    "angular_scale",
    "bias_metric",
    "bootstrap_bias_metric",
    "class_fraction_curve",
    "degrade",
    "evaluate",
    "galaxy_images",
    "gaussian_blur",
    "label_probability",
    "quantile_bins",
    "run_debias",
    "train_strategy",
    "well_resolved",
]
