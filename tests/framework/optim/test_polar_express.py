"""Polar Express coefficients: the Remez solution against a linear program, the exact composition range against
dense sampling, and the matrix iteration's singular values inside the guaranteed band."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from framework.optim.orthogonalize import newton_schulz
from framework.optim.polar_express import (
    composition_range,
    evaluate,
    minimax_odd_quintic,
    polar_express_coefficients,
    steps_to_tolerance,
)


def minimax_by_linear_program(lower: float, upper: float, points: int = 4001) -> float:
    """min_{a,b,c} max_j |1 - p(x_j)| on a Chebyshev grid of [lower, upper], as an LP in (a, b, c, t)."""
    x = lower + (upper - lower) * (1 - np.cos(np.linspace(0, np.pi, points))) / 2
    basis = np.stack([x, x**3, x**5], axis=1)
    ones = np.ones((points, 1))
    a_ub = np.vstack([np.hstack([basis, -ones]), np.hstack([-basis, -ones])])  # p - 1 <= t and 1 - p <= t
    b_ub = np.concatenate([np.ones(points), -np.ones(points)])
    result = linprog([0, 0, 0, 1], A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * 4, method="highs")
    assert result.success
    return float(result.x[3])


@pytest.mark.parametrize(("lower", "upper"), [(1e-3, 1.0), (0.05, 1.0), (0.45, 1.55), (0.9, 1.1)])
def test_remez_error_equals_the_linear_programs_minimax_and_equioscillates(lower, upper):
    coefficients, error = minimax_odd_quintic(lower, upper)
    assert error == pytest.approx(minimax_by_linear_program(lower, upper), rel=1e-4)
    x = np.linspace(lower, upper, 200_001)
    deviation = 1 - evaluate(coefficients, x)
    assert np.abs(deviation).max() == pytest.approx(error, rel=1e-8)  # the exchange's E is the true maximum
    assert deviation[0] == pytest.approx(error, rel=1e-8)  # p(lower) = 1 - E (the left end is the lowest point)


@pytest.mark.parametrize("safety", [1.0, 1.01])
def test_composition_range_is_the_exact_image_of_the_interval(safety):
    coefficients = polar_express_coefficients(5, 1e-3, safety)
    lo, hi = composition_range(coefficients, 1e-3)
    x = np.concatenate([np.geomspace(1e-3, 1, 200_000), np.linspace(1e-3, 1, 200_000)])
    for step in coefficients:
        x = evaluate(step, x)
    assert lo <= x.min() <= lo + 1e-6 and hi - 1e-6 <= x.max() <= hi


def test_greedy_errors_shrink_to_zero_where_jordan_stalls():
    band = [composition_range(polar_express_coefficients(k, 1e-3, 1.0), 1e-3) for k in (5, 6, 7)]
    errors = [max(1 - lo, hi - 1) for lo, hi in band]
    assert errors[0] < 0.12 and errors[1] < 1e-3 and errors[2] < 1e-8
    jordan = composition_range([(3.4445, -4.7750, 2.0315)] * 7, 1e-2)  # never within 0.3 of 1, however many steps
    assert max(1 - jordan[0], jordan[1] - 1) > 0.3
    coefficients = steps_to_tolerance(0.01, 1e-10)
    assert max(abs(v - 1) for v in composition_range(coefficients, 0.01)) <= 1e-10
    assert max(abs(v - 1) for v in composition_range(coefficients[:-1], 0.01)) > 1e-10  # the shortest such list


def test_matrix_iteration_maps_every_singular_value_into_the_guaranteed_band():
    """float64: u_i^T NS(G) v_i = p_5 o ... o p_1(s_i / ||G||_F) for every direction with s_i >= 1e-3 ||G||_F."""
    gen = torch.Generator().manual_seed(3)
    u, _ = torch.linalg.qr(torch.randn(40, 40, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(90, 40, generator=gen, dtype=torch.float64))
    s = torch.cat([torch.tensor([1.0, 0.5]), torch.logspace(-1, -3.2, 38)]).double()  # heavy-tailed spectrum
    g = u @ torch.diag(s) @ v.T
    coefficients = polar_express_coefficients(5)
    mapped = torch.diagonal(u.T @ newton_schulz(g, coefficients=coefficients) @ v)
    resolved = s / s.norm() >= 1e-3
    lo, hi = composition_range(coefficients, 1e-3)
    assert resolved.sum() >= 30
    assert lo - 1e-9 <= mapped[resolved].min() and mapped[resolved].max() <= hi + 1e-9
    assert hi - lo < 0.3  # and the band is narrow: Jordan's 5 steps give [0.68, 1.13] only above 1e-2
