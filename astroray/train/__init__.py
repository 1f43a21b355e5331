"""Training on Ray Train: Astromer pretraining, classifier fitting, checkpoints, metrics.

The experiment protocols built on these loops (few-shot tables, uncertainty comparison, domain
adaptation and their sweeps) are in :mod:`astroray.studies`.
"""

from astroray.train.astromer import PretrainConfig, prepare_light_curves, pretrain, split_by_object
from astroray.train.checkpoint import TRAINING_STATE, load_checkpoint, save_checkpoint, unwrap
from astroray.train.classify import ClassifyConfig, ClassifyDataset, GRUClassifier
from astroray.train.metrics import MaskedRegressionMeter, macro_f1, mean_spread
from astroray.train.trainer import (
    autocast,
    gpu_available,
    in_lockstep,
    make_torch_trainer,
    worker_device,
)

__all__ = [
    "TRAINING_STATE",
    "ClassifyConfig",
    "ClassifyDataset",
    "GRUClassifier",
    "MaskedRegressionMeter",
    "PretrainConfig",
    "autocast",
    "gpu_available",
    "in_lockstep",
    "load_checkpoint",
    "macro_f1",
    "make_torch_trainer",
    "mean_spread",
    "prepare_light_curves",
    "pretrain",
    "save_checkpoint",
    "split_by_object",
    "unwrap",
    "worker_device",
]
