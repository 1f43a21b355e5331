"""Survey data: canonical schemas, readers, Ray Data ingest, synthetic surveys.

The names below are imported when first used (PEP 562): ``import astroray.data`` stays cheap,
and Ray is imported only by what needs it (the datasources, ingest), so that the CLI can
check its arguments before paying for it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "read_errors": "datasource", "read_light_curves": "datasource",
    "read_spectra": "datasource", "read_stamps": "datasource", "read_survey": "datasource",
    "IngestConfig": "ingest", "IngestError": "ingest", "IngestSummary": "ingest",
    "ingest": "ingest",
    "list_formats": "registry", "plan_read": "registry", "read_files": "registry",
    "sniff_file": "registry",
    "ERROR_SCHEMA": "schema", "LIGHT_CURVE_SCHEMA": "schema", "SPECTRUM_SCHEMA": "schema",
    "STAMP_SCHEMA": "schema", "SchemaError": "schema", "validate_table": "schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'astroray.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"astroray.data.{module}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value
