"""Orthogonalization maps: attractor band, invariances, batching, the Gram-space iteration against the standard
one, FLOP counts against torch's counter, regularized map (iterative and eigh) vs SVD and finite differences."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from framework.optim.orthogonalize import (
    NS_ATTRACTOR_BAND,
    gram_newton_schulz,
    gram_newton_schulz_flops,
    kinetic_energy,
    newton_schulz,
    newton_schulz_flops,
    polar_svd,
    regularized_polar,
)
from framework.optim.polar_express import polar_express_coefficients

GEN = torch.Generator().manual_seed(0)


def rand(*shape: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=GEN, dtype=dtype)


def orthogonal(n: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(rand(n, n))
    return q


@pytest.mark.parametrize("shape", [(512, 128), (128, 512), (64, 64), (300, 17)])
def test_newton_schulz_singular_values_in_the_attractor_band(shape):
    """Each singular direction with s / ||G||_F >= 0.01 is mapped into the band [0.682, 1.134] by 5 steps (square
    Gaussian matrices also have smaller s, which 5 steps do not lift: those are excluded, as documented)."""
    g = rand(*shape)
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    mapped = torch.diagonal(u.T @ newton_schulz(g) @ vh.T)
    resolved = s / g.norm() >= 0.01
    assert resolved.sum() >= 0.9 * len(s)
    lo, hi = NS_ATTRACTOR_BAND
    assert mapped[resolved].min() >= lo - 1e-3 and mapped[resolved].max() <= hi + 1e-3


def test_newton_schulz_is_diagonal_in_the_singular_basis_of_g():
    g = rand(96, 40)
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    core = u.T @ newton_schulz(g) @ vh.T
    off = core - torch.diag(torch.diagonal(core))
    assert off.norm() / core.norm() < 1e-6


def test_newton_schulz_is_close_to_but_not_the_polar_factor():
    """Jordan's coefficients trade exactness for speed: ~0.2 relative error from U V^T (measured here)."""
    g = rand(512, 128)
    rel = (newton_schulz(g) - polar_svd(g)).norm() / polar_svd(g).norm()
    assert 0.1 < rel < 0.3


def test_newton_schulz_invariances():
    g = rand(40, 24)
    torch.testing.assert_close(newton_schulz(3.7 * g), newton_schulz(g), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(newton_schulz(g.T), newton_schulz(g).T, rtol=1e-10, atol=1e-10)
    q, r = orthogonal(40), orthogonal(24)
    torch.testing.assert_close(newton_schulz(q @ g @ r), q @ newton_schulz(g) @ r, rtol=1e-9, atol=1e-9)


def test_batched_equals_looped():
    stack = rand(5, 3, 20, 12)
    batched = newton_schulz(stack)
    looped = torch.stack([torch.stack([newton_schulz(m) for m in row]) for row in stack])
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(regularized_polar(stack, 0.3)[2, 1], regularized_polar(stack[2, 1], 0.3))


def test_newton_schulz_matches_torch_muon_reference_kernel():
    from torch.optim._muon import _zeropower_via_newtonschulz

    g = rand(48, 80, dtype=torch.float32)
    ours = newton_schulz(g, dtype=torch.bfloat16)
    theirs = _zeropower_via_newtonschulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7).float()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-2)  # bf16 compute: ~1 ulp differences


def test_per_step_coefficients():
    g = rand(30, 20)
    repeated = newton_schulz(g, steps=3, coefficients=(3.4445, -4.7750, 2.0315))
    listed = newton_schulz(g, coefficients=[(3.4445, -4.7750, 2.0315)] * 3)
    torch.testing.assert_close(repeated, listed)


@pytest.mark.parametrize("shape", [(30, 12), (12, 30), (16, 16)])
@pytest.mark.parametrize(("method", "tol"), [("eigh", 1e-12), ("iterative", 1e-9)])
@pytest.mark.parametrize("eps", [1e-4, 0.4, 30.0])
def test_regularized_map_equals_the_svd_form(shape, method, tol, eps):
    p = rand(*shape)
    u, s, vh = torch.linalg.svd(p, full_matrices=False)
    expected = u @ torch.diag(s / (s**2 + eps**2).sqrt()) @ vh
    torch.testing.assert_close(regularized_polar(p, eps, method=method), expected, rtol=tol, atol=tol)


def test_iterative_regularized_map_with_one_eps_per_matrix_and_a_heavy_tailed_spectrum():
    """Each singular value s / sqrt(s^2 + eps^2) to relative 1e-9, with eps from 1e-3 to 10 x the RMS singular
    value (the range relative reg_eps spans) on spectra spanning six decades, in float64; float32 to 1e-3."""
    u, _ = torch.linalg.qr(rand(24, 24))
    v, _ = torch.linalg.qr(rand(70, 24))
    s = torch.logspace(0, -6, 24, dtype=torch.float64)
    scales = torch.tensor([1.0, 1e-3, 50.0], dtype=torch.float64)
    p = torch.stack([u @ torch.diag(s * scale) @ v.T for scale in scales])
    rms = p.norm(dim=(-2, -1)) / 24**0.5
    eps = rms * torch.tensor([1e-3, 0.1, 10.0], dtype=torch.float64)
    mapped = torch.diagonal(u.T @ regularized_polar(p, eps) @ v, dim1=-2, dim2=-1)
    scaled = s * scales[:, None]
    torch.testing.assert_close(mapped, scaled / (scaled**2 + eps[:, None] ** 2).sqrt(), rtol=1e-9, atol=0)
    # float32 (Muon's compute dtype): within the documented ~1e-7 / l^2 of the exact map for eps >= 0.1 x RMS
    single = regularized_polar(p[1:].float(), eps[1:].float(), dtype=torch.float32).double()
    exact = regularized_polar(p[1:], eps[1:], method="eigh")
    assert ((single - exact).norm(dim=(-2, -1)) / exact.norm(dim=(-2, -1))).max() < 1e-3


@pytest.mark.parametrize("shape", [(20, 50), (50, 20), (3, 17, 40)])
@pytest.mark.parametrize("restarts", [(), (2,), (1, 3)])
@pytest.mark.parametrize("coefficients", ["jordan", "polar_express"])
def test_gram_iteration_equals_the_standard_iteration_in_float64(shape, restarts, coefficients):
    g = rand(*shape)
    steps = [(3.4445, -4.7750, 2.0315)] * 5 if coefficients == "jordan" else polar_express_coefficients(5)
    ours = gram_newton_schulz(g, coefficients=steps, restarts=restarts)
    torch.testing.assert_close(ours, newton_schulz(g, coefficients=steps), rtol=1e-10, atol=1e-10)


def test_gram_restart_keeps_bfloat16_stable_where_the_plain_gram_recursion_explodes():
    """A heavy-tailed 64 x 256 spectrum: without a restart, bfloat16 rounding leaves negative eigenvalues in R that
    R <- P R P amplifies by ~a_k^2 per step; rebuilding R from X before step 2 keeps it within the standard
    iteration's accuracy (negative control: the same call without restarts)."""
    u, _ = torch.linalg.qr(rand(64, 64))
    v, _ = torch.linalg.qr(rand(256, 64))
    s = torch.logspace(0, -8, 64, dtype=torch.float64)
    g = (u @ torch.diag(s) @ v.T).float()
    coefficients = polar_express_coefficients(5)

    def sv_error(o: torch.Tensor) -> float:
        mapped = torch.diagonal(u.T @ o.double() @ v)
        return (mapped[s / s.norm() >= 1e-3] - 1).abs().max().item()

    standard = sv_error(newton_schulz(g, coefficients=coefficients, dtype=torch.bfloat16))
    restarted = sv_error(gram_newton_schulz(g, coefficients=coefficients, dtype=torch.bfloat16))
    plain = sv_error(gram_newton_schulz(g, coefficients=coefficients, dtype=torch.bfloat16, restarts=()))
    assert standard < 0.3 and restarted < 0.3
    assert plain > 1.0


@pytest.mark.parametrize(("m", "n"), [(48, 144), (144, 48), (64, 64)])
@pytest.mark.parametrize("restarts", [(), (2,)])
def test_flop_counts_match_torchs_flop_counter(m, n, restarts):
    g = rand(m, n, dtype=torch.float32)
    with FlopCounterMode(display=False) as counter:
        newton_schulz(g, steps=5)
    assert counter.get_total_flops() == newton_schulz_flops(m, n, 5)
    with FlopCounterMode(display=False) as counter:
        gram_newton_schulz(g, steps=5, restarts=restarts)
    assert counter.get_total_flops() == gram_newton_schulz_flops(m, n, 5, restarts)


def test_regularized_map_is_the_gradient_of_the_kinetic_energy():
    """Finite differences of K_eps (eigvalsh) against the iterative map."""
    p, eps, h = rand(9, 6), 0.3, 1e-6
    fd = torch.zeros_like(p)
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            e = torch.zeros_like(p)
            e[i, j] = h
            fd[i, j] = (kinetic_energy(p + e, eps) - kinetic_energy(p - e, eps)) / (2 * h)
    torch.testing.assert_close(regularized_polar(p, eps), fd, rtol=1e-7, atol=1e-8)


def test_regularized_map_limits_and_scale_dependence():
    p = rand(20, 8)
    torch.testing.assert_close(regularized_polar(p, 1e-7), polar_svd(p), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(1e6 * regularized_polar(p, 1e6), p, rtol=1e-5, atol=1e-5)
    assert (regularized_polar(10 * p, 0.5) - regularized_polar(p, 0.5)).norm() > 1e-2  # NOT scale-invariant
    assert kinetic_energy(torch.zeros(4, 3), 0.2) == 0
    with pytest.raises(ValueError, match="eps > 0"):
        regularized_polar(p, 0.0)


def test_cpu_loop_path_for_wide_matrices_equals_the_batched_formula():
    from framework.optim.orthogonalize import LOOP_ABOVE_ON_CPU

    g = rand(2, LOOP_ABOVE_ON_CPU + 40, LOOP_ABOVE_ON_CPU + 4)  # tall and wide enough for the 2-D loop
    x = g.mT / g.norm(dim=(-2, -1), keepdim=True)
    for _ in range(5):
        gram = torch.bmm(x, x.mT)
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=-4.7750, alpha=2.0315), x, beta=3.4445)
    torch.testing.assert_close(newton_schulz(g), x.mT, rtol=1e-10, atol=1e-10)
