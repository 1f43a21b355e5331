"""Survey data: canonical schemas, readers, Ray Data ingest, synthetic surveys."""

from astroray.data.datasource import (
    read_errors,
    read_light_curves,
    read_spectra,
    read_stamps,
    read_survey,
)
from astroray.data.ingest import IngestError, IngestSummary, ingest
from astroray.data.registry import list_formats, plan_read, read_files, sniff_file
from astroray.data.schema import (
    ERROR_SCHEMA,
    LIGHT_CURVE_SCHEMA,
    SPECTRUM_SCHEMA,
    STAMP_SCHEMA,
    SchemaError,
    validate_table,
)

__all__ = [
    "ERROR_SCHEMA",
    "LIGHT_CURVE_SCHEMA",
    "SPECTRUM_SCHEMA",
    "STAMP_SCHEMA",
    "IngestError",
    "IngestSummary",
    "SchemaError",
    "ingest",
    "list_formats",
    "plan_read",
    "read_errors",
    "read_files",
    "read_light_curves",
    "read_spectra",
    "read_stamps",
    "read_survey",
    "sniff_file",
    "validate_table",
]
