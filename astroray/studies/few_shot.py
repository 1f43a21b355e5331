"""Few-shot light-curve classification on Astromer embeddings, against baselines.

Protocol (Astromer 1 and 2 papers): a frozen encoder turns every light curve into the masked
time-means of its input embedding and of every block output (averaged over the object's
windows); a classifier learns softmax weights over these representations (the "weighted
per-sample embedding") and an MLP (1024-512-256, ReLU, LayerNorm). It is trained on ``n`` =
20 / 100 / ... / all labelled objects per class, in folds (independent draws of the training
objects), and scored by macro F1 on a fixed test set, split by object. The rows compared:

* ``published``: the authors' published Astromer 1 weights (``astromer1-macho``), frozen;
* ``published_ft``: the same after the fine-tuning step of the official protocol (the masked
  objective on the data set's own light curves, its non-test objects only, no labels);
* ``own``: an encoder pretrained here (``encoder`` or ``pretrain``);
* ``untrained``: the published architecture (or ours, without published weights) with its
  random initialisation, which isolates what any pretraining contributed;
* ``gru``: a 2-layer GRU trained from scratch on the windows (the papers' no-pretraining
  baseline; one random window per object and epoch), with object predictions averaged over
  all of an object's windows;
* ``rf``: a Random Forest on :mod:`astroray.features` (the classic feature baseline), on the
  same training objects.

Embeddings are per band: the mean over bands (``band_mean``), the per-band vectors
concatenated (``band_concat``; Astromer is a single-band model) or one band (``band:g``).
Each encoder's masked-magnitude R^2 on the test objects' windows is reported beside.

What lives where: the protocol (the folds, the GRU baseline's training, the masked-R^2 column,
the fine-tuning step, the driver :func:`classify` and its tables) is here. The settings
(:class:`~astroray.train.classify.ClassifyConfig`, :class:`~astroray.train.ClassifyDataset`),
the head's training (:func:`~astroray.train.classify.train_head`) and
:func:`~astroray.train.classify.fit_classifier` / :func:`~astroray.train.classify.save_classifier`
stay in :mod:`astroray.train.classify`: the catalogue (``astroray infer`` trains a classifier
from a ``ClassifyConfig``) and the demo use them, and library code never imports a study. The
embedding of a table is :func:`~astroray.infer.astromer.embed_table`; the imputation of missing
per-band features and the lookup of published weights are the Astromer family's
(:func:`~astroray.models.astromer.impute_embeddings`,
:func:`~astroray.models.astromer.published_folder`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from astroray.data.fileio import numpy_batch
from astroray.data.windows import LightCurveWindows
from astroray.eval.plots import plot_confusion_matrix
from astroray.features import table_features
from astroray.infer.astromer import embed_table
from astroray.metrics import confusion_matrix, macro_f1
from astroray.models.astromer import impute_embeddings, load_encoder, mask_inputs, published_folder
from astroray.models.baselines import make_baseline
from astroray.runtime import init_ray
from astroray.train.astromer import LC_COLUMNS, PretrainConfig, pretrain
from astroray.train.classify import ClassifyConfig, GRUClassifier, save_classifier, train_head
from astroray.train.labelled import ClassifyDataset, fit_early_stopping, window_labelled
from astroray.train.metrics import MaskedRegressionMeter, mean_spread

__all__ = ["METHODS", "ClassifyConfig", "classify", "format_tables", "masked_r2"]

logger = logging.getLogger(__name__)


#: Rows of the table, in order (those whose encoder is not available are skipped).
METHODS = ("published", "published_ft", "own", "untrained", "gru", "rf")


ENCODER_METHODS = ("published", "published_ft", "own", "untrained")


def _gru_object_logits(model: nn.Module, windows: dict[str, torch.Tensor], rows: np.ndarray,
                       n_objects: int, batch: int = 512) -> torch.Tensor:
    """Mean window logits per object; ``rows`` = object index of every window."""
    logits = []
    with torch.no_grad():
        for lo in range(0, len(rows), batch):
            sl = slice(lo, lo + batch)
            logits.append(model(windows["times"][sl], windows["values"][sl],
                                windows["mask"][sl]))
    out = torch.cat(logits)
    sums = torch.zeros(n_objects, out.shape[1]).index_add_(0, torch.from_numpy(rows), out)
    counts = torch.bincount(torch.from_numpy(rows), minlength=n_objects).clamp(min=1)
    return sums / counts[:, None]


def _train_gru(windows: dict[str, torch.Tensor], win_obj: np.ndarray, y: np.ndarray,
               train: np.ndarray, val: np.ndarray, num_classes: int, cfg: ClassifyConfig,
               seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = GRUClassifier(num_classes, cfg.gru_hidden, cfg.gru_layers)
    yt = torch.from_numpy(y)
    train_win = np.flatnonzero(np.isin(win_obj, train))
    # Validation (checked often) reads the first window of each object; the test uses all.
    val_all = np.flatnonzero(np.isin(win_obj, val))
    val_win = val_all[np.unique(win_obj[val_all], return_index=True)[1]]
    gen = torch.Generator().manual_seed(seed)

    def steps(m: nn.Module):
        # One random window per training object and epoch (as pretraining takes one random
        # crop): long light curves do not outweigh short ones, and an epoch stays short.
        perm = train_win[torch.randperm(len(train_win), generator=gen).numpy()]
        _, first = np.unique(win_obj[perm], return_index=True)
        order = perm[first][torch.randperm(first.size, generator=gen).numpy()]
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo:lo + cfg.batch_size]
            logits = m(windows["times"][idx], windows["values"][idx], windows["mask"][idx])
            yield nn.functional.cross_entropy(logits, yt[win_obj[idx]])

    def val_loss(m: nn.Module) -> float:
        sub = {k: v[val_win] for k, v in windows.items()}
        logits = _gru_object_logits(m, sub, win_obj[val_win], len(y))[val]
        return float(nn.functional.cross_entropy(logits, yt[val]))

    return fit_early_stopping(model, steps, val_loss, max_steps=cfg.gru_steps,
                              eval_every=cfg.eval_every, patience=cfg.patience, lr=cfg.gru_lr)


def masked_r2(encoder: str, table: pa.Table, *, min_points: int, seed: int = 0,
              random_init: bool = False, batch_size: int = 128) -> dict[str, float]:
    """An encoder's masked-magnitude RMSE / R^2 on every window of ``table``'s objects.

    Windows are cut with the encoder's own input convention; the masks are the encoder's
    pretraining masks (its probe / keep / random fractions) drawn with a fixed seed, so every
    encoder is scored on comparable points. ``rmse_zero`` is predicting the window mean.
    """
    model = load_encoder(encoder, random_init=random_init, seed=seed)
    cfg = model.config
    w = LightCurveWindows(cfg.window_size, mode="sequential", min_points=min_points,
                          time_origin=cfg.time_origin)(numpy_batch(table))
    meter = MaskedRegressionMeter()
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for lo in range(0, len(w["times"]), batch_size):
            b = {k: torch.from_numpy(w[k][lo:lo + batch_size])
                 for k in ("times", "values", "mask")}
            m = mask_inputs(b["values"], b["mask"], probe_fraction=cfg.probe_fraction,
                            keep_fraction=cfg.keep_fraction,
                            random_fraction=cfg.random_fraction, generator=gen)
            out = model(b["times"], m.values, b["mask"], hidden=m.hidden)
            meter.update(out.prediction, b["values"], m.probed)
    r = meter.compute()
    return {k: round(float(r[k]), 4) for k in ("rmse", "r2", "rmse_zero")} | {"n": r["n"]}


def _finetune(encoder: str, table: pa.Table, test: np.ndarray, cfg: ClassifyConfig,
              ds_cfg: ClassifyDataset, out: Path) -> dict[str, Any]:
    """The official protocol's fine-tuning step: the masked objective on the non-test objects.

    Labels are not used; the test objects' light curves are never seen. A finished run in
    ``out`` is reused (the pretraining driver resumes).
    """
    keep = np.setdiff1d(np.arange(table.num_rows), test)
    folder = out / "input"
    folder.mkdir(parents=True, exist_ok=True)
    sub = table.take(pa.array(keep)).select([c for c in LC_COLUMNS if c in table.column_names])
    sub = sub.append_column("survey", pa.array([ds_cfg.name] * sub.num_rows, pa.string()))
    pq.write_table(sub, folder / "part-0.parquet")
    run = PretrainConfig(model="astromer-v1-official", init_from=encoder,
                         paths=(str(folder),), min_points=ds_cfg.min_points,
                         val_fraction=0.1, epochs=cfg.finetune_epochs,
                         batch_size=cfg.finetune_batch_size, lr=cfg.finetune_lr,
                         warmup_steps=0, name="finetune", seed=cfg.seed)
    result = pretrain(run, out)
    return {"dir": result["model"]["dir"], "metrics": result["metrics"],
            "objects": int(keep.size)}


def _draw_fold(y: np.ndarray, pool: np.ndarray, classes: list[str], n: int | str,
               val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    train, val = [], []
    for c in range(len(classes)):
        idx = rng.permutation(pool[y[pool] == c])
        if n == "all":
            n_val = max(2, int(round(val_fraction * idx.size / (1.0 + val_fraction))))
            train.extend(idx[n_val:])
            val.extend(idx[:n_val])
        else:
            n_val = max(2, int(round(val_fraction * n)))
            train.extend(idx[:n])
            val.extend(idx[n:n + n_val])
    return np.array(train), np.array(val)


def _evaluate_dataset(ds_cfg: ClassifyDataset, cfg: ClassifyConfig,
                      encoders: dict[str, tuple[str, bool]], workdir: Path,
                      unavailable: dict[str, str]) -> dict[str, Any]:
    """Every row of the table for one data set.

    Args:
        ds_cfg: the data set.
        cfg: the evaluation's settings.
        encoders: ``{method: (model folder, random init)}`` of the frozen-encoder rows
            available; ``published_ft`` is made here from ``published``.
        workdir: the data set's working folder (its data and fine-tuning run).
        unavailable: ``{method: why}`` of the rows that cannot run.
    """
    windowing = encoders.get("published", encoders.get("own", encoders.get("untrained")))[0]
    data = window_labelled(ds_cfg, windowing, workdir / "data")
    if isinstance(data, dict):
        return data
    table, y, classes, test, pool = data.table, data.y, data.classes, data.test, data.pool
    win_obj, info, dropped = data.win_obj, data.info, data.dropped
    win_t = {k: torch.from_numpy(v) for k, v in data.windows.items()}
    encoders = dict(encoders)
    finetune = None
    skipped = dict(unavailable)
    if "published" in encoders and cfg.finetune_epochs > 0:
        finetune = _finetune(encoders["published"][0], table, test, cfg, ds_cfg,
                             workdir / "finetune")
        encoders["published_ft"] = (finetune["dir"], False)
    elif "published" in encoders:
        skipped["published_ft"] = "finetune_epochs is 0"
    t0 = time.perf_counter()
    feats = {m: embed_table(table, folder, random_init=rand, seed=cfg.seed,
                            min_points=ds_cfg.min_points, actor_cpus=cfg.actor_cpus,
                            embedding=cfg.embedding)
             for m, (folder, rand) in encoders.items()}
    embed_seconds = time.perf_counter() - t0
    logger.info("%s: %d objects, %d windows embedded by %d encoders in %.0f s", ds_cfg.name,
                len(y), len(win_obj), len(feats), embed_seconds)
    # Masked-magnitude R^2 of each encoder on the test objects (never trained on by the
    # fine-tuning step; our own pretraining data is set apart from the labelled sets).
    test_table = table.take(pa.array(test))
    r2 = {m: masked_r2(folder, test_table, min_points=ds_cfg.min_points, seed=cfg.seed,
                       random_init=rand) for m, (folder, rand) in encoders.items()}
    methods = [m for m in METHODS if m in feats or m == "gru"
               or (m == "rf" and cfg.random_forest)]
    features = None
    if "rf" in methods:
        t = time.perf_counter()
        features, _ = table_features(table, min_points=ds_cfg.min_points)
        info["feature_seconds"] = round(time.perf_counter() - t, 2)
    settings: dict[str, Any] = {}
    confusions: dict[str, np.ndarray] = {}
    kept: dict[str, Any] = {}  # the first fold's head at the largest setting run: saved
    head_method = next((m for m in ("published", "own", "untrained") if m in feats), None)
    for n in cfg.samples_per_class:
        available = {classes[c]: int((y[pool] == c).sum()) for c in range(len(classes))}
        if n != "all":
            n_val = max(2, int(round(cfg.val_fraction * n)))
            short = {k: v for k, v in available.items() if v < n + n_val}
            if short:
                settings[str(n)] = {"skipped": f"needs {n} + {n_val} (validation) objects per "
                                               f"class outside the test set; have {short}"}
                continue
        scores: dict[str, list[float]] = {m: [] for m in methods}
        seconds: dict[str, float] = dict.fromkeys(methods, 0.0)
        cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
        train_sizes = []
        for fold in range(cfg.folds):
            train, val = _draw_fold(y, pool, classes, n, cfg.val_fraction,
                                    np.random.default_rng((cfg.seed, 0 if n == "all" else n,
                                                           fold)))
            train_sizes.append(int(train.size))
            seed = cfg.seed * 1000 + fold
            for method in (m for m in methods if m in feats):
                t = time.perf_counter()
                x = impute_embeddings(feats[method], np.concatenate([train, val]))
                head = train_head(x, y, train, val, len(classes), cfg, seed)
                with torch.no_grad():
                    pred = head(torch.from_numpy(x[test])).argmax(1).numpy()
                scores[method].append(macro_f1(y[test], pred))
                seconds[method] += time.perf_counter() - t
                if method == head_method:
                    cm += confusion_matrix(y[test], pred, list(range(len(classes))))[0]
                    if fold == 0 and cfg.embedding != "band_concat":
                        kept = {"head": head, "samples_per_class": n,
                                "encoder": encoders[method][0]}
            t = time.perf_counter()
            gru = _train_gru(win_t, win_obj, y, train, val, len(classes), cfg, seed)
            test_win = np.flatnonzero(np.isin(win_obj, test))
            logits = _gru_object_logits(gru, {k: v[test_win] for k, v in win_t.items()},
                                        win_obj[test_win], len(y))
            scores["gru"].append(macro_f1(y[test], logits[test].argmax(1).numpy()))
            seconds["gru"] += time.perf_counter() - t
            if features is not None:
                t = time.perf_counter()
                rf = make_baseline("rf", seed=seed).fit(features[train], y[train])
                scores["rf"].append(macro_f1(y[test], rf.predict(features[test])))
                seconds["rf"] += time.perf_counter() - t
        settings[str(n)] = {m: {**mean_spread(scores[m]), "seconds": round(seconds[m], 2)}
                            for m in methods}
        settings[str(n)]["train_objects"] = train_sizes
        logger.info("%s, %s per class: macro F1 %s", ds_cfg.name, n, ", ".join(
            f"{m} {settings[str(n)][m]['mean']:.3f}" for m in methods))
        confusions[str(n)] = cm
    return {
        "classes": classes, "objects": int(len(y)), "dropped_without_windows": dropped,
        "test_objects": int(len(test)),
        "test_per_class": {classes[c]: int((y[test] == c).sum()) for c in range(len(classes))},
        "windows": int(len(win_obj)), "embed_seconds": round(embed_seconds, 2),
        "settings": settings, "data": info, "methods": methods, "skipped_methods": skipped,
        "masked_r2": r2, "finetune": finetune, "confusion_method": head_method,
        "confusion": {k: v.tolist() for k, v in confusions.items()},
        "_head": kept,
    }


def classify(config: ClassifyConfig, out: str | Path) -> dict[str, Any]:
    """Run the few-shot evaluation; writes ``out/confusion_<dataset>.png`` when it can.

    When ``config.encoder`` is None and a ``pretrain`` configuration is given, our own
    encoder is pretrained first (``out/pretrain``).

    Returns:
        ``{"metrics", "table", "r2_table", "datasets", "encoders", "pretrain", "figures"}``:
        ``table`` has one row per (data set, setting) with the macro F1 mean and spread of
        every method; ``r2_table`` one row per (data set, encoder) with its masked R^2 on
        the test objects.
    """
    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pretrained = None
    encoders: dict[str, tuple[str, bool]] = {}
    unavailable: dict[str, str] = {}
    published, why = published_folder(config.published)
    if published is not None:
        encoders["published"] = (published, False)
    else:
        unavailable["published"] = unavailable["published_ft"] = why or ""
    own = config.encoder
    if own is None and config.pretrain is not None:
        pretrained = pretrain(config.pretrain, out / "pretrain")
        own = pretrained["model"]["dir"]
    elif own is not None and not Path(own).is_dir():
        folder, why = published_folder(own)
        if folder is None:
            raise FileNotFoundError(f"ClassifyConfig.encoder = {own!r}: no such model folder "
                                    f"({why})")
        own = folder
    if own is not None:
        encoders["own"] = (own, False)
    else:
        unavailable["own"] = "no encoder of our own (encoder and pretrain are null)"
    # The untrained row: the published architecture with its own (official) initialisation.
    encoders["untrained"] = (published or own, True)
    results, table, r2_table, figures = {}, [], [], {}
    for ds_cfg in config.datasets:
        started = time.perf_counter()
        res = _evaluate_dataset(ds_cfg, config, encoders, out / "data" / ds_cfg.name,
                                unavailable)
        res["seconds"] = round(time.perf_counter() - started, 2)
        kept = res.pop("_head", None)
        if kept:
            res["classifier"] = {
                "dir": str(save_classifier(kept["encoder"], kept["head"], res["classes"],
                                           out / f"classifier_{ds_cfg.name}",
                                           min_points=ds_cfg.min_points,
                                           embedding=config.embedding)),
                "encoder": kept["encoder"], "samples_per_class": kept["samples_per_class"],
                "fold": 0}
        results[ds_cfg.name] = res
        for method, r in res.get("masked_r2", {}).items():
            r2_table.append({"dataset": ds_cfg.name, "encoder": method, **r})
        for n, row in res.get("settings", {}).items():
            n_out: int | str = n if n == "all" else int(n)
            if "skipped" in row:
                table.append({"dataset": ds_cfg.name, "samples_per_class": n_out,
                              "skipped": row["skipped"]})
                continue
            entry: dict[str, Any] = {"dataset": ds_cfg.name, "samples_per_class": n_out,
                                     "train_objects": row["train_objects"]}
            for m in res["methods"]:
                entry[f"{m}_f1"] = round(row[m]["mean"], 4)
                entry[f"{m}_f1_std"] = round(row[m]["std"], 4)
            table.append(entry)
        if res.get("confusion"):
            fig = plot_confusion_matrix(
                {f"{n} per class": cm for n, cm in res["confusion"].items()},
                res["classes"], out / f"confusion_{ds_cfg.name}.png",
                f"{ds_cfg.name}: {res['confusion_method']} Astromer + MLP (test set, summed "
                "over folds)")
            if fig is not None:
                figures[ds_cfg.name] = str(fig)
    metrics = {f"{r['dataset']}@{r['samples_per_class']}": {
        m: f"{r[f'{m}_f1']:.3f} +- {r[f'{m}_f1_std']:.3f}" for m in METHODS if f"{m}_f1" in r}
        for r in table if "skipped" not in r}
    return {"metrics": metrics, "table": table, "r2_table": r2_table, "datasets": results,
            "encoders": {m: {"dir": f, "random_init": r} for m, (f, r) in encoders.items()},
            "unavailable": unavailable,
            "pretrain": pretrained and {k: pretrained[k] for k in ("metrics", "resume")},
            "figures": figures}


def format_tables(summary: dict[str, Any]) -> str:
    """The macro F1 and masked R^2 tables of :func:`classify` as Markdown."""
    labels = {"published": "published, frozen", "published_ft": "published + fine-tuning",
              "own": "our pretraining", "untrained": "untrained (official init)",
              "gru": "GRU from scratch", "rf": "Random Forest (features)"}
    lines = []
    for name, res in summary["datasets"].items():
        methods = res.get("methods")
        if not methods:
            lines += [f"**{name}**: skipped ({res.get('skipped', 'no data')})", ""]
            continue
        rows = [r for r in summary["table"] if r["dataset"] == name]
        settings = [str(r["samples_per_class"]) for r in rows]
        lines.append(f"**{name}** ({res['objects']} objects, {res['test_objects']} in the test "
                     f"set; macro F1, mean ± std over folds; per class: {', '.join(settings)})")
        lines.append("")
        lines.append("| method | " + " | ".join(f"{s} per class" for s in settings) + " |")
        lines.append("| --- |" + " --- |" * len(settings))
        for m in METHODS:
            if m not in methods:
                if m in res.get("skipped_methods", {}):
                    lines.append(f"| {labels[m]} | " + " | ".join(
                        "n/a" for _ in settings) + f" |  <!-- {res['skipped_methods'][m]} -->")
                continue
            cells = []
            for r in rows:
                cells.append("skipped" if "skipped" in r else
                             f"{r[f'{m}_f1']:.3f} ± {r[f'{m}_f1_std']:.3f}")
            lines.append(f"| {labels[m]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Masked-magnitude R^2 on the test objects' windows (predicting the window "
                 "mean gives 0):")
    lines.append("")
    lines.append("| data set | encoder | RMSE | RMSE of the window mean | R^2 |")
    lines.append("| --- | --- | --- | --- | --- |")
    for r in summary["r2_table"]:
        lines.append(f"| {r['dataset']} | {labels[r['encoder']]} | {r['rmse']:.4f} | "
                     f"{r['rmse_zero']:.4f} | {r['r2']:.3f} |")
    return "\n".join(lines) + "\n"
