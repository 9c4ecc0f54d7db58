"""The decoupled preactivation after one step is the leave-one-out preactivation up to O(1/sqrt(d)), and the
correction vanishes exactly when the step size is zero."""

from __future__ import annotations

import math

import pytest
import torch

from framework.optim.decoupled_descent import OnsagerMemory
from framework.optim.decoupled_step import full_batch_step
from framework.optim.readout import ReadoutNetwork
from framework_plugins.decoupled_descent.simulators import gaussian_mixture, signal_directions

LR, DELTA = 0.5, 1.0


def first_step(n: int, d: int, seed: int = 0, lr: float = LR, momentum: float = 0.0):
    """(P^1, A^1, explicit leave-one-out x_i . w^1_{-i} / sqrt(d), g^0, x) after one DD step from W^0 = 0."""
    v = signal_directions(d, 1, 1.0, seed)[0]
    x, y = gaussian_mixture(n, v, DELTA, seed + 1)
    net = ReadoutNetwork(d).double()
    opt = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=0.05, momentum=momentum)
    memory = OnsagerMemory(1, DELTA)
    memory.allocate(n)
    index = torch.arange(n)
    grad0 = -y * torch.sigmoid(torch.zeros(n, dtype=torch.float64))  # l'(0, y) = -y / 2
    full_batch_step(net, opt, x, y, index, memory)
    raw = net.preactivations(x).detach()[:, 0]
    corrected = memory.correct(net.preactivations(x), index).detach()[:, 0]
    loo = torch.empty(n, dtype=torch.float64)
    for i in range(n):  # w^1 without sample i: -lr sum_{j != i} x_j g_j / sqrt(d)
        keep = torch.arange(n) != i
        w_loo = -lr * (x[keep] * grad0[keep, None]).sum(0) / math.sqrt(d)
        loo[i] = x[i] @ w_loo / math.sqrt(d)
    return corrected, raw, loo, grad0, x


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_first_corrected_preactivation_is_leave_one_out(momentum):
    n, d = 60, 4000
    corrected, raw, loo, grad0, x = first_step(n, d, momentum=momentum)
    # exact algebra: P^1_i - LOO_i = lr g_i (Delta - ||x_i||^2 / d)
    torch.testing.assert_close(corrected - loo, LR * grad0 * (DELTA - x.pow(2).sum(1) / d), rtol=1e-9, atol=1e-12)
    assert (corrected - loo).abs().max() < 4 * LR * 0.5 * DELTA * math.sqrt(2 / d)  # ||x||^2/d - Delta ~ sqrt(2/d)
    assert (raw - loo).abs().min() > 0.5 * LR * 0.5 * DELTA, "the raw preactivation carries the O(1) self-term"


def test_leave_one_out_error_shrinks_like_one_over_sqrt_d():
    errors = {d: (first_step(60, d)[0] - first_step(60, d)[2]).pow(2).mean().sqrt().item() for d in (500, 8000)}
    ratio = errors[500] / errors[8000]
    assert 2.5 < ratio < 6.5, (errors, "expected about sqrt(16) = 4")


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_correction_is_exactly_zero_for_zero_step_size(momentum):
    v = signal_directions(300, 1, 1.0, 0)[0]
    x, y = gaussian_mixture(200, v, DELTA, 1)
    net = ReadoutNetwork(300, init_scale=1.0).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.0, weight_decay=0.05, momentum=momentum)
    memory = OnsagerMemory(1, DELTA)
    memory.allocate(200)
    index = torch.randperm(200)
    for _ in range(3):
        stats = full_batch_step(net, opt, x[index], y[index], index, memory)
        assert stats["corrected_error"] == stats["raw_error"] and stats["loss"] == stats["raw_loss"]
    assert torch.equal(memory.memory, torch.zeros(200, 1, dtype=torch.float64))
    raw = net.preactivations(x)
    assert torch.equal(memory.correct(raw, torch.arange(200)), raw)
