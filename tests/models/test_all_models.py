"""Every registered model, tiny and randomly initialised: forward, backward, save/load.

One test over all of :func:`~astroray.models.list_models` (and the families that exist only as
saved models, :func:`~astroray.models.list_families`), fed by each family's ``dummy_inputs``
(timm's and transformers' tiny-config testers).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from astroray.models import (
    create_model,
    create_tiny_model,
    list_families,
    list_models,
    load_model,
    tiny_overrides,
)
from astroray.models.registry import register_model

#: Every registered name and family, and variants whose forward samples (HSA draws on every
#: call, in eval mode too).
CASES = [(name, {}) for name in list_models() + list_families()] + [
    ("astromer-tiny", {"attention": "hsa"}),
    ("astromer-tiny", {"attention": "hsa_keys_snap", "dropout": 0.1}),
]


def _tensors(out: object) -> list[torch.Tensor]:
    """The floating-point tensors of a model's output (a tensor, dataclass, dict or list)."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if dataclasses.is_dataclass(out):
        out = [getattr(out, f.name) for f in dataclasses.fields(out)]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, list | tuple):
        return [t for item in out for t in _tensors(item)]
    return []


def _run(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    torch.manual_seed(0)  # models that sample (HSA) draw the same noise in every run
    return _tensors(model(**inputs))


@pytest.mark.parametrize(("name", "overrides"), CASES,
                         ids=[n + "".join(f"-{v}" for v in o.values()) for n, o in CASES])
def test_every_model_forward_backward_and_round_trip(name, overrides, tmp_path):
    torch.manual_seed(0)
    model = (create_model(name, **tiny_overrides(name), **overrides) if overrides
             else create_tiny_model(name))
    inputs = type(model).dummy_inputs(model.config)
    model.train()
    outputs = _run(model, inputs)
    assert outputs and all(torch.isfinite(t).all() for t in outputs)
    loss = sum(t.float().mean() for t in outputs)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)

    model.eval()
    with torch.no_grad():
        before = _run(model, inputs)
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m").eval()
    assert type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        after = _run(loaded, inputs)
    assert len(after) == len(before)
    for a, b in zip(after, before, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_family_without_dummy_inputs_is_refused():
    class NoInputs(torch.nn.Module):
        model_type = "no-inputs"
        config_class = object
        from_pretrained = classmethod(lambda cls, path: cls())

    with pytest.raises(TypeError, match="dummy_inputs"):
        register_model("no-inputs", NoInputs, None)  # type: ignore[arg-type]
    assert "no-inputs" not in list_models()
