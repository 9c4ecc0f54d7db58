"""Kernels, companions and drifting fields against quadrature, finite differences and exact symmetries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from framework_plugins.drifting.field import batch_field, kernel_overlap, mean_shift_field, normalized_drift_loss
from framework_plugins.drifting.kernels import CONTRAST_KERNELS, KERNELS, companion, kernel

GEN = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.randn(*shape, generator=GEN, dtype=torch.float64)


@pytest.mark.parametrize("name", KERNELS + CONTRAST_KERNELS)
@pytest.mark.parametrize("ell", [0.5, 2.0])
def test_companion_is_the_tail_integral_of_s_k(name, ell):
    top = ell if name == "wendland" else np.inf  # the Wendland kernel vanishes beyond its support radius ell
    for r in (0.0, 0.3, 1.7, 4.0):
        expected, _ = quad(
            lambda s: s * kernel(torch.tensor(s, dtype=torch.float64), name, ell).item(), min(r, top), top, epsabs=1e-13
        )
        assert companion(torch.tensor(r, dtype=torch.float64), name, ell).item() == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("name", KERNELS + CONTRAST_KERNELS)
def test_companion_identity_by_finite_differences(name):
    """E_p[k(|x - y|)(y - x)] = grad_x (eta * p)(x) for an empirical p, in 3-D: it holds for every radial kernel
    (contrast kernels outside the class included), so it does not characterise the companion-elliptic class."""
    ys, x, ell, h = rand(40, 3), rand(3), 1.3, 1e-6

    def smoothed(z):
        return companion((z - ys).norm(dim=1), name, ell).mean()

    grad = torch.stack(
        [(smoothed(x + h * e) - smoothed(x - h * e)) / (2 * h) for e in torch.eye(3, dtype=torch.float64)]
    )
    lhs = (kernel((x - ys).norm(dim=1), name, ell)[:, None] * (ys - x)).mean(0)
    torch.testing.assert_close(lhs, grad, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", KERNELS)
def test_batch_field_is_exactly_antisymmetric_and_zero_on_equal_sets(name):
    x, a, b = rand(7, 2), rand(9, 2), rand(5, 2) + 1
    torch.testing.assert_close(batch_field(x, a, b, name, 0.7), -batch_field(x, b, a, name, 0.7), rtol=0, atol=1e-15)
    assert batch_field(x, a, a, name, 0.7).abs().max() < 1e-15  # zero up to the rounding of two matmuls
    assert mean_shift_field(x, a, a, name, 0.7).abs().max() == 0


def test_chunked_field_equals_one_block():
    x, pos = rand(50, 4), rand(60, 4) + 0.5
    full = batch_field(x, pos, x, "laplace", 0.8, neg_is_x=True)
    chunked = batch_field(x, pos, x, "laplace", 0.8, neg_is_x=True, chunk_size=16)
    torch.testing.assert_close(chunked, full, rtol=1e-12, atol=1e-12)


def test_field_norm_shrinks_like_one_over_sqrt_n_for_the_same_law():
    norms = []
    sizes = [64, 256, 1024, 4096]
    for n in sizes:
        vals = []
        for rep in range(4):
            g = torch.Generator().manual_seed(100 * n + rep)
            x, p, q = (torch.randn(n, 2, generator=g, dtype=torch.float64) for _ in range(3))
            vals.append(batch_field(x, p, q, "laplace", 1.0).pow(2).sum(1).mean().sqrt().item())
        norms.append(np.mean(vals))
    slope = np.polyfit(np.log(sizes), np.log(norms), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.1)


def test_field_points_from_generated_towards_data():
    x = rand(200, 2)
    v = batch_field(x, x[:100] + 3.0, x, "gaussian", 1.0, neg_is_x=True)
    assert (v.mean(0) > 0).all()
    assert (mean_shift_field(x, x[:100] + 3.0, x, "gaussian", 1.0).mean(0) > 1.0).all()


def test_normalized_loss_is_not_a_convergence_signal_but_raw_field_is():
    data = rand(256, 2)
    far, near = rand(256, 2) + 4, rand(256, 2)
    loss_far, raw_far = normalized_drift_loss(far.clone().requires_grad_(True), data, "laplace", (0.02, 0.05, 0.2))
    loss_near, raw_near = normalized_drift_loss(near.clone().requires_grad_(True), data, "laplace", (0.02, 0.05, 0.2))
    assert raw_near < 0.1 * raw_far
    assert loss_near.item() == pytest.approx(loss_far.item(), rel=0.5)  # both O(number of temperatures^2)


def test_overlap_ratio_tracks_retained_mass():
    p, q = rand(2000, 2), rand(2000, 2)
    base = kernel_overlap(p, p[torch.randperm(2000, generator=GEN)], "laplace", 1.0)
    assert kernel_overlap(q, p, "laplace", 1.0) / base == pytest.approx(1.0, abs=0.05)
    escaped = q.clone()
    escaped[:600] += 1e3  # 30% of the mass far away
    assert kernel_overlap(escaped, p, "laplace", 1.0) / base == pytest.approx(0.7, abs=0.05)
