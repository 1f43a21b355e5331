"""Request and response bodies of the astroray endpoints (pydantic v2).

A request is a batch of objects (what a broker sends per alert is a batch of one). Each object
is checked at the boundary, strictly (a string or a boolean is not a number): equal-length
arrays, finite numbers a float32 model can hold (MJD times within 10^6 days, magnitudes within
+-90, so no survey sentinel), a length cap, unique object ids; a spectrum's wavelengths must
increase. Anything else answers 422 with the field's location, before a model sees it.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["FLOAT32_MAX", "MAX_MAG", "MAX_OBJECTS", "MAX_POINTS", "MAX_TIME", "LightCurve",
           "LightCurveRequest", "ModelInfo", "ModelsResponse", "ObjectError", "ObjectResult",
           "PredictResponse", "Spectrum", "SpectrumRequest"]

#: Objects per request.
MAX_OBJECTS = 256
#: Points (light curve) or pixels (spectrum) per object.
MAX_POINTS = 20_000

#: Largest float32: values beyond it (or times beyond MAX_TIME) cannot be held by the models,
#: which compute in float32 after centring; they are refused here rather than turned into
#: infinities and null probabilities.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Times are MJD: |t| above this is no date (MJD 10^6 is the year 4596).
MAX_TIME = 1.0e6
#: Magnitudes beyond this are survey sentinels for "no measurement" (99.999, -99).
MAX_MAG = 90.0

Finite = Annotated[float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
Time = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_TIME, le=MAX_TIME)]
Mag = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_MAG, le=MAX_MAG)]
NonNegative = Annotated[float, Field(allow_inf_nan=False, ge=0, le=FLOAT32_MAX)]
Band = Annotated[str, Field(min_length=1, max_length=16)]
ObjectId = Annotated[str, Field(min_length=1, max_length=256)]
# strict: "1.5" is not a number and true is not 1 (no silent coercion of what a client sent).
_STRICT = ConfigDict(extra="forbid", strict=True)


def _equal_lengths(obj: BaseModel, names: tuple[str, ...]) -> None:
    lengths = {n: len(getattr(obj, n)) for n in names if getattr(obj, n) is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError("arrays must have equal lengths, got "
                         + ", ".join(f"{n}: {v}" for n, v in lengths.items()))


class LightCurve(BaseModel):
    """One multi-band light curve: magnitudes *or* fluxes (nJy), 1-sigma errors, band names."""

    model_config = _STRICT

    object_id: ObjectId
    times: list[Time] = Field(min_length=1, max_length=MAX_POINTS,
                              description="MJD of each point")
    mags: list[Mag] | None = Field(None, max_length=MAX_POINTS,
                                   description="magnitudes (give mags or fluxes); |m| < 90")
    fluxes: list[Finite] | None = Field(None, max_length=MAX_POINTS,
                                        description="fluxes in nJy (give mags or fluxes)")
    errs: list[NonNegative] = Field(max_length=MAX_POINTS, description="1-sigma errors")
    bands: list[Band] = Field(max_length=MAX_POINTS, description="band name of each point")
    survey: str = Field("api", min_length=1, max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> LightCurve:
        if (self.mags is None) == (self.fluxes is None):
            raise ValueError("give exactly one of mags and fluxes")
        _equal_lengths(self, ("times", "mags", "fluxes", "errs", "bands"))
        return self

    def record(self) -> dict:
        """The canonical light-curve record (points sorted by time)."""
        order = np.argsort(np.asarray(self.times, dtype=np.float64), kind="stable")
        values = np.asarray(self.mags if self.mags is not None else self.fluxes,
                            dtype=np.float32)[order]
        return {"object_id": self.object_id, "survey": self.survey, "source": "serve",
                "time": np.asarray(self.times, dtype=np.float64)[order],
                "band": np.asarray(self.bands, dtype=object)[order],
                "mag": values if self.mags is not None else None,
                "flux": values if self.fluxes is not None else None,
                "err": np.asarray(self.errs, dtype=np.float32)[order], "n_dropped": 0}


class Spectrum(BaseModel):
    """One spectrum: vacuum wavelength (Angstrom, increasing), flux, inverse variance, mask."""

    model_config = _STRICT

    object_id: ObjectId
    wavelength: list[Finite] = Field(min_length=2, max_length=MAX_POINTS,
                                     description="vacuum wavelength in Angstrom, increasing")
    flux: list[Finite] = Field(max_length=MAX_POINTS)
    ivar: list[NonNegative] = Field(max_length=MAX_POINTS)
    mask: list[int] | None = Field(None, max_length=MAX_POINTS, description="0 = good pixel")
    survey: str = Field("api", min_length=1, max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> Spectrum:
        _equal_lengths(self, ("wavelength", "flux", "ivar", "mask"))
        bad = np.flatnonzero(np.diff(np.asarray(self.wavelength)) <= 0)
        if bad.size:
            raise ValueError(f"wavelength must increase: wavelength[{bad[0] + 1}] = "
                             f"{self.wavelength[bad[0] + 1]} follows {self.wavelength[bad[0]]}")
        return self

    def record(self) -> dict:
        """The canonical spectrum record."""
        n = len(self.wavelength)
        mask = np.zeros(n, np.int32) if self.mask is None else np.asarray(self.mask, np.int32)
        return {"object_id": self.object_id, "survey": self.survey, "source": "serve",
                "wavelength": np.asarray(self.wavelength, dtype=np.float32),
                "flux": np.asarray(self.flux, dtype=np.float32),
                "ivar": np.asarray(self.ivar, dtype=np.float32), "mask": mask,
                "n_bad": int((mask != 0).sum())}


class _Batch(BaseModel):
    """A batch of objects (in the subclass's ``objects``) and an optional model name."""

    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())

    model: str | None = Field(None, description="model name (GET /v1/models); default: the "
                                                "route's first model")

    @model_validator(mode="after")
    def _unique(self) -> _Batch:
        seen: set[str] = set()
        for i, obj in enumerate(self.objects):
            if obj.object_id in seen:
                raise ValueError(f"objects[{i}].object_id {obj.object_id!r} is repeated: "
                                 "object ids must be unique within a request")
            seen.add(obj.object_id)
        return self


class LightCurveRequest(_Batch):
    """A batch of light curves, and optionally the model (by name) to answer with."""

    objects: list[LightCurve] = Field(min_length=1, max_length=MAX_OBJECTS)


class SpectrumRequest(_Batch):
    """A batch of spectra, and optionally the model (by name) to answer with."""

    objects: list[Spectrum] = Field(min_length=1, max_length=MAX_OBJECTS)


class ObjectResult(BaseModel):
    """The model's answer for one object."""

    object_id: str
    probabilities: dict[str, float] | None = Field(None, description="class -> probability")
    predicted_class: str | None = None
    predicted_prob: float | None = None
    redshift: float | None = None
    anomaly_score: float | None = Field(None, description="distance to the nearest inlier "
                                        "centre over the median training score (~1: inlier)")
    nearest_class: str | None = Field(None, description="inlier class of the nearest centre")
    in_domain: bool | None = Field(None, description="inside what the model was trained on "
                                   "(its model card: survey, bands, cadence, confidence); "
                                   "null for models without a card")
    ood_reason: str | None = Field(None, description="why the object is out of domain")
    scores: dict[str, float] = Field(default_factory=dict,
                                     description="further numeric outputs (e.g. uncertainty)")


class ObjectError(BaseModel):
    """An object the model could not score, and why."""

    object_id: str
    error: str


class PredictResponse(BaseModel):
    """Answers for the objects of a request: results, and errors for the rest."""

    model_config = ConfigDict(protected_namespaces=())

    model: str
    model_hash: str
    results: list[ObjectResult]
    errors: list[ObjectError]


class ModelInfo(BaseModel):
    """One served model."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    route: str
    kind: str
    model_type: str
    task: str
    model_hash: str
    labels: list[str] | None
    bands: list[str] | None


class ModelsResponse(BaseModel):
    """Every served model, per route in config order."""

    models: list[ModelInfo]
