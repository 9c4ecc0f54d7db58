"""The decoupled-descent probe: on a Gaussian mixture with n/d = 2 the raw train error of the probe is far below its
held-out error while the Onsager-corrected one tracks it; the callback logs through a model's probe_features."""

from __future__ import annotations

import math

import pytest
import torch

from framework.callbacks import DecoupledProbe
from framework.callbacks.decoupled_probe import fit_decoupled_probe
from framework.testing.toy import ToyRegression


def _mixture(n: int, d: int, signal: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x_i = y_i mu + z_i with mu = sqrt(signal / d) (1, ..., 1), so ||mu||^2 = signal; y uniform in {-1, +1}; z
    standard normal (Delta = 1): the Gaussian mixture decoupled descent is exact for."""
    y = torch.randint(0, 2, (n,), generator=generator).double() * 2 - 1
    z = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return y[:, None] * math.sqrt(signal / d) + z, y


def test_the_corrected_train_error_tracks_held_out_error_where_the_raw_one_does_not():
    gen = torch.Generator().manual_seed(0)
    d = 200
    x_train, y_train = _mixture(400, d, 1.0, gen)  # Bayes error Phi(-1) = 0.16
    x_test, y_test = _mixture(20_000, d, 1.0, gen)
    history = fit_decoupled_probe(x_train, y_train, x_test, y_test, steps=150, lr=2.0)
    raw, corrected, test = (history[k][-1] for k in ("raw_error", "corrected_error", "test_error"))
    assert test - raw > 0.1  # the probe overfits: its raw train error says little about held-out error
    assert abs(corrected - test) < 0.35 * (test - raw), (raw, corrected, test)
    assert len(history["test_error"]) == 150 and history["test_error"][0] == 0.5  # W^0 = 0 scores every point 0


def test_the_probe_refuses_a_model_without_probe_features():
    with pytest.raises(ValueError, match=r"DecoupledProbe needs ToyRegression.probe_features\(split\)"):
        DecoupledProbe()._probe("val", ToyRegression())
    with pytest.raises(ValueError, match="steps=0"):
        fit_decoupled_probe(torch.zeros(4, 2), torch.ones(4), torch.zeros(4, 2), torch.ones(4), steps=0)
