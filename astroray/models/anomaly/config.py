"""Configuration of the Multi-Class Deep SVDD anomaly detector (Perez-Carrasco et al. 2023)."""

from __future__ import annotations

import dataclasses

from astroray.config import Config, check
from astroray.features import feature_names
from astroray.models.anomaly._quantile import OUTPUTS
from astroray.models.astromer.config import AstromerConfig

__all__ = ["CENTRE_MODES", "INPUTS", "INPUT_TRANSFORMS", "MCDSVDD_DEFAULT", "MCDSVDD_TINY",
           "MCDSVDDConfig"]

#: What the detector reads: hand-crafted light-curve features or Astromer embeddings.
INPUTS = ("features", "embeddings")
#: ``per_class``: one centre per inlier class (MCDSVDD); ``single``: one centre (Deep SVDD).
CENTRE_MODES = ("per_class", "single")
#: ``uniform``: the authors' quantile transform to [0, 1], missing values -1, tanh decoder
#: output; ``normal``: our earlier variant, a standard normal with missing values 0 (median).
INPUT_TRANSFORMS = OUTPUTS


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclasses.dataclass
class MCDSVDDConfig(Config):
    """Architecture, inputs and inlier classes of an MCDSVDD / Deep SVDD detector.

    The encoder is an MLP ``input_dim -> hidden... -> latent_dim`` (512-256-128-z in the
    paper) with BatchNorm and LeakyReLU after each hidden layer; the decoder mirrors it for
    the autoencoder pretraining. As in the authors' code (mperezcarrasco/AnomalyALeRCE,
    ``classvdd`` and ``src/utils/normalize.py``), the hidden layers keep their biases and
    affine BatchNorm, only the latent layer has no bias, and inputs are quantile-transformed
    to [0, 1] with missing values (undefined features) set to -1, outside that range, so that
    the encoder sees a feature is missing. The quantiles are stored in the model's weights
    (so inference reproduces training).

    Attributes:
        input: ``features`` (:mod:`astroray.features` of the light curve) or ``embeddings``
            (the per-object Astromer embedding of :attr:`encoder`, carried in the model).
        input_dim: width of the input vector (features, or the encoder's ``d_model``).
        feature_names: names of the input columns (features), for reports and checks.
        bands: bands whose features are computed (features) or windowed (embeddings); None:
            every band (embeddings only: feature columns need a fixed band order).
        labels: the inlier classes; with ``per_class`` centres, centre ``k`` is the mean
            latent of ``labels[k]``.
        centres: ``per_class`` (MCDSVDD) or ``single`` (Deep SVDD, one centre for all).
        hidden: encoder widths before the latent layer.
        latent_dim: width of the latent space z.
        negative_slope: LeakyReLU slope.
        bias: Linear biases and affine BatchNorm in the encoder's hidden layers (the
            authors'; the latent layer never has a bias). False is our earlier variant
            after Ruff et al. (2018), no bias term anywhere and BatchNorm without affine
            parameters, against hypersphere collapse; the authors rely on the bias-free
            last layer and the fixed centres instead.
        input_transform: ``uniform`` (the authors': quantiles to [0, 1], missing -1, and a
            tanh output of the decoder, whose targets then lie in [-1, 1]) or ``normal`` (our
            earlier variant: a standard normal, missing 0, a linear decoder output).
        n_quantiles: quantiles of the stored input transform.
        min_points: fewest valid points (in :attr:`bands`) an object needs to be scored.
        encoder: the Astromer architecture (``embeddings`` input); its weights are saved with
            the detector.
        score_scale: the scores are divided by it (set after training to the median score of
            the training objects, so that a score of 1 is a typical inlier).
    """

    input: str = "features"
    input_dim: int = 64
    feature_names: tuple[str, ...] | None = None
    bands: tuple[str, ...] | None = None
    labels: tuple[str, ...] = ("inlier",)
    centres: str = "per_class"
    hidden: tuple[int, ...] = (512, 256, 128)
    latent_dim: int = 32
    negative_slope: float = 0.01
    bias: bool = True
    input_transform: str = "uniform"
    n_quantiles: int = 1000
    min_points: int = 5
    encoder: AstromerConfig | None = None
    score_scale: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = AstromerConfig.from_dict(self.encoder)
        self.labels = tuple(str(v) for v in self.labels)
        self.hidden = tuple(self.hidden)
        if self.bands is not None:
            self.bands = tuple(str(b) for b in self.bands)
        if self.feature_names is not None:
            self.feature_names = tuple(str(f) for f in self.feature_names)
        check(self.input in INPUTS, self, "input", self.input, f"one of {INPUTS}")
        check(self.centres in CENTRE_MODES, self, "centres", self.centres,
              f"one of {CENTRE_MODES}")
        check(_positive_int(self.input_dim), self, "input_dim", self.input_dim,
              "a positive integer")
        check(_positive_int(self.latent_dim), self, "latent_dim", self.latent_dim,
              "a positive integer")
        check(all(_positive_int(h) for h in self.hidden), self, "hidden", self.hidden,
              "positive integers")
        check(len(self.labels) >= 1 and len(set(self.labels)) == len(self.labels), self,
              "labels", self.labels, "at least one distinct class name")
        check(isinstance(self.negative_slope, int | float) and 0 <= self.negative_slope < 1,
              self, "negative_slope", self.negative_slope, "a number in [0, 1)")
        check(isinstance(self.bias, bool), self, "bias", self.bias, "true or false")
        check(self.input_transform in INPUT_TRANSFORMS, self, "input_transform",
              self.input_transform, f"one of {INPUT_TRANSFORMS}")
        check(_positive_int(self.n_quantiles) and self.n_quantiles >= 2, self, "n_quantiles",
              self.n_quantiles, "an integer >= 2")
        check(_positive_int(self.min_points), self, "min_points", self.min_points,
              "a positive integer")
        check(isinstance(self.score_scale, int | float) and self.score_scale > 0, self,
              "score_scale", self.score_scale, "a positive number")
        if self.input == "features":
            check(self.bands is not None and len(self.bands) > 0, self, "bands", self.bands,
                  "the band order of the feature columns (features input)")
            check(self.feature_names is None or len(self.feature_names) == self.input_dim,
                  self, "feature_names", self.feature_names,
                  f"null or {self.input_dim} names (input_dim)")
        else:
            check(isinstance(self.encoder, AstromerConfig), self, "encoder", self.encoder,
                  "an AstromerConfig mapping (embeddings input)")
            check(self.input_dim == self.encoder.d_model, self, "input_dim", self.input_dim,
                  f"the encoder's d_model ({self.encoder.d_model}) for embeddings input")

    @property
    def num_centres(self) -> int:
        """Centres of the detector: one per inlier class, or one."""
        return len(self.labels) if self.centres == "per_class" else 1


#: The published architecture on the features of two bands (B, R).
MCDSVDD_DEFAULT = MCDSVDDConfig(input="features", input_dim=len(feature_names(("B", "R"))),
                                feature_names=tuple(feature_names(("B", "R"))),
                                bands=("B", "R"),
                                labels=("DCEP_F", "DCEP_1O", "RRab", "RRc", "EB", "LPV"))
#: Overrides of a tiny detector for tests.
MCDSVDD_TINY = {"hidden": (16, 8), "latent_dim": 4, "n_quantiles": 10}
