"""The companion-elliptic class by its defining elliptic closure: exact for the plugin's kernels, failing for the
contrast kernels, and the identifiability failure of a compactly supported kernel."""

from __future__ import annotations

import math

import pytest
import torch

from framework_plugins.drifting.analysis import closure_grid, companion_class_section
from framework_plugins.drifting.closure import MATERN_NU, closure_fit, predicted_closure, two_cluster_field
from framework_plugins.drifting.kernels import CONTRAST_KERNELS, KERNELS, companion, kernel


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dim", [1, 2, 3, 8])
def test_class_kernels_satisfy_the_elliptic_closure_with_the_predicted_constants(name, dim):
    ell = 1.3
    alpha, beta, residual = closure_fit(name, ell, dim, closure_grid(name, ell))
    expected = predicted_closure(name, ell, dim)
    assert residual < 1e-10
    assert alpha == pytest.approx(expected[0], rel=1e-8) and beta == pytest.approx(expected[1], abs=1e-10)


@pytest.mark.parametrize("name", CONTRAST_KERNELS)
@pytest.mark.parametrize("dim", [1, 2, 3, 8])
def test_contrast_kernels_fail_the_closure(name, dim):
    assert predicted_closure(name, 1.0, dim) is None
    assert closure_fit(name, 1.0, dim, closure_grid(name))[2] > 1e-2


@pytest.mark.parametrize("name", sorted(MATERN_NU))
def test_matern_closure_by_finite_differences(name):
    """(a^2 - Delta_3) eta = (2 nu + 3) k with the radial Laplacian by central differences (no autograd)."""
    nu, ell, h = MATERN_NU[name], 0.8, 1e-4
    a2 = 2 * nu / ell**2
    r = torch.linspace(0.2, 3.0, 15, dtype=torch.float64)

    def eta(s: torch.Tensor) -> torch.Tensor:
        return companion(s, name, ell)

    d1 = (eta(r + h) - eta(r - h)) / (2 * h)
    d2 = (eta(r + h) - 2 * eta(r) + eta(r - h)) / h**2
    lhs = a2 * eta(r) - (d2 + 2 * d1 / r)
    torch.testing.assert_close(lhs, (2 * nu + 3) * kernel(r, name, ell), rtol=1e-6, atol=1e-8)


def test_compact_support_loses_identifiability_and_full_support_keeps_it():
    assert two_cluster_field("wendland", 1.0, 1.0) > 1e-2  # clusters within reach: V != 0
    for separation in (2.0, 4.0, 8.0):  # beyond the support: V = 0 although p != q
        assert two_cluster_field("wendland", 1.0, separation) < 1e-13
    for name in ("laplace", "matern32", "matern52"):
        assert two_cluster_field(name, 1.0, 4.0) > 1e-3
    assert two_cluster_field("gaussian", 1.0, 3.0) > 1e-3
    assert two_cluster_field("imq", 1.0, 12.0) > 1e-3  # outside the class, but its heavy tail still sees the mass
    assert math.isfinite(two_cluster_field("laplace", 1.0, 12.0))


def test_section_writes_the_tables_and_the_figure(tmp_path):
    text = companion_class_section(tmp_path, "fig/")
    assert (tmp_path / "companion_class.png").stat().st_size > 0 and "(fig/companion_class.png)" in text
    for name in (*KERNELS, *CONTRAST_KERNELS):
        assert text.count(f"| {name} |") == 2
    assert text.count("| no |") == len(CONTRAST_KERNELS)
