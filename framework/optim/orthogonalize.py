"""Orthogonalization maps for Muon-type updates, batched over stacks of same-shaped matrices ``(..., m, n)``.

- :func:`newton_schulz`: the quintic Newton-Schulz iteration of Muon (Jordan et al. 2024); approximately U V^T.
- :func:`gram_newton_schulz`: the same polynomial iteration run on the small Gram matrix X X^T (Dao lab's Gram
  Newton-Schulz, 2026), restarted from X to stay stable in bfloat16; fewer FLOPs for rectangular matrices.
- :func:`polar_svd`: the exact polar factor U V^T of G = U S V^T (reference).
- :func:`regularized_polar`: grad K_eps(P) = P (P^T P + eps^2 I)^(-1/2) = U diag(s / sqrt(s^2 + eps^2)) V^T, the
  mirror map of regularized Muon ("Move on Muon", Mustafi, Mukherjee & Sriperumbudur 2026; smoothed nuclear norm,
  derivation in ``docs/muon.md``): iteratively (the Gram iteration on P P^T + eps^2 I with Polar Express steps,
  to a guaranteed relative accuracy) or exactly by ``eigh`` of the smaller Gram matrix.
- :func:`kinetic_energy`: K_eps(P) = sum_i (sqrt(s_i^2 + eps^2) - eps), whose gradient is the regularized map.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import torch

from framework.optim.polar_express import steps_to_tolerance

# Jordan's quintic coefficients (a, b, c): p(x) = a x + b x^3 + c x^5, maximal slope at 0.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
# Singular values of newton_schulz(G) land in this band after 5 steps when s / ||G||_F >= 0.01 (fp32/fp64).
NS_ATTRACTOR_BAND = (0.682, 1.134)
# On CPU, stacks of matrices at least this wide run as a loop of 2-D GEMMs (measured ~5% faster than batched bmm
# at 768; batched wins by ~6x for many small matrices, where per-call overhead dominates).
LOOP_ABOVE_ON_CPU = 256


def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    if x.ndim < 2:
        raise ValueError(f"orthogonalization needs (..., m, n) matrices, got shape {tuple(x.shape)}")
    return x.reshape(-1, *x.shape[-2:]), x.shape


def _per_step(steps: int, coefficients: Sequence[float] | Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    """One (a, b, c) triple used ``steps`` times, or an explicit per-step sequence of triples."""
    if isinstance(coefficients[0], Sequence):
        return [tuple(c) for c in coefficients]
    return [tuple(coefficients)] * steps


def _wide_normalized(g: torch.Tensor, eps: float, dtype: torch.dtype | None) -> tuple[torch.Tensor, bool]:
    """(batch, m, n) with m <= n (tall inputs transposed) divided by max(||G||_F, eps), in ``dtype``."""
    x = g.to(dtype or g.dtype)
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = x.mT
    return x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps), tall


def newton_schulz(
    g: torch.Tensor,
    steps: int = 5,
    coefficients: Sequence[float] | Sequence[Sequence[float]] = NS_COEFFICIENTS,
    eps: float = 1e-7,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Quintic Newton-Schulz: X_0 = G / max(||G||_F, eps); X_{k+1} = a X + (b A + c A^2) X with A = X X^T.

    Works on the wide orientation (m <= n, transposing tall inputs), batched over leading dims with ``baddbmm``.
    Matches ``torch.optim.Muon``'s normalisation (``norm().clamp(min=eps)``).

    Args:
        g: (..., m, n).
        steps: iterations; ignored when ``coefficients`` is a per-step list of (a, b, c) triples.
        coefficients: one (a, b, c) triple used every step, or a sequence of triples (e.g. Polar Express).
        eps: floor of the Frobenius norm.
        dtype: compute dtype (default: ``g.dtype``); the result is cast back to ``g.dtype``.
    Returns:
        (..., m, n), approximately U V^T (with Jordan's coefficients, singular values in ``NS_ATTRACTOR_BAND``).
    """
    per_step = _per_step(steps, coefficients)
    batch, shape = _as_batch(g)
    x, tall = _wide_normalized(batch, eps, dtype)
    if x.device.type == "cpu" and min(x.shape[-2:]) >= LOOP_ABOVE_ON_CPU:
        x = torch.stack([_newton_schulz_2d(m, per_step) for m in x])  # big CPU matrices: 2-D GEMMs are ~5% faster
    else:
        for a, b, c in per_step:
            gram = torch.bmm(x, x.mT)
            poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
            x = torch.baddbmm(x, poly, x, beta=a, alpha=1.0)
    if tall:
        x = x.mT
    return x.reshape(shape).to(g.dtype)


def _newton_schulz_2d(x: torch.Tensor, per_step: list[tuple[float, ...]]) -> torch.Tensor:
    for a, b, c in per_step:
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a, alpha=1.0)
    return x


# Gram Newton-Schulz rebuilds X and R = X X^T before these steps (0-based), as Dao lab do for half precision.
GRAM_RESTARTS = (2,)


def gram_newton_schulz(
    g: torch.Tensor,
    steps: int = 5,
    coefficients: Sequence[float] | Sequence[Sequence[float]] = NS_COEFFICIENTS,
    eps: float = 1e-7,
    dtype: torch.dtype | None = None,
    restarts: Sequence[int] = GRAM_RESTARTS,
) -> torch.Tensor:
    """The map of :func:`newton_schulz`, iterated on the m x m Gram matrix instead of the m x n iterate (m <= n).

    Each step's polynomial is a function of R = X X^T, so with R_0 = X_0 X_0^T

        P_k = a_k I + b_k R_k + c_k R_k^2,    X_{k+1} = P_k X_k,    R_{k+1} = P_k R_k P_k,

    and X_K = Q X_0 with Q = P_{K-1} ... P_0 accumulated in m x m products; the m x n iterate is formed only at the
    end and before each step in ``restarts`` (X <- Q X, R <- X X^T, Q <- I). The restart matters in bfloat16:
    rounding leaves spurious negative eigenvalues in R, which R <- P R P multiplies by about a_k^2 per step
    (exploding within five steps here); rebuilding R from X makes it positive semi-definite again. Equal to
    :func:`newton_schulz` in exact arithmetic (tested in float64); cheaper when max(m, n) / min(m, n) > ~1.5
    (:func:`gram_newton_schulz_flops`).

    Args:
        g: (..., m, n).
        steps, coefficients, eps, dtype: as :func:`newton_schulz`.
        restarts: step indices before which X and R are rebuilt (empty: never).
    Returns:
        (..., m, n).
    """
    batch, shape = _as_batch(g)
    x, tall = _wide_normalized(batch, eps, dtype)
    x = _gram_iteration(x, torch.bmm(x, x.mT), _per_step(steps, coefficients), restarts)
    if tall:
        x = x.mT
    return x.reshape(shape).to(g.dtype)


def _gram_iteration(
    x: torch.Tensor, gram: torch.Tensor, per_step: list[tuple[float, ...]], restarts: Sequence[int]
) -> torch.Tensor:
    """Q X for a wide stack x (batch, m, n) whose iteration starts from the Gram matrix ``gram`` (batch, m, m)."""
    eye = torch.eye(x.shape[-2], dtype=x.dtype, device=x.device)
    q = None
    for k, (a, b, c) in enumerate(per_step):
        if k in restarts and q is not None:
            x = torch.bmm(q, x)
            gram, q = torch.bmm(x, x.mT), None
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c).add_(eye, alpha=a)
        q = poly if q is None else torch.bmm(q, poly)
        if k + 1 < len(per_step) and k + 1 not in restarts:
            gram = torch.bmm(poly, torch.bmm(gram, poly))
    return torch.bmm(q, x)


def gram_newton_schulz_flops(m: int, n: int, steps: int = 5, restarts: Sequence[int] = GRAM_RESTARTS) -> int:
    """FLOPs (multiply-adds x2) of :func:`gram_newton_schulz` on one m x n matrix, k = min(m, n), l = max(m, n):
    2 k^2 l for each Gram matrix and each application of Q to X, 2 k^3 per k x k product (R^2 every step; Q P and
    P R P except where the formula skips them)."""
    k, length = min(m, n), max(m, n)
    big = 2  # the first Gram matrix and the final Q X
    small = 0
    first = True
    for step in range(steps):
        if step in restarts and not first:
            big += 2
            first = True
        small += 1 + (0 if first else 1)  # R^2, then Q P unless Q = P
        if step + 1 < steps and step + 1 not in restarts:
            small += 2  # P (R P)
        first = False
    return 2 * big * k * k * length + 2 * small * k**3


def polar_svd(g: torch.Tensor) -> torch.Tensor:
    """Exact polar factor U V^T of G = U S V^T (reduced SVD), batched. Zero singular values give 0 columns' worth
    of arbitrary directions (as in any SVD); use for reference and tests."""
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    return u @ vh


def _eps_column(eps: float | torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor:
    """eps as a (batch, 1, 1) tensor of ``like``'s dtype: one value for every matrix, or one per matrix."""
    eps_t = torch.as_tensor(eps, dtype=like.dtype, device=like.device).reshape(-1, 1, 1)
    if not bool((eps_t > 0).all()):
        raise ValueError(f"regularized_polar needs eps > 0, got eps={eps}; use polar_svd for eps = 0.")
    return eps_t.expand(batch, 1, 1)


def _regularized_eigh(p: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """P (P^T P + eps^2 I)^(-1/2) (or (P P^T + eps^2 I)^(-1/2) P for wide P) via eigh of the smaller Gram, float64."""
    tall = p.shape[-2] >= p.shape[-1]
    gram = p.mT @ p if tall else p @ p.mT
    evals, evecs = torch.linalg.eigh(gram)
    inverse_sqrt = (evecs * (evals.clamp(min=0) + eps[..., 0] ** 2).rsqrt().unsqueeze(-2)) @ evecs.mT
    return p @ inverse_sqrt if tall else inverse_sqrt @ p


@functools.lru_cache(maxsize=256)
def _regularized_steps(lower: float, tolerance: float) -> tuple[tuple[float, float, float], ...]:
    return tuple(steps_to_tolerance(lower, tolerance))


def _regularized_iterative(p: torch.Tensor, eps: torch.Tensor, tolerance: float) -> torch.Tensor:
    """The regularized map as the left block of the polar factor of M = [P, eps I] (wide P, m <= n):

        M M^T = P P^T + eps^2 I,    polar(M) = (P P^T + eps^2 I)^(-1/2) [P, eps I],

    so :func:`_gram_iteration` on R_0 = M M^T / ||M||_F^2 applied to P / ||M||_F gives it. Every singular value of
    M / ||M||_F lies in [l, 1] with l = min eps / ||M||_F, so Polar Express steps for [l, 1] run until their
    composition maps [l, 1] into [1 - tolerance, 1 + tolerance]: each singular value s / sqrt(s^2 + eps^2) of the
    result then carries a relative error <= tolerance (plus rounding). R_0 >= l^2 I, so no restart is needed."""
    m = p.shape[-2]
    norm2 = p.square().sum(dim=(-2, -1), keepdim=True) + m * eps**2
    x = p * norm2.rsqrt()
    shift2 = eps**2 / norm2
    lower = float(shift2.min().sqrt())
    lower = 2.0 ** math.floor(math.log2(lower))  # a smaller lower end is still valid; few distinct values to cache
    eye = torch.eye(m, dtype=p.dtype, device=p.device)
    gram = torch.baddbmm(shift2 * eye, x, x.mT)
    return _gram_iteration(x, gram, list(_regularized_steps(lower, tolerance)), restarts=())


# Tolerance of the Polar Express composition per compute dtype of the iterative regularized map (the exact-arithmetic
# relative error per singular value; float32 rounding adds about 1e-7 / l^2, see regularized_polar).
REGULARIZED_TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4}


def regularized_polar(
    p: torch.Tensor,
    eps: float | torch.Tensor,
    method: Literal["iterative", "eigh"] = "iterative",
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """grad K_eps(P) = P (P^T P + eps^2 I)^(-1/2) = (P P^T + eps^2 I)^(-1/2) P, batched over leading dims.

    Equals U diag(s / sqrt(s^2 + eps^2)) V^T: tends to the polar factor as eps -> 0 and eps * grad K -> P as
    eps -> inf. NOT scale-invariant for a fixed eps: grad K(cP) != grad K(P) (Muon's ``reg_eps_units: relative``
    scales eps with P instead).

    Args:
        p: (..., m, n).
        eps: > 0; a float, or a tensor with one value per matrix (shape ``p.shape[:-2]``).
        method: ``iterative`` (default): Gram-space Polar Express iteration (:func:`_regularized_iterative`) in
            ``dtype`` to the relative accuracy ``REGULARIZED_TOLERANCE[dtype]`` per singular value; ``eigh``:
            exact, by ``eigh`` of the smaller Gram matrix in float64.
        dtype: compute dtype of ``iterative``: float64 (accurate to ~1e-10) or float32 (what Muon uses: ~2x
            faster; rounding of P P^T adds a relative error of about 1e-7 / l^2 with l = eps / ||[P, eps I]||_F,
            measured 2e-4 to 7e-4 (Frobenius) at eps = 0.1 x the RMS singular value on 768-wide gradients, 1e-2
            to 0.16 at 0.01 x; use float64 or ``eigh`` there).
    Returns:
        (..., m, n) in ``p.dtype``.
    """
    batch, shape = _as_batch(p)
    if method == "eigh":
        x = batch.double()
        return _regularized_eigh(x, _eps_column(eps, x.shape[0], x)).reshape(shape).to(p.dtype)
    if method != "iterative":
        raise ValueError(f"regularized_polar method={method!r}; choose iterative or eigh.")
    if dtype not in REGULARIZED_TOLERANCE:
        raise ValueError(f"regularized_polar dtype={dtype}; choose torch.float64 or torch.float32.")
    x = batch.to(dtype)
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = x.mT
    out = _regularized_iterative(x, _eps_column(eps, x.shape[0], x), REGULARIZED_TOLERANCE[dtype])
    if tall:
        out = out.mT
    return out.reshape(shape).to(p.dtype)


def kinetic_energy(p: torch.Tensor, eps: float | torch.Tensor) -> torch.Tensor:
    """K_eps(P) = sum_i (sqrt(s_i(P)^2 + eps^2) - eps), summed over the batch; K(0) = 0, K >= 0, grad K = the
    regularized map. ``eps``: a float or one value per matrix (shape ``p.shape[:-2]``). Computed from the
    eigenvalues of the smaller Gram matrix (float64), returned as float64."""
    p64 = p.double().reshape(-1, *p.shape[-2:])
    gram = p64.mT @ p64 if p.shape[-2] >= p.shape[-1] else p64 @ p64.mT
    s2 = torch.linalg.eigvalsh(gram).clamp(min=0)
    eps_t = torch.as_tensor(eps, dtype=torch.float64, device=p64.device).reshape(-1, 1)
    return ((s2 + eps_t**2).sqrt() - eps_t).sum()


def newton_schulz_flops(m: int, n: int, steps: int = 5) -> int:
    """Multiply-add FLOPs (x2) of :func:`newton_schulz` on one m x n matrix: per step 4 k^2 l + 2 k^3,
    with k = min(m, n), l = max(m, n)."""
    k, length = min(m, n), max(m, n)
    return steps * (4 * k * k * length + 2 * k**3)
