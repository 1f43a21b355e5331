"""Astromer embeddings of light curves at survey scale, as a Ray Data batch transform.

:class:`AstromerEmbedder` is a callable class for ``Dataset.map_batches`` (the model is
loaded once per actor in ``__init__``; ``__call__`` runs under ``torch.inference_mode()``):
it cuts each batch of canonical light curves into sequential windows of every band, encodes
them, and returns one row per object with

* ``layer_embeddings`` (S x D): the masked time-means of the input embedding and of every
  block output, averaged over the object's windows and bands;
* ``embedding`` (D): the same for the last block (the representation the pretraining head
  reads);
* ``weighted_embedding`` (D): Astromer 2's weighted per-sample embedding, the softmax-weighted
  combination of the S layer means, with weights learned by a downstream classifier (given
  as ``layer_weights``) or equal when none is given.

Objects with no window (every band shorter than ``min_points``) keep their row, with
``n_windows = 0`` and null embeddings, so that every input id is in the output. So do objects
whose windows float32 cannot hold (times or values beyond float32 after centring, such as
times of 1e39): their windows are dropped rather than fed to the model as inf, and
``embedder.windows.rejected`` says why, for a predictor's failure row.

:func:`embed_table` returns the layer means of a table's objects as one numpy array (the input
of the Astromer classifiers): averaged over all bands by one actor, or per band in this
process.

The family's preprocessing (:func:`load_encoder`, :class:`Float32Windows`,
:func:`read_embeddings`) lives in :mod:`astroray.models.astromer.processing`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
import torch

from astroray.config import ActorResources, check, check_positive_ints
from astroray.data.fileio import numpy_batch
from astroray.data.inputs import check_inputs, resolve_inputs
from astroray.data.synthetic import SyntheticSurveyConfig
from astroray.data.windows import LC_COLUMNS

# Used here, and public from astroray.infer as before (they live in the Astromer family).
from astroray.models.astromer.processing import Float32Windows, load_encoder, read_embeddings
from astroray.models.device import autocast
from astroray.runtime import check_actor_pool, gpu_available, init_ray, write_results

__all__ = ["AstromerEmbedder", "EmbedConfig", "Float32Windows", "embed", "embed_table",
           "load_encoder", "read_embeddings"]

#: CPUs of each Parquet read task of the embedding job (fractional: the actors keep most).
_READ_CPUS = 0.25


class AstromerEmbedder:
    """Ray Data batch transform: canonical light curves -> per-object Astromer embeddings.

    Args:
        model: saved model folder or registry name (see :func:`load_encoder`), or an
            Astromer module.
        random_init: random weights with the model's architecture (untrained baseline).
        seed: seed of a random initialisation.
        min_points: bands with fewer points are not windowed.
        bands: only these bands (None: all).
        window_batch: windows per forward pass.
        layer_weights: logits of the weighted per-sample embedding (S values, from a trained
            :class:`~astroray.models.astromer.AstromerClassifierHead`); None: equal weights.
        device: ``cuda``/``cpu``; None picks CUDA when available.
    """

    def __init__(self, model: str | torch.nn.Module, *, random_init: bool = False,
                 seed: int = 0, min_points: int = 1, bands: list[str] | None = None,
                 window_batch: int = 256, layer_weights: list[float] | None = None,
                 device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(model, torch.nn.Module):  # an encoder already built (a classifier's)
            self.model = model.eval().to(self.device)
        else:
            self.model = load_encoder(model, random_init=random_init, seed=seed).to(self.device)
        cfg = self.model.config
        self.windows = Float32Windows(cfg.window_size, mode="sequential",
                                      min_points=min_points, bands=bands,
                                      time_origin=cfg.time_origin)
        self.window_batch = window_batch
        s = self.model.num_states
        logits = torch.zeros(s) if layer_weights is None else torch.tensor(layer_weights)
        if logits.numel() != s:
            raise ValueError(f"layer_weights has {logits.numel()} values; the model has {s} "
                             "representations (blocks + 1)")
        self.weights = torch.softmax(logits.float(), dim=0).numpy()
        self.d_model = cfg.d_model

    def encode_windows(self, windows: dict[str, np.ndarray]) -> np.ndarray:
        """Layer means (W, S, D) of a windows batch (see :class:`Float32Windows`)."""
        out = []
        n = len(windows["times"])
        with torch.inference_mode():
            for lo in range(0, n, self.window_batch):
                sl = slice(lo, lo + self.window_batch)
                t = torch.from_numpy(windows["times"][sl]).to(self.device)
                v = torch.from_numpy(windows["values"][sl]).to(self.device)
                m = torch.from_numpy(windows["mask"][sl]).to(self.device)
                with autocast(self.device):
                    means = self.model.embed(t, v, m)  # (w, S, D)
                out.append(means.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.model.num_states, self.d_model), np.float32)
        return np.concatenate(out)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        """Embed one batch of light curves (``batch_format="numpy"``); one row per object."""
        with torch.inference_mode():
            windows = self.windows(batch)
            means = self.encode_windows(windows)  # (W, S, D)
        ids = np.asarray(batch["object_id"]).astype(str)
        n, s, d = len(ids), self.model.num_states, self.d_model
        # Mean over each object's windows (all bands): windows come from the batch's rows.
        win_row = windows["row"].astype(np.int64)
        counts = np.bincount(win_row, minlength=n)
        sums = np.zeros((n, s * d), np.float64)
        np.add.at(sums, win_row, means.reshape(len(win_row), s * d))
        obj = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32).reshape(n, s, d)
        weighted = np.einsum("nsd,s->nd", obj, self.weights).astype(np.float32)
        valid = pa.array(counts == 0)
        columns = {
            "object_id": pa.array(ids, type=pa.string()),
            "n_windows": pa.array(counts.astype(np.int32)),
            "embedding": _fixed(obj[:, -1], valid),
            "weighted_embedding": _fixed(weighted, valid),
            "layer_embeddings": pa.FixedSizeListArray.from_arrays(
                pa.FixedSizeListArray.from_arrays(pa.array(obj.reshape(-1)), d), s, mask=valid),
        }
        if "label" in batch:
            columns["label"] = pa.array(list(batch["label"]), type=pa.string())
        return pa.table(columns)


def _fixed(values: np.ndarray, null: pa.Array) -> pa.Array:
    """(N, D) float32 -> fixed_size_list<float>[D] with the rows in ``null`` set to null."""
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1],
                                             mask=null)


def embed_table(table: pa.Table, encoder: str, *, random_init: bool, seed: int,
                min_points: int, actor_cpus: float, embedding: str = "band_mean"
                ) -> np.ndarray:
    """Layer means (N, S, D') of every row of ``table``, NaN where an object has no window.

    ``band_mean`` runs one Ray Data actor over the table (as bulk embedding does); the
    per-band modes embed the windows in this process and average them per object and band.

    Args:
        table: canonical light curves, one object per row.
        encoder: a model folder, published weights' name or registry name (see
            :func:`load_encoder`).
        random_init: random weights with the encoder's architecture (untrained baseline).
        seed: seed of a random initialisation.
        min_points: bands with fewer points are not windowed.
        actor_cpus: CPUs of the embedding actor (``band_mean``).
        embedding: ``band_mean`` (layer means averaged over an object's windows of all
            bands), ``band_concat`` (per-band means concatenated, bands in sorted order) or
            ``band:NAME`` (one band).

    Returns:
        (N, S, D') float32 in the table's row order: S representations (the input embedding
        and every block), ``D'`` is ``D`` times the number of bands for ``band_concat``, else
        ``D``; NaN where an object (or, per band, a band) has no window.
    """
    if embedding == "band_mean":
        return _embed_with_ray(table, encoder, random_init=random_init, seed=seed,
                               min_points=min_points, actor_cpus=actor_cpus)

    embedder = AstromerEmbedder(encoder, random_init=random_init, seed=seed,
                                min_points=min_points)
    windows = embedder.windows(numpy_batch(table))
    means = embedder.encode_windows(windows)  # (W, S, D)
    bands = (sorted({str(b) for b in windows["band"]}) if embedding == "band_concat"
             else [embedding.split(":", 1)[1]])
    n, (_, s_, d) = table.num_rows, means.shape
    out = np.full((n, s_, d * len(bands)), np.nan, dtype=np.float32)
    band = np.asarray(windows["band"]).astype(str)
    for k, b in enumerate(bands):
        sel = band == b
        rows = windows["row"][sel]
        sums = np.zeros((n, s_, d))
        np.add.at(sums, rows, means[sel])
        counts = np.bincount(rows, minlength=n)
        has = counts > 0
        out[has, :, k * d:(k + 1) * d] = sums[has] / counts[has, None, None]
    return out


def _embed_with_ray(table: pa.Table, encoder: str, *, random_init: bool, seed: int,
                    min_points: int, actor_cpus: float) -> np.ndarray:
    """Layer means (N, S, D) of every row of ``table`` with a Ray Data actor."""
    ds = ray.data.from_arrow(table).map_batches(
        AstromerEmbedder, batch_format="numpy", batch_size=128,
        fn_constructor_kwargs={"model": encoder, "random_init": random_init, "seed": seed,
                               "min_points": min_points},
        compute=ray.data.ActorPoolStrategy(size=1), num_cpus=actor_cpus)
    ds.context.enable_progress_bars = False
    refs = ds.to_arrow_refs()
    out = pa.concat_tables(ray.get(refs))
    feats = read_embeddings(out, "layer_embeddings")
    index = {oid: i for i, oid in enumerate(out.column("object_id").to_pylist())}
    return feats[[index[o] for o in table.column("object_id").to_pylist()]]


@dataclasses.dataclass
class EmbedConfig(ActorResources):
    """Settings of ``jobs/embed_astromer.py``.

    The model actors (``num_actors``, ``actor_cpus``, ``use_gpu``) are the
    :class:`~astroray.config.ActorResources` group.

    Attributes:
        model: a saved model folder (e.g. a pretraining run's ``model/``) or a registry name
            (random initialisation, with a warning).
        paths: survey files/folders or canonical Parquet to embed.
        optional_paths: the same, used when present.
        synthetic: a synthetic survey generated as input (when paths give nothing).
        min_points: bands with fewer points are not windowed.
        bands: only these bands (None: all).
        layer_weights: weighted-embedding logits from a trained classifier (None: equal).
        window_batch: windows per forward pass.
        lc_batch: light curves per Ray Data batch.
    """

    model: str = "astromer-v1"
    paths: tuple[str, ...] = ()
    optional_paths: tuple[str, ...] = ()
    synthetic: SyntheticSurveyConfig | None = None
    min_points: int = 1
    bands: tuple[str, ...] | None = None
    layer_weights: tuple[float, ...] | None = None
    window_batch: int = 256
    lc_batch: int = 128

    def __post_init__(self) -> None:
        if self.bands is not None:
            self.bands = tuple(self.bands)
        if self.layer_weights is not None:
            self.layer_weights = tuple(float(w) for w in self.layer_weights)
        check(isinstance(self.model, str) and self.model != "", self, "model", self.model,
              "a saved model folder or a registry name")
        check_inputs(self)
        check_positive_ints(self, "min_points", "window_batch", "lc_batch")
        self.check_actor_resources()

    def smoke(self) -> EmbedConfig:
        """This configuration shrunk to run in a minute on 2 CPUs."""
        synthetic = self.synthetic
        if synthetic is not None:
            synthetic = synthetic.replace(n=min(synthetic.n, 300))
        model = self.model if Path(self.model).is_dir() else "astromer-tiny"
        return self.replace(model=model, synthetic=synthetic, layer_weights=None)


def embed(config: EmbedConfig, out: str | Path) -> dict[str, Any]:
    """Embed every light curve of the inputs; writes ``out/embeddings/`` (Parquet).

    Returns:
        ``{"metrics", "data", "model"}``: objects, windows and throughput; the inputs; the
        model used.
    """
    init_ray()
    check_actor_pool("EmbedConfig", config.num_actors, config.actor_cpus, _READ_CPUS)
    out = Path(out).resolve()
    inputs = resolve_inputs(config.paths, config.optional_paths, config.synthetic,
                            out / "data")
    pool = config.actor_pool(use_gpu=gpu_available(1))
    use_gpu = pool["num_gpus"] > 0
    ds = ray.data.read_parquet(inputs.paths, columns=LC_COLUMNS, num_cpus=_READ_CPUS)
    started = time.perf_counter()
    emb = ds.map_batches(
        AstromerEmbedder, batch_format="numpy", batch_size=config.lc_batch,
        fn_constructor_kwargs={"model": config.model, "min_points": config.min_points,
                               "bands": list(config.bands) if config.bands else None,
                               "window_batch": config.window_batch,
                               "layer_weights": (list(config.layer_weights)
                                                 if config.layer_weights else None)},
        **pool)
    target = out / "embeddings"
    emb.write_parquet(str(target))
    seconds = time.perf_counter() - started
    table = pq.read_table(target, columns=["object_id", "n_windows"])
    windows = int(np.asarray(table.column("n_windows")).sum())
    saved = Path(config.model).is_dir()
    return {
        "metrics": {"objects": table.num_rows, "windows": windows,
                    "objects_without_windows": int((np.asarray(table.column("n_windows"))
                                                    == 0).sum()),
                    "seconds": round(seconds, 3),
                    "windows_per_second": windows / seconds if seconds > 0 else None},
        "data": {"inputs": inputs.inputs, "skipped": inputs.skipped, "objects": inputs.objects,
                 "parquet": inputs.paths, "embeddings": str(target)},
        "model": {"model": config.model, "pretrained": saved, "use_gpu": use_gpu},
    }


def write_embed_results(summary: dict[str, Any], config: EmbedConfig, out: str | Path, *,
                        smoke: bool, started: float) -> None:
    """Print the one-line summary of an embedding run and write ``out/results.json``."""
    m = summary["metrics"]
    print(f"embed: {m['objects']} objects, {m['windows']} windows in {m['seconds']:.1f} s "
          f"-> {summary['data']['embeddings']}")
    write_results(out, "embed_astromer", metrics=m, data=summary["data"],
                  model=summary["model"], config=config.to_dict(), smoke=smoke,
                  started=started)
