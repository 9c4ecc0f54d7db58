"""GRU-D deltas and decays equal the equations on a hand-computed case."""

from __future__ import annotations

import numpy as np
import torch

from framework_plugins.gap_transformer.grud import GRUDCell, grud_deltas


def test_deltas_hand_computed():
    times = torch.tensor([[0.0, 0.5, 1.5, 2.0]])
    mask = torch.tensor([[[1, 1], [0, 1], [0, 0], [1, 1]]], dtype=torch.float32)
    # feature 0: observed at 0 only until t=2.0 -> 0, 0.5, 1.5, 2.0; feature 1: observed at 0, 0.5 -> 0, 0.5, 1.0, 1.5
    expected = torch.tensor([[[0.0, 0.0], [0.5, 0.5], [1.5, 1.0], [2.0, 1.5]]])
    torch.testing.assert_close(grud_deltas(times, mask), expected)


def test_cell_decays_and_imputation_equal_the_equations():
    torch.manual_seed(0)
    cell = GRUDCell(2, 3).double()
    with torch.no_grad():
        cell.decay_x_weight.copy_(torch.tensor([0.7, -0.2]))
        cell.decay_x_bias.copy_(torch.tensor([0.1, 0.05]))
    x = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
    m = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    delta = torch.tensor([[1.5, 0.5]], dtype=torch.float64)
    x_last = torch.tensor([[2.0, 0.4]], dtype=torch.float64)
    h = torch.randn(1, 3, dtype=torch.float64)
    gx = np.exp(-np.maximum(0, np.array([0.7 * 1.5 + 0.1, -0.2 * 0.5 + 0.05])))
    wh, bh = cell.decay_h.weight.detach().numpy(), cell.decay_h.bias.detach().numpy()
    gh = np.exp(-np.maximum(0, wh @ delta.numpy()[0] + bh))
    gamma_x, gamma_h = cell.decays(delta)
    np.testing.assert_allclose(gamma_x.detach().numpy()[0], gx)
    np.testing.assert_allclose(gamma_h.detach().numpy()[0], gh)
    x_hat = np.array([gx[0] * 2.0 + (1 - gx[0]) * 0.0, -1.2])  # unobserved: decays toward the (zero) mean
    expected = cell.gru(torch.tensor([[*x_hat, 0.0, 1.0]]), torch.as_tensor(gh)[None] * h)
    torch.testing.assert_close(cell(x, m, delta, x_last, h), expected)
