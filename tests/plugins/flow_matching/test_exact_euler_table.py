"""The closed-form Euler table of the results page: checked against facts derived independently of it."""

from __future__ import annotations

import numpy as np
import pytest

from framework_plugins.flow_matching.analysis import STEPS, exact_euler_curves, exact_euler_tables
from framework_plugins.flow_matching.analytic import loglog_slope
from framework_plugins.flow_matching.targets import analytic_target


def test_loglog_slope_recovers_a_power_law():
    n = [8, 16, 32, 64]
    assert loglog_slope(n, [3.0 * k**-1.0 for k in n]) == pytest.approx(-1.0)
    assert loglog_slope(n, [0.5 * k**-2.0 for k in n]) == pytest.approx(-2.0)


def test_one_euler_step_lands_on_the_mean_so_w2_is_the_root_trace():
    """x_1 = x_0 + u_0(x_0) = E[x_1] for the linear path from N(0, I): W2(delta_mean, N(0, S)) = sqrt(tr S)."""
    curves = exact_euler_curves()
    for d in (1, 16, 256):
        assert curves[f"N(0, I), d={d}"][1][STEPS.index(1)] == pytest.approx(np.sqrt(d), rel=1e-9)
    eig = analytic_target("anisotropic_gaussian", dim=16, seed=0).eigvals[0].numpy()
    assert curves["anisotropic Gaussian, d=16"][1][0] == pytest.approx(np.sqrt(eig.sum()), rel=1e-6)


def test_euler_w2_is_first_order_with_a_dimension_free_constant(tmp_path):
    curves = exact_euler_curves()
    tail = [i for i, n in enumerate(STEPS) if n >= 16]
    for name, (d, w2) in curves.items():
        assert loglog_slope([STEPS[i] for i in tail], [w2[i] for i in tail]) == pytest.approx(-1.0, abs=0.05), name
    scaled = [np.array(curves[f"N(0, I), d={d}"][1]) / np.sqrt(d) for d in (1, 16, 256)]
    np.testing.assert_allclose(scaled[0], scaled[1], rtol=1e-9)
    np.testing.assert_allclose(scaled[0], scaled[2], rtol=1e-9)
    text = exact_euler_tables(tmp_path, {}, {}, "fig/")
    assert text.count("\n| ") == len(curves) + 1 and "](fig/exact_euler_w2.png)" in text
    assert (tmp_path / "exact_euler_w2.png").stat().st_size > 0
