"""The decoupled-descent building blocks against torch.func Hessians, torch.optim.SGD and exact algebra (float64)."""

from __future__ import annotations

import pytest
import torch

from framework.optim.decoupled_descent import (
    OnsagerMemory,
    corrected_preactivations,
    onsager_matrix,
    per_sample_derivatives,
    sgd_coefficients,
    sgd_filter_step,
)

GEN = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.randn(*shape, generator=GEN, dtype=torch.float64)


def per_sample_loss(p_row: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A smooth, non-quadratic, coupled loss of one row P_i (K = 3)."""
    return torch.nn.functional.softplus(-y * (torch.tanh(p_row) @ torch.tensor([1.0, -0.5, 2.0], dtype=p_row.dtype)))


def test_per_sample_derivatives_match_torch_func_hessians():
    p, y = rand(11, 3).requires_grad_(), torch.sign(rand(11))
    loss = torch.stack([per_sample_loss(p[i], y[i]) for i in range(11)]).sum()
    grad, hess = per_sample_derivatives(loss, p)
    for i in range(11):
        torch.testing.assert_close(
            grad[i], torch.func.grad(per_sample_loss)(p[i].detach(), y[i]), rtol=1e-12, atol=1e-14
        )
        expected = torch.func.hessian(per_sample_loss)(p[i].detach(), y[i])
        torch.testing.assert_close(hess[i], expected, rtol=1e-12, atol=1e-14)
    assert hess[:, 0, 1].abs().max() > 1e-3, "off-diagonal Hessian entries vanish: the check would be weak"
    loss.backward()  # the graph is retained for the weight gradient
    assert p.grad is not None


def test_onsager_matrix_is_delta_over_d_times_the_hessian_sum():
    hess = rand(40, 2, 2)
    torch.testing.assert_close(onsager_matrix(hess, 1.7, 25), 1.7 / 25 * hess.sum(0), rtol=0, atol=0)
    torch.testing.assert_close(onsager_matrix(hess[:, :1, :1], 2.0, 20), 2.0 * 40 / 20 * hess[:, :1, :1].mean(0))


@pytest.mark.parametrize(
    ("momentum", "dampening", "weight_decay"), [(0.0, 0.0, 0.0), (0.0, 0.0, 0.3), (0.7, 0.7, 0.1), (0.5, 0.2, 0.0)]
)
def test_sgd_filter_step_replays_torch_sgd_exactly(momentum, dampening, weight_decay):
    """On a quadratic with gradient D + W S, the filter with self-coupling S + lam I is SGD's update."""
    drive, s = rand(6, 2), rand(2, 2)
    s = s @ s.T
    w = torch.nn.Parameter(rand(6, 2))
    opt = torch.optim.SGD([w], lr=0.3, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
    state, velocity = w.detach().clone(), None
    for _ in range(5):
        opt.zero_grad()
        ((drive * w).sum() + 0.5 * (w @ s * w).sum()).backward()
        opt.step()
        state, velocity = sgd_filter_step(
            state, velocity, drive, s + weight_decay * torch.eye(2, dtype=torch.float64), 0.3, momentum, dampening
        )
    torch.testing.assert_close(state, w.detach(), rtol=1e-13, atol=1e-13)
    assert (state - rand(6, 2)).abs().max() > 0.1


def test_memory_is_exactly_zero_for_zero_step_size():
    memory = OnsagerMemory(width=2, noise_var=1.3)
    memory.allocate(5)
    index = torch.tensor([3, 0, 4, 1, 2])
    sgd = {"lr": 0.0, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.1}
    for _ in range(3):
        memory.step(index, rand(5, 2), rand(2, 2), sgd)
    assert torch.equal(memory.memory, torch.zeros(5, 2, dtype=torch.float64))
    raw = rand(5, 2)
    assert torch.equal(memory.correct(raw, index), raw)


def test_memory_step_orders_rows_by_index_and_follows_the_closed_form():
    """mu = 0: M^{t+1} = M^t ((1 - eta lam) I - eta C)^T - eta G, rows keyed by sample index."""
    memory = OnsagerMemory(width=2, noise_var=0.5)
    memory.allocate(4)
    memory.memory = rand(4, 2)
    before, grad, onsager, index = memory.memory.clone(), rand(4, 2), rand(2, 2), torch.tensor([2, 0, 3, 1])
    memory.step(index, grad, onsager, {"lr": 0.2, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.05})
    by_sample = torch.empty_like(grad)
    by_sample[index] = grad
    expected = before @ ((1 - 0.2 * 0.05) * torch.eye(2, dtype=torch.float64) - 0.2 * onsager).T - 0.2 * by_sample
    torch.testing.assert_close(memory.memory, expected, rtol=1e-14, atol=1e-14)
    raw = rand(4, 2)
    torch.testing.assert_close(memory.correct(raw, index), corrected_preactivations(raw, expected[index], 0.5))


def test_memory_refuses_a_partial_batch():
    memory = OnsagerMemory()
    memory.allocate(6)
    sgd = {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0}
    with pytest.raises(ValueError, match="full-batch"):
        memory.step(torch.arange(4), rand(4, 1), rand(1, 1), sgd)
    with pytest.raises(ValueError, match="full-batch"):
        memory.step(torch.tensor([0, 1, 2, 3, 4, 4]), rand(6, 1), rand(1, 1), sgd)


def test_state_dict_loads_into_an_unallocated_memory():
    memory = OnsagerMemory(width=3)
    memory.allocate(7)
    memory.step(
        torch.arange(7), rand(7, 3), rand(3, 3), {"lr": 0.1, "momentum": 0.5, "dampening": 0.0, "weight_decay": 0.0}
    )
    fresh = OnsagerMemory(width=3)
    fresh.load_state_dict(memory.state_dict())
    for key, value in memory.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_sgd_coefficients_read_sgd_and_refuse_other_optimizers():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([w], lr=0.4, momentum=0.5, dampening=0.5, weight_decay=0.01)
    assert sgd_coefficients(opt) == {"lr": 0.4, "momentum": 0.5, "dampening": 0.5, "weight_decay": 0.01}
    with pytest.raises(ValueError, match="torch.optim.SGD"):
        sgd_coefficients(torch.optim.Adam([w]))
    with pytest.raises(ValueError, match="nesterov"):
        sgd_coefficients(torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True))
