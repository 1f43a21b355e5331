"""The vision fine-tuning study: ViT / SwinV2 on rendered spectra and light curves vs baselines.

:func:`finetune` prepares each data set (a generated synthetic survey and/or survey files,
ingested once to canonical Parquet), splits it by object into train / validation / test
(stratified by class), fits the classical baselines (:mod:`astroray.models.baselines`) on the
same split, and fine-tunes a :class:`~astroray.models.vision.VisionTransformer` with the
reusable loop of :mod:`astroray.train.vision` (pictures drawn on each worker's device). The
best model is then scored on the test split by a Ray Data actor
(:class:`~astroray.infer.vision.VisionPredictor`) that renders and predicts on its own device.

Light curves may be drawn folded (layouts such as ``overlay:lomb_scargle``): each object's
period is found once, when the arrays are prepared
(:func:`~astroray.models.vision.processing.light_curve_periods`), travels with the arrays and
is recorded in the model's ``render.json``. With several ``seeds`` every seed
draws its own object split, shared by the vision runs, the baselines and the optional Astromer
classifier (a frozen published encoder + the papers' MLP), and the table reports the mean and
spread of each method; what no seed changes (data, features, periods, embeddings) is computed
once (:mod:`astroray.studies.finetune_vision_data`). The settings are
:class:`~astroray.studies.finetune_vision_config.FinetuneConfig`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from astroray.eval import (
    classification_metrics,
    plot_confusion_matrix,
    plot_redshift,
    plot_reliability,
    redshift_metrics,
)
from astroray.infer.vision import arrays_dataset, predict_arrays
from astroray.models.astromer import AstromerClassifierHead, impute_embeddings
from astroray.models.baselines import run_baselines
from astroray.models.vision.processing import (
    LC_COLUMNS,
    SPECTRUM_COLUMNS,
    prepare_arrays,
    write_render_spec,
)
from astroray.render import LightCurveRenderConfig
from astroray.runtime import gpu_available, init_ray, write_results
from astroray.studies.finetune_vision_config import (
    FinetuneConfig,
    VisionDataset,
    label_grouping,
)
from astroray.studies.finetune_vision_data import (
    ASTROMER_MIN_POINTS,
    period_key,
    prepare_dataset,
    stratified_split,
)
from astroray.train.astromer import prepare_light_curves
from astroray.train.labelled import fit_early_stopping
from astroray.train.vision import VisionTrainConfig, fit_vision
from astroray.uncertainty import reliability_curve, uncertainty_metrics

__all__ = ["ASTROMER_MIN_POINTS", "FinetuneConfig", "VisionDataset", "finetune", "format_table",
           "label_grouping", "write_finetune_results"]

logger = logging.getLogger(__name__)


def _astromer_row(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
                  test: np.ndarray, n_classes: int, cfg: FinetuneConfig) -> np.ndarray:
    """Test predictions of the Astromer classifier trained on this seed's training objects.

    The settings of ``jobs/classify_astromer.yaml``: the weighted per-sample embedding and
    an MLP 1024-512-256 on features z-scored with the training objects' statistics, AdamW
    (lr 1e-3, weight decay 1e-4), batches of 64, early stopping on the validation loss
    (checked every 20 steps, patience 10).
    """
    fit = np.concatenate([train, val])
    x = impute_embeddings(x, fit)
    torch.manual_seed(cfg.seed)
    head = AstromerClassifierHead(x.shape[1], x.shape[2], n_classes)
    head.set_standardization(torch.from_numpy(x[fit].mean(axis=0)),
                             torch.from_numpy(x[fit].std(axis=0)))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(cfg.seed)

    def steps(model: nn.Module):
        order = train[torch.randperm(len(train), generator=gen).numpy()]
        for lo in range(0, len(order), 64):
            idx = order[lo:lo + 64]
            yield nn.functional.cross_entropy(model(xt[idx]), yt[idx])

    def val_loss(model: nn.Module) -> float:
        return float(nn.functional.cross_entropy(model(xt[val]), yt[val]))

    head = fit_early_stopping(head, steps, val_loss, max_steps=cfg.astromer_head_steps,
                              eval_every=20, patience=10, lr=1e-3, weight_decay=1e-4)
    with torch.no_grad():
        return head(xt[test]).argmax(1).numpy()


def _run_dataset(ds_cfg: VisionDataset, cfg: FinetuneConfig, out: Path,
                 use_gpu: bool, prepared: dict[str, Any] | None = None,
                 tag: str = "") -> dict[str, Any]:
    """One seed (``cfg.seed``) on one data set: split, baselines, fine-tuning, Astromer.

    ``tag`` is appended to run, model and figure names (``-seed1``) when several seeds share
    ``out``.
    """
    d = prepared if prepared is not None else prepare_dataset(ds_cfg, cfg, out)
    if "skipped" in d:
        return d
    classes, y_cls, prep, z = d["classes"], d["y"], d["prep"], d["z"]
    split = stratified_split(y_cls, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    train, val, test = (np.flatnonzero(split == s) for s in (0, 1, 2))
    regression = cfg.task == "redshift"
    if regression:
        target = z.astype(np.float32)
        z_max = float(cfg.z_max or max(z[train].max(), 1e-3))
    else:
        target = y_cls
        z_max = 1.0
    counts = np.bincount(y_cls[train], minlength=len(classes)).astype(np.float64)
    weight = (1.0 / np.maximum(counts, 1.0))[y_cls].astype(np.float32)
    arrays = {**d["arrays"], "target": target, "weight": weight}
    model_fields: dict[str, Any] = {"task": "regression" if regression else "classification",
                                    "target_scale": z_max}
    if not regression:
        model_fields["labels"] = tuple(classes)
    data_info = {
        "objects": int(d["table"].num_rows), "classes": classes,
        "per_class": {c: int((y_cls == i).sum()) for i, c in enumerate(classes)},
        "splits": {"train": int(train.size), "val": int(val.size), "test": int(test.size)},
        "test_per_class": {c: int((y_cls[test] == i).sum()) for i, c in enumerate(classes)},
        "max_length": cfg.max_length, "thinned": prep["thinned"], "bands": prep.get("bands"),
        "inputs": d["info"],
        "periods": {k: v["info"] for k, v in d["periods"].items()} or None,
    }
    # ---- baselines on the same split (fit on train + val: they have no early stopping)
    t0 = time.perf_counter()
    feats = d["features"]
    fit_rows = np.concatenate([train, val])
    base = run_baselines(feats[fit_rows], (target if regression else y_cls)[fit_rows],
                         feats[test], task="regression" if regression else "classification",
                         names=cfg.baselines, seed=cfg.seed, n_jobs=cfg.baseline_jobs)
    baseline_seconds = time.perf_counter() - t0 + d["feature_seconds"]
    results: dict[str, Any] = {"data": data_info, "baselines": {}, "runs": {}}
    for name, res in base.items():
        if regression:
            metrics = redshift_metrics(z[test], res["pred"])
        else:
            metrics = classification_metrics(y_cls[test], res["pred"].astype(np.int64),
                                             labels=list(range(len(classes))))
            metrics = _named(metrics, classes)
        results["baselines"][name] = {**metrics, "fit_seconds": res["fit_seconds"],
                                      "features": feats.shape[1]}
    results["baseline_seconds"] = round(baseline_seconds, 2)
    # ---- the Astromer classifier on its frozen embeddings, on the same split
    emb = d.get("astromer")
    if emb is not None and "x" in emb and not regression:
        t0 = time.perf_counter()
        pred = _astromer_row(emb["x"], y_cls, train, val, test, len(classes), cfg)
        metrics = _named(classification_metrics(y_cls[test], pred.astype(np.int64),
                                                 labels=list(range(len(classes)))), classes)
        results["astromer"] = {**metrics, "encoder": emb["encoder"],
                               "embed_seconds": emb["seconds"],
                               "fit_seconds": round(time.perf_counter() - t0, 2),
                               "without_windows": emb["without_windows"]}
    elif emb is not None:
        results["astromer"] = {"skipped": emb.get("skipped", "regression")}
    # ---- fine-tuning, one run per layout
    steps_per_epoch = math.ceil(train.size / (cfg.batch_size * cfg.num_workers))
    for layout in cfg.layouts:
        slug = layout.replace(":", "-")
        run_name = f"{cfg.name}-{ds_cfg.name}-{slug}{tag}"
        render_cfg = cfg.render_config(layout)
        run_arrays = arrays
        if cfg.kind == "lightcurves":
            render_cfg = render_cfg.replace(bands=tuple(prep["bands"]))
            if render_cfg.folded:  # the periods found once, before any training step
                run_arrays = {**arrays,
                              "period": d["periods"][period_key(render_cfg)]["period"]}
        storage = out / "ray"
        storage.mkdir(parents=True, exist_ok=True)
        marker = storage / f".{run_name}.failure-injected"
        blocks = max(2 * cfg.num_workers, 4)
        train_config = VisionTrainConfig(
            model=cfg.model, model_fields={**cfg.model_overrides, **model_fields},
            load_pretrained=cfg.load_pretrained, kind=cfg.kind, render=render_cfg.to_dict(),
            labels=tuple(classes), total_steps=steps_per_epoch * cfg.epochs, epochs=cfg.epochs,
            batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
            warmup_fraction=cfg.warmup_fraction, grad_clip=cfg.grad_clip,
            weighted_sampling=cfg.weighted_sampling, patience=cfg.patience,
            cpus_per_worker=cfg.cpus_per_worker, eval_batch_size=cfg.eval_batch_size,
            seed=cfg.seed, fail_at_epoch=cfg.fail_at_epoch, fail_marker=str(marker),
            progress_file=str(storage / f".{run_name}.progress.json"))
        train_ds = arrays_dataset(run_arrays, train, blocks)
        val_ds = arrays_dataset(run_arrays, val, blocks)
        started = time.perf_counter()
        result = fit_vision(train_config, train_ds, val_ds, storage=storage, name=run_name,
                            resources=cfg, use_gpu=use_gpu)
        value = result.return_value or {}
        model_dir = out / "models" / f"{ds_cfg.name}-{slug}{tag}"
        shutil.rmtree(model_dir, ignore_errors=True)
        with result.checkpoint.as_directory() as folder:
            shutil.copytree(Path(folder) / "best", model_dir)
            # How inputs become images for this model: what bulk inference and Serve need.
            write_render_spec(model_dir, cfg.kind, render_cfg.to_dict(), cfg.max_length,
                              prep.get("bands"))
            state = torch.load(Path(folder) / "training_state.pt", map_location="cpu",
                               weights_only=False)
        history = state.get("history") or value.get("history", [])
        train_seconds = time.perf_counter() - started
        pred, per_second, samples = predict_arrays(
            str(model_dir), run_arrays, test, cfg.kind, render_cfg.to_dict(),
            batch_size=cfg.eval_batch_size, num_cpus=cfg.actor_cpus, use_gpu=use_gpu)
        figure = None
        name = f"{ds_cfg.name}_{slug}{tag}"
        if regression:
            metrics = redshift_metrics(z[test], pred)
            figure = plot_redshift(z[test], pred, out / f"redshift_{name}.png",
                                   title=f"{cfg.model} on {ds_cfg.name} ({layout}), test set")
        else:
            metrics = _named(classification_metrics(y_cls[test], pred.astype(np.int64),
                                                    labels=list(range(len(classes)))), classes)
            figure = plot_confusion_matrix(
                metrics["confusion"], classes, out / f"confusion_{name}.png",
                title=f"{cfg.model} on {ds_cfg.name} ({layout}), test set")
            if samples is not None:
                metrics["uncertainty"] = _uncertainty(y_cls[test], samples, out, name,
                                                      cfg.model)
        applied = _apply(ds_cfg, cfg, out, str(model_dir), render_cfg.to_dict(), classes,
                         regression, use_gpu)
        results["runs"][layout] = {
            "applied": applied,
            "test": metrics, "model_dir": str(model_dir), "checkpoint": result.checkpoint.path,
            "best_epoch": state.get("best_epoch"), "best_val_metric": state.get("best"),
            "epochs": len(history), "history": history,
            "stopped_early": value.get("stopped_early"),
            "resume": {"start_epoch": value.get("start_epoch"),
                       "epochs_run": value.get("epochs_run"),
                       "attempts": value.get("attempts"), "failure_injected": marker.exists()},
            "pretrained": state.get("pretrained"), "device": value.get("device"),
            "train_images_per_second": (float(np.mean([h["train_images_per_second"]
                                                       for h in history])) if history else None),
            "inference_images_per_second": per_second,
            "seconds": round(train_seconds, 2), "figure": str(figure) if figure else None,
        }
    return results


def _apply(ds_cfg: VisionDataset, cfg: FinetuneConfig, out: Path, model_dir: str,
           render: dict[str, Any], classes: list[str], regression: bool,
           use_gpu: bool) -> list[dict[str, Any]] | None:
    """Predictions of a trained model for the objects of ``ds_cfg.apply_paths``."""
    present = [p for p in ds_cfg.apply_paths if Path(p).exists()]
    if not present:
        return None
    info = prepare_light_curves((), tuple(present), None, out / "data" / f"{ds_cfg.name}-apply")
    wanted = SPECTRUM_COLUMNS if cfg.kind == "spectra" else LC_COLUMNS
    tables = [pq.read_table(f) for f in info["parquet"]]
    table = pa.concat_tables([t.select([c for c in wanted if c in t.column_names])
                              for t in tables], promote_options="default")
    if table.num_rows == 0:
        return []
    render_cfg = None
    if cfg.kind == "lightcurves":
        render_cfg = LightCurveRenderConfig.from_dict(render)
    arrays, _ = prepare_arrays(table, cfg.kind, max_length=cfg.max_length,
                               bands=tuple(render["bands"]) if render.get("bands") else None,
                               render=render_cfg)
    pred, _, _ = predict_arrays(model_dir, arrays, np.arange(table.num_rows), cfg.kind, render,
                                batch_size=cfg.eval_batch_size, num_cpus=cfg.actor_cpus,
                                use_gpu=use_gpu)
    rows = []
    names = table.column_names
    for i, oid in enumerate(table.column("object_id").to_pylist()):
        row: dict[str, Any] = {"object_id": oid,
                               "label": table.column("label")[i].as_py()
                               if "label" in names else None}
        if "z" in names:
            row["z"] = table.column("z")[i].as_py()
        if regression:
            row["z_pred"] = float(pred[i])
        else:
            row["pred"] = classes[int(pred[i])]
        rows.append(row)
    return rows


def _uncertainty(y: np.ndarray, samples: np.ndarray, out: Path, name: str,
                 model: str) -> dict[str, Any]:
    """Test-set uncertainty of an MC Dropout head: misclassification ROC-AUCs, ECE, diagram."""
    metrics = uncertainty_metrics(y, samples)
    figure = plot_reliability({"mc_dropout": reliability_curve(y, samples)},
                              out / f"reliability_{name}.png",
                              f"{model} on {name}: MC Dropout ({samples.shape[0]} passes)")
    return {**metrics, "passes": int(samples.shape[0]),
            "reliability_figure": str(figure) if figure else None}


def _named(metrics: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """Replace class indices by names in a classification metrics mapping."""
    rename = {str(i): c for i, c in enumerate(classes)}
    return {**metrics, "labels": list(classes),
            "per_class": {rename[k]: v for k, v in metrics["per_class"].items()},
            "per_class_recall": {rename[k]: v for k, v in metrics["per_class_recall"].items()}}


def finetune(config: FinetuneConfig, out: str | Path) -> dict[str, Any]:
    """Fine-tune and evaluate on every data set and layout; the entry point of both jobs.

    Output layout of ``out``::

        out/data/NAME/         canonical Parquet of the inputs (generated / ingested once)
        out/ray/RUN/           Ray Train runs: checkpoints (model folder, training state,
                               best/); the same ``out`` resumes
        out/models/NAME-LAYOUT the best model of each run (config.json + model.safetensors,
                               render.json); ``-seedN`` appended with several ``seeds``
        out/confusion_*.png    test confusion matrices (classification)
        out/redshift_*.png     predicted vs true redshift (regression)

    With several ``seeds`` each seed draws its own object split, shared by every method of
    that seed; what does not depend on the seed (data, features, periods, Astromer
    embeddings) is computed once per data set.

    Returns:
        ``{"table", "datasets", "use_gpu", "seeds"}``: ``table`` has one row per (data set,
        method): the vision model (one row per layout), each baseline and the Astromer
        classifier, with the test metrics (their mean over the seeds, with ``*_std`` and the
        per-seed ``*_seeds`` values, when there are several).
    """
    init_ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    use_gpu = gpu_available(config.num_workers) if config.use_gpu is None else config.use_gpu
    datasets, table = {}, []
    regression = config.task == "redshift"
    keys = (("r2", "nmad", "outlier_fraction") if regression
            else ("accuracy", "macro_f1"))
    for ds_cfg in config.datasets:
        started = time.perf_counter()
        prepared = prepare_dataset(ds_cfg, config, out)
        if "skipped" in prepared:
            res = prepared
        elif not config.seeds:
            res = _run_dataset(ds_cfg, config, out, use_gpu, prepared)
        else:
            per_seed = {s: _run_dataset(ds_cfg, config.replace(seed=s), out, use_gpu, prepared,
                                        tag=f"-seed{s}") for s in config.seeds}
            first = per_seed[config.seeds[0]]
            res = {"data": {**first["data"], "splits_per_seed": {
                       str(s): r["data"]["splits"] for s, r in per_seed.items()}},
                   "seeds": {str(s): {k: v for k, v in r.items() if k != "data"}
                             for s, r in per_seed.items()}}
        res["seconds"] = round(time.perf_counter() - started, 2)
        datasets[ds_cfg.name] = res
        if "skipped" in res:
            table.append({"dataset": ds_cfg.name, "skipped": res["skipped"]})
            continue
        seed_results = ([res] if not config.seeds
                        else [res["seeds"][str(s)] for s in config.seeds])
        table += _table_rows(ds_cfg.name, seed_results, res["data"]["splits"]["test"],
                             config, keys)
    return {"table": table, "datasets": datasets, "use_gpu": use_gpu,
            "seeds": list(config.run_seeds)}


def _method_metrics(res: dict[str, Any], config: FinetuneConfig) -> dict[str, dict[str, Any]]:
    """Method -> test metrics of one seed's results, in table order."""
    out: dict[str, dict[str, Any]] = {}
    for layout, run in res["runs"].items():
        out[f"{config.model} ({layout})"] = {
            **run["test"], "epochs": run["epochs"],
            **{k: v for k, v in run["test"].get("uncertainty", {}).items()
               if k.startswith("auroc_") or k == "ece"}}
    for name, metrics in res["baselines"].items():
        out[name] = metrics
    astromer = res.get("astromer")
    if astromer is not None and "skipped" not in astromer:
        out["astromer"] = astromer
    return out


def _table_rows(dataset: str, seed_results: list[dict[str, Any]], n_test: int,
                config: FinetuneConfig, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The table's rows of one data set: one per method, figures averaged over the seeds."""
    per_seed = [_method_metrics(r, config) for r in seed_results]
    rows = []
    for method in per_seed[0]:
        values = [m[method] for m in per_seed if method in m]
        row: dict[str, Any] = {"dataset": dataset, "method": method, "test_objects": n_test}
        extra = [k for k in values[0] if k == "epochs" or k.startswith("auroc_") or k == "ece"]
        if len(seed_results) == 1:
            row.update({k: values[0][k] for k in (*extra[:1], *keys, *extra[1:])})
            rows.append(row)
            continue
        row["seeds"] = len(values)
        for k in (*keys, *extra):
            v = np.array([float(x[k]) for x in values], dtype=np.float64)
            row[k] = round(float(np.nanmean(v)), 4)
            row[f"{k}_std"] = round(float(np.nanstd(v)), 4)
            row[f"{k}_seeds"] = [round(float(x), 4) for x in v]
        rows.append(row)
    return rows


def format_table(summary: dict[str, Any], config: FinetuneConfig) -> str:
    """The results table as Markdown: macro F1 (or R^2) mean +- spread over the seeds."""
    regression = config.task == "redshift"
    key, label = ("r2", "R^2") if regression else ("macro_f1", "macro F1")
    second, second_label = ("nmad", "NMAD") if regression else ("accuracy", "accuracy")
    seeds = summary.get("seeds") or [config.seed]
    spread = len(seeds) > 1
    head = (f"| data set | method | {label} | {second_label} | test objects |\n"
            "| --- | --- | --- | --- | --- |")
    lines = [head]
    for row in summary["table"]:
        if "skipped" in row:
            lines.append(f"| {row['dataset']} | (skipped: {row['skipped']}) | | | |")
            continue

        def cell(k: str, r: dict[str, Any] = row) -> str:
            value = r.get(k)
            if value is None:
                return "n/a"
            return f"{value:.3f} ± {r[f'{k}_std']:.3f}" if spread else f"{value:.3f}"

        lines.append(f"| {row['dataset']} | {row['method']} | {cell(key)} | {cell(second)} | "
                     f"{row['test_objects']} |")
    note = (f"Mean ± standard deviation (ddof 0) over seeds {', '.join(map(str, seeds))}; "
            "each seed draws its own object split, shared by every method of that seed."
            if spread else f"Seed {seeds[0]}.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def write_finetune_results(summary: dict[str, Any], config: FinetuneConfig, out: str | Path,
                           job: str, *, smoke: bool, started: float) -> None:
    """Print the results table; write ``out/results.json`` and ``out/table.md``."""
    for row in summary["table"]:
        if "skipped" in row:
            print(f"{job}: {row['dataset']}: skipped ({row['skipped']})")
            continue
        figures = ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                            if isinstance(v, float))
        print(f"{job}: {row['dataset']}: {row['method']}: {figures} "
              f"({row['test_objects']} test objects)")
    data = {name: res.get("data") for name, res in summary["datasets"].items()}
    runs = {name: {k: v for k, v in res.items() if k != "data"}
            for name, res in summary["datasets"].items()}
    markdown = format_table(summary, config)
    write_results(out, job, metrics={"table": summary["table"], "task": config.task,
                                     "seeds": summary.get("seeds"), "table_md": markdown,
                                     "datasets": runs},
                  data=data, model={"name": config.model, "use_gpu": summary["use_gpu"],
                                    "config": config.model_config().to_dict()},
                  config=config.to_dict(), smoke=smoke, started=started)
    Path(out, "table.json").write_text(json.dumps(summary["table"], indent=2))
    Path(out, "table.md").write_text(markdown)

