"""The regularity studies: the Lipschitz bound against finite differences, Euler W2 against exact OT (POT), the
shared-covariance velocity against the generic one, and the claims (a)-(c) on small grids."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from framework_plugins.flow_matching.analytic import GaussianMixture, euler_w2_mixture_1d
from framework_plugins.flow_matching.regularity import (
    coupling_errors,
    cross_polytope_mixture,
    gronwall_log10,
    lipschitz_bound,
    lipschitz_sup,
)
from framework_plugins.flow_matching.regularity_report import (
    CLOSED_FORMS,
    SMOKE,
    closed_form_studies,
    regularity_sections,
    separation_sweep,
    two_mode,
)
from framework_plugins.flow_matching.samplers import euler_sample, heun_sample

GEN = torch.Generator().manual_seed(0)


def fd_jacobian(law: GaussianMixture, x: torch.Tensor, t: float, h: float = 1e-6) -> torch.Tensor:
    """Central finite differences of u_t at one point x: (d,) -> (d, d)."""
    eye = torch.eye(len(x), dtype=x.dtype)
    cols = [(law.velocity((x + h * e)[None], t) - law.velocity((x - h * e)[None], t))[0] / (2 * h) for e in eye]
    return torch.stack(cols, dim=1)


def test_shared_covariance_velocity_equals_the_generic_path():
    law = cross_polytope_mixture(5, separation=4.0, eig_range=(0.25, 1.0), seed=3)
    generic = GaussianMixture(law.weights, law.means, law.covs)
    generic.shared = False
    x = torch.randn(40, 5, generator=GEN, dtype=torch.float64)
    t = torch.rand(40, generator=GEN, dtype=torch.float64)
    assert law.shared
    torch.testing.assert_close(law.velocity(x, t), generic.velocity(x, t), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(law.velocity(x, 0.7), generic.velocity(x, 0.7), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t", [0.1, 0.4, 0.7, 0.9])
def test_lipschitz_bound_holds_against_finite_differences_and_is_attained_at_the_midpoint(t):
    separation = 4.0
    law = two_mode(separation, dim=2)
    lo, hi = lipschitz_bound(np.array([t]), [0.25, 0.25], separation)
    points = torch.cat([torch.zeros(1, 2, dtype=torch.float64), 3 * torch.randn(30, 2, generator=GEN).double()])
    for x in points:
        eig = torch.linalg.eigvalsh(0.5 * (fd_jacobian(law, x, t) + fd_jacobian(law, x, t).T))
        assert eig.min() >= lo[0] - 1e-6 and eig.max() <= hi[0] + 1e-6
    midpoint = torch.linalg.eigvalsh(fd_jacobian(law, torch.zeros(2, dtype=torch.float64), t)).max()
    assert midpoint.item() == pytest.approx(hi[0], rel=1e-6)
    # the check can fail: with half the true diameter the midpoint's finite-difference slope exceeds the "bound"
    assert midpoint.item() > lipschitz_bound(np.array([t]), [0.25, 0.25], separation / 2)[1][0] + 1e-3


def test_lipschitz_bound_holds_on_a_non_product_mixture_and_autograd_matches_finite_differences():
    law = cross_polytope_mixture(4, separation=4.0, eig_range=(0.25, 1.0), seed=1)
    points = torch.randn(12, 4, generator=GEN, dtype=torch.float64)
    for t in (0.2, 0.6, 0.9):
        lo, hi = lipschitz_bound(np.array([t]), law.eigvals[0].numpy(), 4.0)
        jacobians = [fd_jacobian(law, x, t) for x in points]
        fd = max(torch.linalg.matrix_norm(j, ord=2).item() for j in jacobians)
        assert lipschitz_sup(law, [t], points)[0] == pytest.approx(fd, rel=1e-6)
        assert fd <= max(abs(lo[0]), abs(hi[0]))
        for j in jacobians:
            eig = torch.linalg.eigvalsh(0.5 * (j + j.T))
            assert eig.min() >= lo[0] - 1e-6 and eig.max() <= hi[0] + 1e-6


def test_exact_1d_euler_w2_agrees_with_exact_optimal_transport_on_samples():
    ot = pytest.importorskip("ot")
    mix = {"weights": [0.5, 0.5], "means": [-2.0, 2.0], "stds": [0.5, 0.5]}
    exact = euler_w2_mixture_1d(n_steps=4, **mix)
    law = two_mode(4.0)
    n = 20000
    x0 = torch.randn(n, 1, generator=GEN, dtype=torch.float64)
    euler = euler_sample(law.velocity, x0, 4)[:, 0].numpy()
    target = law.sample(n, GEN)[:, 0].numpy()
    sampled = np.sqrt(ot.wasserstein_1d(euler, target, p=2))
    assert sampled == pytest.approx(exact, rel=0.05)


def test_coupling_error_bounds_exact_ot_w2_and_is_close_to_it_in_2d():
    ot = pytest.importorskip("ot")
    law = cross_polytope_mixture(2, separation=4.0, eig_range=(0.25, 1.0), seed=0)
    x0 = torch.randn(400, 2, generator=GEN, dtype=torch.float64)
    (coupling,) = coupling_errors(law, x0, [4], 256)
    euler = euler_sample(law.velocity, x0, 4).numpy()
    exact = heun_sample(law.velocity, x0, 256).numpy()
    w2 = np.sqrt(ot.emd2(np.full(400, 1 / 400), np.full(400, 1 / 400), ot.dist(euler, exact)))
    assert w2 <= coupling + 1e-12
    assert w2 >= 0.8 * coupling


def test_euler_constant_grows_linearly_in_the_separation_while_gronwall_grows_like_its_square():
    nw2 = {r: 256 * euler_w2_mixture_1d([0.5, 0.5], [-r / 2, r / 2], [0.5, 0.5], 256, n_nodes=500) for r in (4, 8, 16)}
    assert (nw2[16] - nw2[8]) / (nw2[8] - nw2[4]) == pytest.approx(2.0, rel=0.1)
    assert gronwall_log10([0.25], 16.0) / gronwall_log10([0.25], 8.0) == pytest.approx(4.0, rel=0.1)


def test_rate_on_a_non_product_mixture_is_first_order():
    law = cross_polytope_mixture(6, separation=4.0, eig_range=(0.25, 1.0), seed=0)
    x0 = torch.randn(64, 6, generator=GEN, dtype=torch.float64)
    errors = coupling_errors(law, x0, [16, 32, 64], 128)
    slope = np.polyfit(np.log([16, 32, 64]), np.log(errors), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.05)


def test_report_sections_write_figures_and_tables(tmp_path):
    runs = {("R2", 0): {"status": "ok", "metrics": {"test/lipschitz_max": 3.0, "test/euler_error_slope": -1.0}}}
    text = regularity_sections(tmp_path, {"variants": ["R2"], "smoke": True}, runs, "fig/")
    for name in ("separation", "lipschitz_vs_t", "nonproduct_rate"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0 and f"(fig/{name}.png)" in text
    assert "| R2 (n=1) | 3 +- 0 |" in text
    assert text.count("| yes |") == len(SMOKE.lipschitz_separations) + 1
    with pytest.raises(ValueError, match="R<separation>"):
        regularity_sections(tmp_path, {"variants": ["wide"], "smoke": True}, {}, "")


def test_the_report_reads_the_stored_studies_and_recomputes_them_for_other_grids(tmp_path):
    """The first report stores the closed-form studies; a later one prints the same text from the file; a file
    written for other grids is recomputed, not read (an edited number there would otherwise be printed)."""
    exp = {"variants": [], "smoke": True}
    first = regularity_sections(tmp_path, exp, {}, "")
    stored = json.loads((tmp_path / CLOSED_FORMS).read_text())
    assert stored["sweep"] == separation_sweep(SMOKE)
    stored["sweep"][0]["nw2_16"] = 1e6  # a reader would print it
    (tmp_path / CLOSED_FORMS).write_text(json.dumps(stored))
    assert "| 1000000.000 |" in regularity_sections(tmp_path, exp, {}, "")
    stored["sizes"]["nodes"] += 1  # other grids: recomputed
    (tmp_path / CLOSED_FORMS).write_text(json.dumps(stored))
    sweep = closed_form_studies(tmp_path, SMOKE)[0]
    assert sweep == separation_sweep(SMOKE) and regularity_sections(tmp_path, exp, {}, "") == first
