"""Model families, built by name through a registry; saved as config.json + model.safetensors."""

from astroray.models.registry import (
    check_model_folder,
    create_model,
    get_config,
    list_models,
    list_published,
    load_model,
    register_model,
    resolve_model_path,
    tiny_overrides,
)

__all__ = ["check_model_folder", "create_model", "get_config", "list_models", "list_published",
           "load_model", "register_model", "resolve_model_path", "tiny_overrides"]
