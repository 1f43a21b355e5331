"""Multi-Class Deep SVDD (MCDSVDD): anomaly scores of light curves from distances to centres.

An MLP encoder maps an object's (quantile-transformed) inputs to a latent vector. After
pretraining as an autoencoder, each inlier class gets a centre, the mean latent of its training
objects; training then pulls every object towards its own class's centre (mean squared
distance), and the anomaly score of an object is its distance to the nearest centre. With one
centre for all inliers this is Deep SVDD (Ruff et al. 2018).

As in the authors' code (mperezcarrasco/AnomalyALeRCE, ``classvdd``), the hidden layers keep
their Linear biases and affine BatchNorm and only the latent layer is bias-free; the centres
are fixed after the pretraining, and centre coordinates closer to zero than ``eps`` (0.01)
are pushed out to +-``eps``. ``bias=False`` is our earlier variant after Ruff et al. (2018):
no bias term anywhere, so that no constant output is reachable (hypersphere collapse).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from astroray.models.anomaly._quantile import fit_quantiles, quantile_transform
from astroray.models.anomaly.config import MCDSVDDConfig
from astroray.models.astromer.model import Astromer
from astroray.models.pretrained import PretrainedMixin

__all__ = ["MCDSVDD", "mlp"]


def mlp(widths: Sequence[int], *, bias: bool, negative_slope: float, last_bias: bool = False,
        output: nn.Module | None = None) -> nn.Sequential:
    """Linear layers ``widths[0] -> ... -> widths[-1]``; BatchNorm + LeakyReLU between them.

    Args:
        widths: layer widths, input first.
        bias: Linear biases and BatchNorm affine parameters of the hidden layers.
        negative_slope: LeakyReLU slope.
        last_bias: a bias in the last Linear layer.
        output: an activation after the last layer (None: linear output).
    """
    layers: list[nn.Module] = []
    last = len(widths) - 2
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=last_bias if i == last else bias))
        if i < last:
            layers += [nn.BatchNorm1d(b, affine=bias), nn.LeakyReLU(negative_slope)]
    if output is not None:
        layers.append(output)
    return nn.Sequential(*layers)


class MCDSVDD(PretrainedMixin, nn.Module):
    """The detector: input transform, encoder, decoder (for pretraining) and centres.

    Args:
        config: architecture, inputs and inlier classes (:class:`MCDSVDDConfig`).
    """

    config_class = MCDSVDDConfig
    model_type = "mcdsvdd"

    def __init__(self, config: MCDSVDDConfig):
        super().__init__()
        self.config = config
        widths = [config.input_dim, *config.hidden, config.latent_dim]
        # The latent layer never has a bias (with one, the network could output the centre
        # whatever the input); the hidden layers have theirs unless ``bias`` is False.
        self.encoder = mlp(widths, bias=config.bias, negative_slope=config.negative_slope)
        # The decoder only serves the pretraining; its biases cannot cause a collapse. Its
        # tanh output covers the uniform inputs in [0, 1] and the missing value -1.
        self.decoder = mlp(widths[::-1], bias=True, last_bias=True,
                           negative_slope=config.negative_slope,
                           output=nn.Tanh() if config.input_transform == "uniform" else None)
        q = config.n_quantiles
        self.register_buffer("quantiles", torch.zeros(q, config.input_dim, dtype=torch.float64))
        self.register_buffer("references", torch.linspace(0.0, 1.0, q, dtype=torch.float64))
        self.register_buffer("centres", torch.zeros(config.num_centres, config.latent_dim))
        self.astromer = Astromer(config.encoder) if config.input == "embeddings" else None

    # -- inputs ------------------------------------------------------------------------------

    @classmethod
    def dummy_inputs(cls, config: MCDSVDDConfig, batch_size: int = 2,
                     seed: int = 0) -> dict[str, torch.Tensor]:
        """Tiny random inputs of :meth:`forward` (tests): transformed inputs (B, F) in [0, 1]."""
        g = torch.Generator().manual_seed(seed)
        return {"x": torch.rand((batch_size, config.input_dim), generator=g)}

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """Fit the input quantile transform on training inputs (N, F) and apply it."""
        quantiles, references = fit_quantiles(x, self.config.n_quantiles)
        q = self.config.n_quantiles
        if quantiles.shape[0] < q:  # fewer objects than quantiles: resample the levels
            levels = np.linspace(0.0, 1.0, q)
            quantiles = np.stack([np.interp(levels, references, quantiles[:, j])
                                  for j in range(quantiles.shape[1])], axis=1)
            references = levels
        self.quantiles.copy_(torch.from_numpy(quantiles))
        self.references.copy_(torch.from_numpy(references))
        return self.transform(x)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs (N, F) -> transformed inputs (N, F) float32.

        ``uniform``: in [0, 1], missing values -1; ``normal``: standard normal, missing 0.
        """
        return quantile_transform(x, self.quantiles.cpu().numpy(),
                                  self.references.cpu().numpy(), self.config.input_transform)

    # -- network -----------------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent vectors (B, z) of transformed inputs (B, F)."""
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The autoencoder's reconstruction (B, F) of transformed inputs (B, F)."""
        return self.decoder(self.encoder(x))

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Euclidean distances (B, K) of latents (B, z) to the K centres."""
        diff = z[:, None, :] - self.centres[None, :, :]  # (B, K, z)
        return diff.pow(2).sum(-1).sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Anomaly scores (B,): distance to the nearest centre, over ``score_scale``."""
        return self.distances(self.encode(x)).min(dim=1).values / self.config.score_scale

    def set_centres(self, z: torch.Tensor, labels: Sequence[str] | np.ndarray,
                    eps: float = 0.01) -> None:
        """Centres from latents (N, z): the mean of each inlier class (or of all, single).

        Non-zero coordinates closer to zero than ``eps`` are moved out to ``+-eps`` (their
        sign kept): a zero centre is reached by a network whose weights all vanish (Ruff et
        al. 2018). As in the authors' ``set_c``, a coordinate of exactly 0 is left at 0.

        Raises:
            ValueError: when an inlier class has no object.
        """
        labels = np.asarray(labels).astype(str)
        if self.config.centres == "single":
            centres = z.mean(dim=0, keepdim=True)
        else:
            rows = []
            for label in self.config.labels:
                mask = torch.from_numpy(labels == label).to(z.device)
                if not bool(mask.any()):
                    raise ValueError(f"inlier class {label!r} has no training object")
                rows.append(z[mask].mean(dim=0))
            centres = torch.stack(rows)
        small = centres.abs() < eps
        centres = torch.where(small & (centres < 0), -eps,
                              torch.where(small & (centres > 0), eps, centres))
        self.centres.copy_(centres.detach().to(self.centres))

    def centre_index(self, labels: Sequence[str] | np.ndarray) -> np.ndarray:
        """Each object's own centre (N,): its class's, or 0 for a single centre."""
        labels = np.asarray(labels).astype(str)
        if self.config.centres == "single":
            return np.zeros(labels.size, np.int64)
        index = {c: i for i, c in enumerate(self.config.labels)}
        unknown = sorted(set(labels.tolist()) - set(index))
        if unknown:
            raise ValueError(f"labels {unknown} are not inlier classes {self.config.labels}")
        return np.array([index[v] for v in labels.tolist()], np.int64)

    # -- scoring -----------------------------------------------------------------------------

    @torch.inference_mode()
    def score(self, x: np.ndarray, *, batch_size: int = 4096
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores of raw inputs, in eval mode.

        Args:
            x: raw inputs (N, F) (features or embeddings, before the quantile transform).
            batch_size: objects per forward pass.

        Returns:
            ``(scores, nearest, latents)``: (N,) distance to the nearest centre over
            ``score_scale``, (N,) index of that centre, (N, z) latent vectors.
        """
        was_training = self.training
        self.eval()
        device = self.centres.device
        xt = torch.from_numpy(self.transform(x))
        scores, nearest, latents = [], [], []
        for lo in range(0, len(xt), batch_size):
            z = self.encode(xt[lo:lo + batch_size].to(device))  # (b, z)
            d = self.distances(z)  # (b, K)
            best = d.min(dim=1)
            scores.append(best.values / self.config.score_scale)
            nearest.append(best.indices)
            latents.append(z)
        self.train(was_training)
        if not scores:
            return (np.zeros(0, np.float32), np.zeros(0, np.int64),
                    np.zeros((0, self.config.latent_dim), np.float32))
        return (torch.cat(scores).float().cpu().numpy(), torch.cat(nearest).cpu().numpy(),
                torch.cat(latents).float().cpu().numpy())

    @torch.inference_mode()
    def reconstruction_error(self, x: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error (N,) of raw inputs (the autoencoder baseline)."""
        was_training = self.training
        self.eval()
        xt = torch.from_numpy(self.transform(x)).to(self.centres.device)
        err = (self.reconstruct(xt) - xt).pow(2).mean(dim=1) if len(xt) else xt.new_zeros(0)
        self.train(was_training)
        return err.float().cpu().numpy()
