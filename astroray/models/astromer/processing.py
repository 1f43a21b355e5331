"""The Astromer family's preprocessing: its encoders by name, its windows, its embeddings.

Kept beside the model (as transformers keeps a model's processor beside it) so that training,
inference and the anomaly detector's inputs share one implementation:

* :func:`load_encoder`: an Astromer from a saved folder, a published name or a registry name;
* :class:`Float32Windows`: the sequential windows inference feeds the encoder, without the
  objects float32 cannot hold;
* :func:`read_embeddings`: an embeddings column of the embedder's output as numpy;
* :func:`impute_embeddings`: the fitting objects' mean in place of missing embedding features
  (an object without a band), before a classifier reads them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from astroray.data.windows import LightCurveWindows
from astroray.models.astromer.model import Astromer
from astroray.models.pretrained import read_config_json
from astroray.models.registry import create_model, list_published, load_model, resolve_model_path

__all__ = ["Float32Windows", "impute_embeddings", "load_encoder", "read_embeddings"]

logger = logging.getLogger(__name__)


def load_encoder(model: str, *, random_init: bool = False, seed: int = 0,
                 **overrides: Any) -> torch.nn.Module:
    """An Astromer from a saved folder or a registry name.

    Args:
        model: a folder written by ``save_pretrained`` / pretraining, a published model's
            name (``astromer1-macho``), or a registry name.
        random_init: build the folder's architecture with random weights (a baseline).
        seed: seed of a random initialisation.
        **overrides: config overrides.

    Returns:
        The model in eval mode, on the CPU. A registry name (no weights) gives a random
        initialisation and logs one warning line.
    """
    torch.manual_seed(seed)
    if str(model) in list_published() and not Path(model).is_dir():
        model = resolve_model_path(model)
    if Path(model).is_dir():
        if random_init:
            data = read_config_json(model)
            data.pop("model_type", None)
            net = Astromer(Astromer.config_class.from_dict({**data, **overrides}))
        else:
            net = load_model(model, **overrides)
    else:
        net = create_model(model, **overrides)
        if not random_init:
            logger.warning("no weights for %r (not a saved model folder): random "
                           "initialisation", model)
    return net.eval()


class Float32Windows(LightCurveWindows):
    """:class:`LightCurveWindows` that drops the objects float32 windows cannot hold.

    Windows are float32 (what the model reads). Times or values that are finite in float64
    but beyond float32 after centring (|t - t0| or |value - mean| above ~3.4e38) become inf
    there, and the model's outputs NaN; every window of such an object is dropped, and
    ``rejected`` (batch row -> reason, for the last call) says why.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.rejected: dict[int, str] = {}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Window one batch; objects that overflow float32 have no window (see ``rejected``)."""
        with np.errstate(over="ignore", invalid="ignore"):  # the overflow is checked below
            out = super().__call__(batch)
        self.rejected = {}
        if not len(out["row"]):
            return out
        valid = out["mask"]
        bad_t = (~np.isfinite(out["times"]) & valid).any(axis=1)  # (W,)
        bad_v = (~np.isfinite(out["values"]) & valid).any(axis=1)
        bad = bad_t | bad_v
        if not bad.any():
            return out
        rows = np.asarray(out["row"])
        for r in np.unique(rows[bad]):
            sel = bad & (rows == r)
            what = " and ".join(name for name, flag in (("times", bad_t[sel].any()),
                                                        ("values", bad_v[sel].any())) if flag)
            bands = ", ".join(sorted({str(b) for b in np.asarray(out["band"])[sel]}))
            self.rejected[int(r)] = (f"{what} of band {bands} not finite in float32 after "
                                     "centring (beyond 3.4e38): inputs beyond float32")
        keep = ~np.isin(rows, np.fromiter(self.rejected, np.int64))
        return {k: v[keep] for k, v in out.items()}


def read_embeddings(table: pa.Table, column: str = "layer_embeddings") -> np.ndarray:
    """An embeddings column as a numpy array: (N, D) or, for ``layer_embeddings``, (N, S, D).

    Null rows (objects without windows) come back as NaN.
    """
    col = table.column(column).combine_chunks()
    n = len(col)
    if n == 0:
        return np.zeros((0,), np.float32)
    inner = col.type.value_type
    if pa.types.is_fixed_size_list(inner):
        s, d = col.type.list_size, inner.list_size
        out = np.full((n, s, d), np.nan, np.float32)
        valid = ~np.asarray(col.is_null())
        vals = col.filter(pa.array(valid)).flatten().flatten().to_numpy(zero_copy_only=False)
        out[valid] = vals.reshape(-1, s, d)
        return out
    d = col.type.list_size
    out = np.full((n, d), np.nan, np.float32)
    valid = ~np.asarray(col.is_null())
    out[valid] = col.filter(pa.array(valid)).flatten().to_numpy(zero_copy_only=False).reshape(-1, d)
    return out


def impute_embeddings(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Missing features (an object without a band) take the fitting objects' mean (0 if none).

    Per-band embeddings (``band_concat``) leave NaN where an object has no window of a band;
    a classifier needs finite inputs, and the mean of the objects it is fitted on leaks nothing
    from the held-out ones.

    Args:
        x: embeddings, (N, ...) float, NaN where missing.
        fit: indices of the fitting (training and validation) objects.

    Returns:
        ``x`` itself when nothing is missing, else a float32 copy with every NaN replaced by
        the mean of that feature over ``fit`` (0 where no fitting object has it).
    """
    if not np.isnan(x).any():
        return x
    with np.errstate(all="ignore"):
        mean = np.nanmean(x[fit], axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    return np.where(np.isnan(x), mean[None], x).astype(np.float32)
