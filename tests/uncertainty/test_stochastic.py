"""Monte Carlo passes of a classifier pooled per object (the uncertainty stage's sampling).

The stochastic layers themselves are tested in ``tests/models/test_stochastic_layers.py``.
"""

from __future__ import annotations

import torch

from astroray.models import get_config
from astroray.models.astromer import AstromerClassifier, AstromerClassifierConfig
from astroray.uncertainty.sampling import object_logits, sample_object_probs


def test_object_passes_pool_windows_per_object():
    torch.manual_seed(0)
    model = AstromerClassifier(AstromerClassifierConfig(
        encoder=get_config("astromer-tiny", dropout=0.3), labels=("a", "b", "c"),
        hidden=(16,), dropout=0.3)).eval()
    W, T = 6, 25
    windows = {"times": torch.cumsum(torch.rand(W, T), 1), "values": torch.randn(W, T),
               "mask": torch.ones(W, T, dtype=torch.bool)}
    windows["mask"][4, 10:] = False
    win_obj = torch.tensor([0, 2, 0, 1, 2, 2])  # objects with 2, 1 and 3 windows
    with torch.no_grad():
        got = object_logits(model, windows, win_obj, 3)
        means = model.encoder.embed(windows["times"], windows["values"], windows["mask"])
        expected = torch.stack([means[win_obj == o].mean(0) for o in range(3)])
        torch.testing.assert_close(got, model(expected))
    det = sample_object_probs(model, windows, win_obj, 3, 5, dropout=False, hsa=False)
    assert det.shape == (1, 3, 3)  # nothing to sample: one deterministic pass
    torch.testing.assert_close(det[0], torch.softmax(got, -1))
    for max_windows in (6, 12, 1000):  # one pass per call, two, all at once
        mc = sample_object_probs(model, windows, win_obj, 3, 5, dropout=True, hsa=False,
                                 max_windows=max_windows)
        assert mc.shape == (5, 3, 3) and mc.std(0).mean() > 1e-4
    assert not any(m.training for m in model.modules())  # modes restored
