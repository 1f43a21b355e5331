"""Model families, built by name through a registry; saved as config.json + model.safetensors.

The registry (:mod:`astroray.models.registry`) knows no family; importing this package imports
every family, and each registers its models (timm's pattern).
"""

# Imported for their registrations.
from astroray.models import anomaly, astromer, morphology, stamps, vision  # noqa: F401
from astroray.models.registry import (
    check_model_folder,
    create_model,
    create_tiny_model,
    get_config,
    list_families,
    list_models,
    list_published,
    load_model,
    register_model,
    resolve_model_path,
    tiny_overrides,
)

__all__ = ["check_model_folder", "create_model", "create_tiny_model", "get_config",
           "list_families", "list_models", "list_published", "load_model", "register_model",
           "resolve_model_path", "tiny_overrides"]
