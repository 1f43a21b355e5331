"""Train morphology CNNs on biased labels, naively and de-biased, and measure their bias.

Three training strategies, each a plain-torch loop run as a Ray task:

* ``naive``: cross-entropy on the biased human labels of every training galaxy. The model
  learns what the labellers did, bias included.
* ``degraded_copies`` (strategy A): keep only the *well-resolved* training galaxies (low
  redshift and sharp PSF, whose labels the bias barely touches), and train on them plus, each
  epoch, fresh artificially redshifted copies (:func:`~astroray.debias.galaxies.degrade`) at
  the observables of other training galaxies, every copy keeping its sharp image's label.
* ``consistency`` (strategy B, our reading of the deep de-biasing method of Medina-Rosales,
  Cabrera-Vives & Miller 2023, arXiv:2308.11007): cross-entropy on the human labels, plus a
  term that makes the model's output for an artificially redshifted copy of a galaxy match its
  (stop-gradient) output for the original,
  ``loss = CE_w(label, f(x)) + w_c * CE(sg(softmax f(x)), f(degrade(x)))``, so that the
  prediction for a galaxy does not change when only its observing conditions get worse. The
  label term weights the labels of galaxies that are not well resolved by
  ``unresolved_label_weight``: with 1 (every label alike) the biased labels of distant galaxies
  win over the consistency term and the model stays nearly as biased as the naive one (on the
  job's data: accuracy 0.82, L 0.15 against the naive 0.81, 0.16); with 0 (the default) the
  poorly resolved galaxies enter only through the consistency term. What we could confirm of
  the paper: its abstract (biased labels transfer their bias to the CNN; a training method that
  accounts for the labelling bias gives a de-biased model, the bias measured by the metric of
  Cabrera-Vives et al. 2018). The paper's exact loss, weights and degradation pipeline we
  could not read, so the form above is ours.

:func:`run_debias` trains the strategies in parallel Ray tasks, evaluates them on held-out
galaxies against the true morphology (accuracy) and the bias metric L (of the hard
predictions, as for labels), and writes the table, the figure and the models.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from astroray.config import Config, check, check_cpus, check_positive_ints
from astroray.debias.galaxies import CLASSES, GalaxyConfig, degrade, galaxy_images
from astroray.debias.metric import bias_metric, bootstrap_bias_metric, class_fraction_curve
from astroray.models import create_model
from astroray.models.morphology import MorphologyCNN, MorphologyConfig

__all__ = ["STRATEGIES", "DebiasConfig", "evaluate", "run_debias", "train_strategy",
           "well_resolved"]

log = logging.getLogger(__name__)

#: The training strategies, in table order.
STRATEGIES = ("naive", "degraded_copies", "consistency")
#: Intrinsic properties and observables of the bias metric (observables: low = better).
INTRINSIC = ("radius_kpc", "log_lum")
OBSERVABLES = ("z", "psf")


@dataclasses.dataclass
class DebiasConfig(Config):
    """The de-biasing study: data, the strategies, training and the metric's binning.

    Attributes:
        galaxies: the synthetic survey (:class:`~astroray.debias.galaxies.GalaxyConfig`).
        n_train: training galaxies (with biased labels).
        n_test: held-out galaxies for accuracy and L.
        seed: seed of the data (the test set uses ``seed + 1``) and of training.
        model: registered model name.
        strategies: which of :data:`STRATEGIES` to train.
        epochs: training epochs.
        batch_size: minibatch size.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        sharp_z_max: a training galaxy is well resolved when ``z <= sharp_z_max`` ...
        sharp_psf_max: ... and its PSF FWHM (arcsec) ``<= sharp_psf_max``.
        copies: degraded copies of each well-resolved galaxy per epoch (strategy A).
        consistency_weight: weight ``w`` of the consistency term (strategy B).
        unresolved_label_weight: weight of the label cross-entropy of galaxies that are not
            well resolved, in strategy B (1: every label counts alike; 0: only well-resolved
            galaxies' labels are used, the others enter only through the consistency term).
        intrinsic_bins: intrinsic bins of L: leaves of a KD-tree over radius and luminosity,
            a power of two (the reference's ``2**log2_bins_int``).
        observable_bins: equal-count bins of each observable (redshift, PSF) within each
            intrinsic bin, for L.
        min_count: L needs ``intrinsic_bins * observable_bins * min_count`` test objects.
        bootstrap: resamples of the held-out galaxies for L's mean +- std, the authors' way
            of quoting it (0: none); every row is resampled alike (seed ``seed``).
        task_cpus: CPUs each training task asks Ray for (fractional: three tasks share a
            2-CPU machine).
    """

    galaxies: GalaxyConfig = dataclasses.field(default_factory=GalaxyConfig)
    n_train: int = 6000
    n_test: int = 6000
    seed: int = 0
    model: str = "morphology-cnn"
    strategies: tuple[str, ...] = STRATEGIES
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    sharp_z_max: float = 0.06
    sharp_psf_max: float = 2.0
    copies: int = 3
    consistency_weight: float = 1.0
    unresolved_label_weight: float = 0.0
    intrinsic_bins: int = 8
    observable_bins: int = 4
    min_count: int = 20
    bootstrap: int = 100
    task_cpus: float = 0.66

    def __post_init__(self) -> None:
        if isinstance(self.galaxies, dict):
            self.galaxies = GalaxyConfig.from_dict(self.galaxies)
        check(isinstance(self.galaxies, GalaxyConfig), self, "galaxies", self.galaxies,
              "a GalaxyConfig mapping")
        check_positive_ints(self, "n_train", "n_test", "epochs", "batch_size", "intrinsic_bins",
                            "observable_bins", "min_count")
        check(self.observable_bins >= 2, self, "observable_bins", self.observable_bins,
              "at least 2 (the first bin is the reference)")
        check(isinstance(self.bootstrap, int) and not isinstance(self.bootstrap, bool)
              and (self.bootstrap == 0 or self.bootstrap >= 2), self, "bootstrap",
              self.bootstrap, "0 (none) or an integer >= 2")
        check(self.intrinsic_bins & (self.intrinsic_bins - 1) == 0, self, "intrinsic_bins",
              self.intrinsic_bins, "a power of two (the leaves of L's KD-tree)")
        check(isinstance(self.seed, int) and self.seed >= 0, self, "seed", self.seed,
              "a non-negative integer")
        check(isinstance(self.model, str) and bool(self.model), self, "model", self.model,
              "a registered model name")
        self.strategies = tuple(self.strategies)
        check(bool(self.strategies) and all(s in STRATEGIES for s in self.strategies)
              and len(set(self.strategies)) == len(self.strategies), self, "strategies",
              self.strategies, f"distinct names among {STRATEGIES}")
        check_cpus(self, "task_cpus")
        for name in ("lr", "sharp_z_max", "sharp_psf_max"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
                  self, name, value, "a positive number")
        check(isinstance(self.unresolved_label_weight, int | float)
              and 0.0 <= self.unresolved_label_weight <= 1.0, self, "unresolved_label_weight",
              self.unresolved_label_weight, "a number in [0, 1]")
        for name in ("weight_decay", "consistency_weight"):
            value = getattr(self, name)
            check(isinstance(value, int | float) and value >= 0, self, name, value,
                  "a non-negative number")
        check(isinstance(self.copies, int) and not isinstance(self.copies, bool)
              and self.copies >= 1, self, "copies", self.copies, "a positive integer")


def well_resolved(data: dict[str, np.ndarray], config: DebiasConfig) -> np.ndarray:
    """(n,) bool: galaxies at low redshift and with a sharp PSF (reliable labels)."""
    return (data["z"] <= config.sharp_z_max) & (data["psf"] <= config.sharp_psf_max)


def _augment(x: Any, gen: Any) -> Any:
    """Random flip and quarter turn of a batch (B, H, W): morphology has no orientation."""
    if torch.rand((), generator=gen) < 0.5:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, int(torch.randint(0, 4, (), generator=gen)), dims=(-2, -1))


def _targets(rng: np.random.Generator, data: dict[str, np.ndarray],
             n: int) -> tuple[np.ndarray, np.ndarray]:
    """Observables (z, psf) of ``n`` random training galaxies: where degraded copies go."""
    pick = rng.integers(0, data["z"].size, n)
    return data["z"][pick], data["psf"][pick]


def train_strategy(strategy: str, data: dict[str, np.ndarray], config: DebiasConfig,
                   threads: int = 1) -> dict[str, Any]:
    """Train one model with ``strategy`` on the training galaxies ``data``.

    Args:
        strategy: one of :data:`STRATEGIES`.
        data: the training galaxies (:func:`~astroray.debias.galaxies.galaxy_images`).
        config: the study.
        threads: torch CPU threads.

    Returns:
        ``state`` (the model's state dict), ``model_config`` (its config as a dict),
        ``losses`` (mean loss per epoch), ``train_objects`` and ``seconds``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {STRATEGIES}")
    torch.set_num_threads(threads)
    started = time.perf_counter()
    seed = config.seed * 1000 + STRATEGIES.index(strategy)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = create_model(config.model, image_size=config.galaxies.size,
                         labels=tuple(CLASSES))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sharp = well_resolved(data, config)
    if strategy == "degraded_copies" and sharp.sum() < 2:
        raise ValueError("degraded_copies: fewer than 2 well-resolved training galaxies; "
                         "raise sharp_z_max / sharp_psf_max")
    steps_total = config.epochs * max(1, -(-data["z"].size // config.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps_total)
    losses, step = [], 0
    for _epoch in range(config.epochs):
        if strategy == "degraded_copies":
            # The well-resolved galaxies and fresh degraded copies of them, sharp labels kept.
            idx = np.flatnonzero(sharp)
            rep = np.repeat(idx, config.copies)
            z1, psf1 = _targets(rng, data, rep.size)
            copies = degrade(data["images"][rep], data["z"][rep], data["psf"][rep], z1, psf1,
                             config.galaxies, rng)
            images = np.concatenate([data["images"][idx], copies])
            labels = np.concatenate([data["label"][idx], data["label"][rep]])
        else:
            images, labels = data["images"], data["label"]
        order = rng.permutation(labels.size)
        # Every strategy takes the same number of optimiser steps per epoch.
        n_batches = max(1, -(-data["z"].size // config.batch_size))
        total = 0.0
        model.train()
        for b in range(n_batches):
            sel = order[(b * config.batch_size) % order.size:][:config.batch_size]
            x = _augment(torch.from_numpy(images[sel]), gen)
            y = torch.from_numpy(labels[sel])
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            if strategy == "consistency":
                w = torch.from_numpy(np.where(sharp[sel], 1.0, config.unresolved_label_weight))
                per = F.cross_entropy(logits, y, reduction="none")
                loss = (w * per).sum() / w.sum().clamp_min(1e-6)
                z1, psf1 = _targets(rng, data, sel.size)
                worse = degrade(images[sel], data["z"][sel], data["psf"][sel], z1, psf1,
                                config.galaxies, rng)
                teacher = torch.softmax(logits.detach(), dim=1)  # (B, K), no gradient
                student = model(_augment(torch.from_numpy(worse), gen))
                cons = -(teacher * torch.log_softmax(student, dim=1)).sum(dim=1).mean()
                loss = loss + config.consistency_weight * cons
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step < steps_total:
                sched.step()
            step += 1
            total += float(loss.detach())
        losses.append(total / n_batches)
        log.info("%s epoch %d loss %.4f", strategy, _epoch, losses[-1])
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "model_config": model.config.to_dict(), "losses": losses,
            "train_objects": int(sharp.sum()) if strategy == "degraded_copies"
            else int(data["z"].size),
            "seconds": time.perf_counter() - started}


def evaluate(y: np.ndarray, data: dict[str, np.ndarray], config: DebiasConfig) -> dict[str, Any]:
    """Accuracy against the true morphology, and the bias metric L, of 0/1 labels ``y``.

    With ``config.bootstrap``, also ``L_boot_mean`` and ``L_boot_std`` over that many
    resamples of the objects (the same resamples for every ``y``).
    """
    intrinsic = {k: data[k] for k in INTRINSIC}
    observables = {k: data[k] for k in OBSERVABLES}
    bins = {"intrinsic_bins": config.intrinsic_bins, "observable_bins": config.observable_bins,
            "min_count": config.min_count}
    metric = bias_metric(y, intrinsic, observables, **bins)
    row = {"accuracy": float(np.mean(y == data["truth"])), "L": metric["L"],
           **{f"L_{k}": v for k, v in metric["per_observable"].items()},
           "featured_fraction": float(np.mean(y))}
    if config.bootstrap:
        boot = bootstrap_bias_metric(y, intrinsic, observables, resamples=config.bootstrap,
                                     seed=config.seed, **bins)
        row.update(L_boot_mean=boot["mean"], L_boot_std=boot["std"])
    return row


def _figure(curves: dict[str, dict[str, dict[str, list[float]]]], path: Path) -> str | None:
    """Predicted featured fraction vs each observable, one line per row; None without mpl."""
    try:
        import matplotlib  # lazy: matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # lazy: matplotlib
    except ImportError:
        log.warning("matplotlib is not installed: no figure")
        return None
    names = {"z": "redshift z", "psf": "PSF FWHM (arcsec)"}
    fig, axes = plt.subplots(1, len(OBSERVABLES), figsize=(5 * len(OBSERVABLES), 4),
                             sharey=True)
    for ax, obs in zip(np.atleast_1d(axes), OBSERVABLES, strict=True):
        for row, per_obs in curves.items():
            c = per_obs[obs]
            style = "k--" if row == "truth" else "-o"
            ax.errorbar(c["x"], c["fraction"], yerr=c["error"], fmt=style, ms=3, capsize=2,
                        label=row)
        ax.set_xlabel(names[obs])
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("featured fraction")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle("Featured fraction vs observables (held-out galaxies)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _markdown(table: list[dict[str, Any]]) -> str:
    boot = "L_boot_mean" in table[0]
    lines = ["| row | accuracy vs truth | L | L (z) | L (psf) | featured fraction |"
             + (" L, bootstrap |" if boot else ""),
             "| --- | --- | --- | --- | --- | --- |" + (" --- |" if boot else "")]
    for r in table:
        lines.append(f"| {r['row']} | {r['accuracy']:.3f} | {r['L']:.3f} | {r['L_z']:.3f} | "
                     f"{r['L_psf']:.3f} | {r['featured_fraction']:.3f} |"
                     + (f" {r['L_boot_mean']:.3f} +- {r['L_boot_std']:.3f} |" if boot else ""))
    return "\n".join(lines) + "\n"


def run_debias(config: DebiasConfig, out: str | Path) -> dict[str, Any]:
    """Generate the data, train every strategy in a Ray task, evaluate, write the outputs.

    Ray must be initialised. Writes ``out/debias_table.md``, ``out/featured_fraction.png``
    (when matplotlib is installed), ``out/curves.json`` and ``out/models/<strategy>/``.

    Returns:
        ``table`` (rows truth, labels and one per strategy: accuracy, L, L per observable,
        featured fraction), ``data`` (counts), ``models`` (folders), ``training`` (losses,
        seconds), ``figure`` and ``markdown`` paths.
    """
    import ray  # lazy: ray

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train = galaxy_images(config.n_train, config.galaxies, seed=config.seed)
    test = galaxy_images(config.n_test, config.galaxies, seed=config.seed + 1)
    gen_seconds = time.perf_counter() - started
    ref = ray.put(train)

    @ray.remote(num_cpus=config.task_cpus)
    def _task(strategy: str, data: dict[str, np.ndarray]) -> bytes:
        result = train_strategy(strategy, data, config)
        buf = io.BytesIO()
        torch.save(result, buf)
        return buf.getvalue()

    futures = {s: _task.remote(s, ref) for s in config.strategies}
    results = {s: torch.load(io.BytesIO(ray.get(f)), weights_only=False)
               for s, f in futures.items()}
    table = [{"row": "truth", **evaluate(test["truth"], test, config)},
             {"row": "labels", **evaluate(test["label"], test, config)}]
    curves = {"truth": {o: class_fraction_curve(test["truth"], test[o]) for o in OBSERVABLES},
              "labels": {o: class_fraction_curve(test["label"], test[o]) for o in OBSERVABLES}}
    models, training = {}, {}
    for strategy, res in results.items():
        model = MorphologyCNN(MorphologyConfig.from_dict(res["model_config"]))
        model.load_state_dict(res["state"])
        folder = model.save_pretrained(out / "models" / strategy)
        probs = model.predict_proba(torch.from_numpy(test["images"]))[:, 1].numpy()
        pred = (probs >= 0.5).astype(np.int64)
        table.append({"row": strategy, **evaluate(pred, test, config)})
        curves[strategy] = {o: class_fraction_curve(pred, test[o]) for o in OBSERVABLES}
        models[strategy] = str(folder)
        training[strategy] = {"losses": res["losses"], "seconds": round(res["seconds"], 2),
                              "train_objects": res["train_objects"]}
    (out / "curves.json").write_text(json.dumps(curves, indent=1))
    md = out / "debias_table.md"
    md.write_text(_markdown(table))
    figure = _figure(curves, out / "featured_fraction.png")
    return {"table": table, "models": models, "training": training, "figure": figure,
            "markdown": str(md),
            "data": {"train": config.n_train, "test": config.n_test,
                     "well_resolved_train": int(well_resolved(train, config).sum()),
                     "train_label_featured": float(train["label"].mean()),
                     "train_true_featured": float(train["truth"].mean()),
                     "generate_seconds": round(gen_seconds, 2)}}
