"""Anomaly detection of light curves: Multi-Class Deep SVDD, Deep SVDD and their baselines."""

from astroray.models.anomaly.config import (
    CENTRE_MODES,
    INPUTS,
    MCDSVDD_DEFAULT,
    MCDSVDD_TINY,
    MCDSVDDConfig,
)
from astroray.models.anomaly.inputs import embedding_inputs, feature_inputs, valid_points
from astroray.models.anomaly.model import MCDSVDD, mlp
from astroray.models.anomaly.train import (
    BASELINES,
    DetectorTrainConfig,
    baseline_scores,
    fit_detector,
    pretrain_autoencoder,
    train_svdd,
)
from astroray.models.registry import register_model

register_model("mcdsvdd", MCDSVDD, MCDSVDD_DEFAULT, tiny=MCDSVDD_TINY)
register_model("deep-svdd", MCDSVDD, MCDSVDD_DEFAULT.replace(centres="single"),
               tiny=MCDSVDD_TINY)

__all__ = [
    "BASELINES",
    "CENTRE_MODES",
    "INPUTS",
    "MCDSVDD",
    "MCDSVDD_DEFAULT",
    "MCDSVDD_TINY",
    "DetectorTrainConfig",
    "MCDSVDDConfig",
    "baseline_scores",
    "embedding_inputs",
    "feature_inputs",
    "fit_detector",
    "mlp",
    "pretrain_autoencoder",
    "train_svdd",
    "valid_points",
]
