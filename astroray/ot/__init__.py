"""Optimal-transport interpolation of spectral time series and synthetic photometry."""

from astroray.ot.ot import (
    METHODS,
    entropic_barycenter,
    interpolate_spectra,
    quantile_barycenter,
    to_distribution,
)
from astroray.ot.photometry import (
    AB_MINUS_VEGA,
    BANDS,
    SyntheticPhotometry,
    band_response,
    pixel_edges,
)
from astroray.ot.series import (
    TimeSeries,
    build_time_series,
    photometric_mismatch,
    warp_to_photometry,
)

__all__ = [
    "AB_MINUS_VEGA",
    "BANDS",
    "METHODS",
    "SyntheticPhotometry",
    "TimeSeries",
    "band_response",
    "build_time_series",
    "entropic_barycenter",
    "interpolate_spectra",
    "photometric_mismatch",
    "pixel_edges",
    "quantile_barycenter",
    "to_distribution",
    "warp_to_photometry",
]
