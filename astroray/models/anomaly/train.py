"""Training of the detectors: autoencoder pretraining, then (MC) Deep SVDD; and the baselines.

:func:`pretrain_autoencoder` fits the input transform and trains encoder + decoder on the
mean squared reconstruction error of the inlier objects. :func:`train_svdd` starts from those
weights, fixes the centres at the mean latent of each inlier class (one centre of all inliers
for Deep SVDD), then trains the encoder alone to minimise the mean squared distance of each
object to its own centre (the decoder is left as pretrained). :func:`baseline_scores` gives
the scores of Isolation Forest and One-Class SVM (scikit-learn) on the same transformed inputs.
Plain PyTorch on the CPU: the models are small, and the protocol runs many of them in parallel
as Ray tasks.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from astroray.config import Config, check, check_positive_ints
from astroray.models.anomaly._quantile import fit_quantiles, quantile_transform
from astroray.models.anomaly.config import MCDSVDDConfig
from astroray.models.anomaly.model import MCDSVDD

__all__ = ["BASELINES", "DetectorTrainConfig", "baseline_scores", "fit_detector",
           "pretrain_autoencoder", "train_svdd"]

#: The scikit-learn baselines.
BASELINES = ("isolation_forest", "ocsvm")


@dataclasses.dataclass
class DetectorTrainConfig(Config):
    """Optimisation of the autoencoder pretraining and of the SVDD stage.

    Attributes:
        pretrain_epochs: autoencoder epochs.
        epochs: SVDD epochs.
        batch_size: objects per step.
        lr: Adam learning rate of both stages.
        weight_decay: L2 weight decay (the Deep SVDD regulariser).
        centre_eps: non-zero centre coordinates closer to 0 are set to +-eps (0.01, the
            authors'; our earlier default was 0.1).
        seed: seed of the initialisation and the batch order.
    """

    pretrain_epochs: int = 100
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-6
    centre_eps: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_ints(self, "pretrain_epochs", "epochs", "batch_size")
        check(isinstance(self.lr, int | float) and self.lr > 0, self, "lr", self.lr,
              "a positive number")
        check(isinstance(self.weight_decay, int | float) and self.weight_decay >= 0, self,
              "weight_decay", self.weight_decay, "a number >= 0")
        check(isinstance(self.centre_eps, int | float) and self.centre_eps >= 0, self,
              "centre_eps", self.centre_eps, "a number >= 0")
        check(isinstance(self.seed, int) and self.seed >= 0, self, "seed", self.seed,
              "a non-negative integer")


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches; a last batch of one object joins the previous (BatchNorm)."""
    order = torch.randperm(n, generator=generator)
    parts = list(order.split(batch_size))
    if len(parts) > 1 and len(parts[-1]) < 2:
        parts[-2] = torch.cat([parts[-2], parts.pop()])
    return parts


def pretrain_autoencoder(x: np.ndarray, config: MCDSVDDConfig, train: DetectorTrainConfig
                         ) -> tuple[MCDSVDD, list[float]]:
    """Fit the input transform and pretrain encoder + decoder on inlier inputs.

    Args:
        x: raw inputs of the inlier training objects, (N, F).
        config: the detector (its centres are set later by :func:`train_svdd`).
        train: optimisation settings.

    Returns:
        ``(model, losses)``: the model in eval mode, and the mean loss of each epoch.
    """
    if len(x) < 2:
        raise ValueError(f"need at least 2 training objects, got {len(x)}")
    torch.manual_seed(train.seed)
    model = MCDSVDD(config)
    xt = torch.from_numpy(model.fit_transform(x))  # (N, F)
    opt = torch.optim.Adam([p for n, p in model.named_parameters()
                            if not n.startswith("astromer.")], lr=train.lr,
                           weight_decay=train.weight_decay)
    gen = torch.Generator().manual_seed(train.seed)
    losses = []
    model.train()
    for _ in range(train.pretrain_epochs):
        total = 0.0
        for idx in _batches(len(xt), train.batch_size, gen):
            xb = xt[idx]
            loss = (model.reconstruct(xb) - xb).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(xt))
    return model.eval(), losses


def train_svdd(autoencoder: MCDSVDD, x: np.ndarray, labels: Sequence[str] | np.ndarray,
               train: DetectorTrainConfig, *, centres: str | None = None
               ) -> tuple[MCDSVDD, list[float]]:
    """Centres from the pretrained encoder, then the SVDD training of the encoder.

    Args:
        autoencoder: a model from :func:`pretrain_autoencoder` (not modified).
        x: raw inputs of the inlier training objects, (N, F).
        labels: their classes (N,), each one of the model's inlier ``labels``.
        train: optimisation settings.
        centres: ``per_class`` / ``single`` to override the model's mode (Deep SVDD from the
            same pretrained weights); None keeps it.

    Returns:
        ``(model, losses)``: a new model in eval mode (``score_scale`` set to the median
        training score), and the mean loss of each epoch.
    """
    config = autoencoder.config
    if centres is not None and centres != config.centres:
        config = config.replace(centres=centres)
    model = MCDSVDD(config)
    state = {k: v for k, v in copy.deepcopy(autoencoder.state_dict()).items()
             if k != "centres"}
    model.load_state_dict(state, strict=False)
    xt = torch.from_numpy(model.transform(x))  # (N, F)
    model.eval()
    with torch.no_grad():
        model.set_centres(model.encode(xt), labels, eps=train.centre_eps)
    own = torch.from_numpy(model.centre_index(labels))  # (N,)
    torch.manual_seed(train.seed + 1)
    opt = torch.optim.Adam(model.encoder.parameters(), lr=train.lr,
                           weight_decay=train.weight_decay)
    gen = torch.Generator().manual_seed(train.seed + 1)
    losses = []
    model.train()
    for _ in range(train.epochs):
        total = 0.0
        for idx in _batches(len(xt), train.batch_size, gen):
            z = model.encode(xt[idx])  # (b, z)
            loss = (z - model.centres[own[idx]]).pow(2).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(xt))
    model.eval()
    scores, _, _ = model.score(x)
    median = float(np.median(scores))
    model.config = model.config.replace(score_scale=median if median > 0 else 1.0)
    return model, losses


def fit_detector(x: np.ndarray, labels: Sequence[str] | np.ndarray, config: MCDSVDDConfig,
                 train: DetectorTrainConfig) -> tuple[MCDSVDD, dict[str, Any]]:
    """Pretrain, then train an MCDSVDD (or Deep SVDD) detector on inlier objects.

    Args:
        x: raw inputs (N, F) of the inlier training objects.
        labels: their classes (N,).
        config: the detector; its ``labels`` are the inlier classes.
        train: optimisation settings.

    Returns:
        ``(model, history)``: the detector in eval mode, and the losses and seconds of both
        stages.
    """
    started = time.perf_counter()
    ae, ae_losses = pretrain_autoencoder(x, config, train)
    mid = time.perf_counter()
    model, losses = train_svdd(ae, x, labels, train)
    return model, {"pretrain_loss": ae_losses, "svdd_loss": losses,
                   "pretrain_seconds": mid - started,
                   "svdd_seconds": time.perf_counter() - mid}


def baseline_scores(x_train: np.ndarray, x_test: np.ndarray, *, seed: int = 0,
                    trees: int = 200, nu: float = 0.1, transform: str = "uniform"
                    ) -> dict[str, np.ndarray]:
    """Isolation Forest and One-Class SVM scores (higher: more anomalous) of test objects.

    Both see the inputs the detectors see (as in the authors' code): quantile-transformed
    with quantiles fitted on ``x_train``.

    Args:
        x_train: raw inputs (N, F) of the inlier training objects.
        x_test: raw inputs (M, F) to score.
        seed: Isolation Forest's random state.
        trees: Isolation Forest's trees.
        nu: One-Class SVM's bound on the fraction of training outliers.
        transform: ``uniform`` (missing -1) or ``normal`` (missing 0), as the detector's
            ``input_transform``.

    Returns:
        ``{"isolation_forest": (M,), "ocsvm": (M,)}``.
    """
    from sklearn.ensemble import IsolationForest  # lazy: sklearn
    from sklearn.svm import OneClassSVM  # lazy: sklearn

    quantiles, references = fit_quantiles(x_train, 1000)
    a = quantile_transform(x_train, quantiles, references, transform)
    b = quantile_transform(x_test, quantiles, references, transform)
    forest = IsolationForest(n_estimators=trees, random_state=seed).fit(a)
    svm = OneClassSVM(nu=nu, gamma="scale").fit(a)
    return {"isolation_forest": -forest.score_samples(b), "ocsvm": -svm.score_samples(b)}
