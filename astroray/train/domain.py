"""Training a stamp classifier across surveys: cross-entropy, plus Minimax Entropy (MME).

:func:`fit_stamps` trains a :class:`~astroray.models.stamps.StampClassifier` on labelled sets
of stamps and, with ``lam > 0``, on unlabelled ones through a gradient-reversal layer (MME,
Saito et al. 2019: the cosine classifier's prototypes maximise the entropy of the unlabelled
predictions while the feature extractor minimises it). :func:`stamp_images` turns a labelled
stamp table into the model's inputs; :func:`balanced_accuracy` scores a model on them.

Library code for the domain-adaptation study (:mod:`astroray.studies.domain`) and its sweep
(:mod:`astroray.studies.tune_domain`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from astroray.infer.stamps import stack_stamps
from astroray.models.stamps import StampClassifier, grad_reverse, rotate90

__all__ = ["FitSettings", "balanced_accuracy", "fit_stamps", "stamp_images"]


def stamp_images(table: pa.Table, model: StampClassifier) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed images (N, 3, S, S) and class indices (N,) of a labelled stamp table.

    Raises:
        ValueError: when a stamp cannot be cropped or a label is not one of the model's.
    """
    data = table.select(["science", "reference", "difference", "height", "width",
                         "label"]).to_pydict()
    crops, rows, failures = stack_stamps(data, model.config.crop_size)
    if failures:
        ids = table.column("object_id").to_pylist()
        first = sorted(failures)[:3]
        raise ValueError(f"{len(failures)} stamp(s) cannot be used: "
                         + "; ".join(f"{ids[i]}: {failures[i]}" for i in first))
    index = {label: i for i, label in enumerate(model.config.labels)}
    unknown = sorted({v for v in data["label"] if v not in index}, key=str)
    if unknown:
        raise ValueError(f"labels {unknown} are not among the model's {model.config.labels}")
    with torch.inference_mode():
        images = model.preprocess(torch.from_numpy(crops)).numpy()
    return images.astype(np.float32), np.array([index[v] for v in data["label"]], np.int64)


def balanced_accuracy(model: StampClassifier, images: np.ndarray, labels: np.ndarray,
                      batch: int = 1024) -> float:
    """Balanced accuracy (sklearn) of the model's predictions on preprocessed images."""
    from sklearn.metrics import balanced_accuracy_score  # lazy: scikit-learn

    was_training = model.training
    model.eval()
    preds = []
    with torch.inference_mode():
        for lo in range(0, len(images), batch):
            x = torch.tensor(images[lo:lo + batch])
            preds.append(model.predict_images(x).argmax(dim=1).numpy())
    model.train(was_training)
    return float(balanced_accuracy_score(labels, np.concatenate(preds)))


@dataclasses.dataclass
class FitSettings:
    """One training run: what it sees and how long.

    Attributes:
        steps: optimiser steps.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        lam: weight of the adversarial entropy term on unlabelled images (0: none).
        batch_sizes: stamps drawn per step from each labelled set, in order.
        unlabelled_batch: unlabelled stamps per step.
        eval_every: steps between ``on_eval`` calls.
        seed: seed of the batches, the rotations and dropout.
    """

    steps: int
    lr: float
    weight_decay: float = 0.0
    lam: float = 0.0
    batch_sizes: tuple[int, ...] = (64,)
    unlabelled_batch: int = 32
    eval_every: int = 50
    seed: int = 0


def _draw(gen: torch.Generator, images: torch.Tensor, size: int,
          labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A batch drawn with replacement, each image rotated by a random quarter turn."""
    idx = torch.randint(0, len(images), (size,), generator=gen)
    turns = torch.randint(0, 4, (size,), generator=gen)
    x = rotate90(images[idx], turns)  # (size, 3, S, S)
    return x, None if labels is None else labels[idx]


def fit_stamps(model: StampClassifier, labelled: list[tuple[np.ndarray, np.ndarray]],
               settings: FitSettings, unlabelled: np.ndarray | None = None,
               on_eval: Callable[[int], None] | None = None) -> StampClassifier:
    """Train ``model`` in place: cross-entropy on the labelled sets, plus MME when ``lam > 0``.

    Each step draws ``settings.batch_sizes[i]`` stamps from labelled set i (with replacement,
    so that a set of two stamps still fills its batch; every stamp randomly rotated) for one
    cross-entropy over their union. With ``lam > 0`` and unlabelled images, the step adds
    ``lam * mean(sum_c p_c log p_c)`` on an unlabelled batch, whose logits come from the
    cosine classifier applied to features behind :func:`grad_reverse`: descending it, the
    classifier maximises the entropy of the unlabelled predictions while the reversed gradient
    makes the feature extractor minimise it.

    Args:
        model: the classifier, trained in place (and returned).
        labelled: (images (N, 3, S, S), class indices (N,)) per labelled set.
        settings: steps, learning rate, batch sizes, lambda.
        unlabelled: unlabelled images (M, 3, S, S) for the entropy term.
        on_eval: called with the step number every ``eval_every`` steps and after the last.

    Returns:
        The trained model (in train mode).
    """
    if len(settings.batch_sizes) != len(labelled):
        raise ValueError(f"batch_sizes {settings.batch_sizes} must give one size per labelled "
                         f"set ({len(labelled)})")
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    # Copies: arrays from Ray's object store are read-only.
    sets = [(torch.tensor(x), torch.tensor(y)) for x, y in labelled]
    pool = None if unlabelled is None or settings.lam <= 0 else torch.tensor(unlabelled)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr,
                           weight_decay=settings.weight_decay)
    model.train()
    for step in range(1, settings.steps + 1):
        xs, ys = zip(*(_draw(gen, x, size, y) for (x, y), size in
                       zip(sets, settings.batch_sizes, strict=True)), strict=True)
        loss = F.cross_entropy(model.logits(torch.cat(xs)), torch.cat(ys))
        if pool is not None:
            xu, _ = _draw(gen, pool, settings.unlabelled_batch)
            logits = model.classifier(grad_reverse(model.embed(xu), 1.0))
            p = torch.softmax(logits, dim=1)
            neg_entropy = (p * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
            loss = loss + settings.lam * neg_entropy
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_eval is not None and (step % settings.eval_every == 0 or step == settings.steps):
            on_eval(step)
    return model
