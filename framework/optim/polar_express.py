"""Per-step optimal odd quintics for the polar iteration (Polar Express, Amsel, Persson, Musco & Gower 2025).

One step of a Newton-Schulz-type iteration maps every singular value x of the iterate by an odd polynomial
p(x) = a x + b x^3 + c x^5 (singular vectors unchanged). If before step k all singular values lie in [l_k, u_k],
the best step is the odd quintic that minimises the worst distance to 1,

    p_k = argmin_p max_{x in [l_k, u_k]} |1 - p(x)|,        E_k = that minimum,

and afterwards every singular value lies in [1 - E_k, 1 + E_k] (the error equioscillates: p_k(l_k) = 1 - E_k).
Starting from [lower, 1] (a Frobenius-normalised matrix has every singular value <= 1) the greedy sequence is the
optimal composition (Amsel et al., Theorem 4.1), and it is derived here, not tabulated: :func:`minimax_odd_quintic`
solves each minimax problem by the Remez exchange (equioscillation at l, the two interior extrema of p, and u).
Jordan's fixed (3.4445, -4.7750, 2.0315) is the special case tuned by hand for a fast start; it never converges
(its fixed band is about [0.68, 1.13]), whereas the Polar Express error E_k goes to 0 quadratically-then-quintically.

``safety`` > 1 evaluates p(x / safety) instead (Amsel et al. Sec. 4.4): it shrinks every step slightly so that
rounding cannot push a singular value past the right end of the interval, where the quintic turns down.
:func:`composition_range` gives the exact image of [lower, 1] under any list of steps (endpoints and interior
critical points per step), which is what the tests and ``scripts/bench_muon.py`` use as the guaranteed band.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Quintic = tuple[float, float, float]
# p(x) = (15 x - 10 x^3 + 3 x^5) / 8: p(1) = 1, p'(1) = p''(1) = 0; the minimax quintic as the interval shrinks to 1.
TANGENT_QUINTIC: Quintic = (15 / 8, -10 / 8, 3 / 8)
# Default lower end of the interval: singular values below 1e-3 of the Frobenius norm are not promised to reach 1
# (Amsel et al. use the same value for bfloat16 Muon).
DEFAULT_LOWER = 1e-3


def _interior_critical_points(coefficients: Quintic, lo: float, hi: float) -> list[float]:
    """Roots of p'(x) = a + 3 b x^2 + 5 c x^4 strictly inside (lo, hi), ascending."""
    a, b, c = coefficients
    roots = np.roots([5 * c, 3 * b, a]) if c != 0 else np.roots([3 * b, a])
    points = [float(np.sqrt(r.real)) for r in roots if abs(r.imag) < 1e-12 and r.real > 0]
    return sorted(x for x in points if lo < x < hi)


def evaluate(coefficients: Quintic, x: np.ndarray | float) -> np.ndarray | float:
    """p(x) = a x + b x^3 + c x^5."""
    a, b, c = coefficients
    return a * x + b * x**3 + c * x**5


def minimax_odd_quintic(lower: float, upper: float, iterations: int = 100) -> tuple[Quintic, float]:
    """The odd quintic p minimising max_{x in [lower, upper]} |1 - p(x)|, and that error E (Remez exchange).

    Each round solves p(x_i) + (-1)^i E = 1 at a 4-point reference x_0 = lower < x_1 < x_2 < x_3 = upper, then moves
    x_1, x_2 to the interior extrema of the error (roots of p'); at convergence the error equioscillates at the
    reference with magnitude E, which by the equioscillation theorem is optimal. An interval narrower than 1e-9
    returns the tangent quintic with E = max |1 - p| at its ends.
    """
    if not 0 < lower < upper:
        raise ValueError(f"minimax_odd_quintic needs 0 < lower < upper, got lower={lower}, upper={upper}")
    if upper - lower < 1e-4:
        low, high = composition_range([TANGENT_QUINTIC], lower, upper)
        return TANGENT_QUINTIC, max(1 - low, high - 1)
    signs = (-1.0) ** np.arange(4)
    reference = lower + (upper - lower) * (1 - np.cos(np.pi * np.arange(4) / 3)) / 2  # Chebyshev-spaced start
    for _ in range(iterations):
        system = np.stack([reference, reference**3, reference**5, signs], axis=1)
        a, b, c, _ = np.linalg.solve(system, np.ones(4))
        interior = _interior_critical_points((a, b, c), lower, upper)
        if len(interior) != 2:
            break
        new = np.array([lower, *interior, upper])
        converged = np.allclose(new, reference, rtol=1e-14, atol=0.0)
        reference = new
        if converged:
            break
    system = np.stack([reference, reference**3, reference**5, signs], axis=1)
    a, b, c, error = np.linalg.solve(system, np.ones(4))
    return (float(a), float(b), float(c)), float(abs(error))


def polar_express_coefficients(steps: int, lower: float = DEFAULT_LOWER, safety: float = 1.01) -> list[Quintic]:
    """The greedy minimax sequence for ``steps`` steps starting from [lower, 1], each p_k(x / safety).

    Returns [(a_k / s, b_k / s^3, c_k / s^5)] with s = ``safety``; use :func:`composition_range` for the band the
    composition guarantees on [lower, 1].
    """
    if steps < 1:
        raise ValueError(f"polar_express_coefficients needs steps >= 1, got {steps}")
    lo, hi = lower, 1.0
    out: list[Quintic] = []
    for _ in range(steps):
        (a, b, c), error = minimax_odd_quintic(lo, hi)
        out.append((a / safety, b / safety**3, c / safety**5))
        lo, hi = 1 - error, 1 + error
    return out


def composition_range(coefficients: Sequence[Quintic], lower: float, upper: float = 1.0) -> tuple[float, float]:
    """Exact [min, max] of p_K o ... o p_1 over [lower, upper]: each step maps an interval to the min/max of p over
    its ends and interior critical points (p is continuous, so the image of an interval is that interval)."""
    lo, hi = lower, upper
    for step in coefficients:
        step = tuple(step)
        values = [evaluate(step, x) for x in (lo, hi, *_interior_critical_points(step, lo, hi))]
        lo, hi = float(min(values)), float(max(values))
    return lo, hi


def steps_to_tolerance(lower: float, tolerance: float, max_steps: int = 50) -> list[Quintic]:
    """The shortest greedy sequence (no safety factor) whose composition maps [lower, 1] into
    [1 - tolerance, 1 + tolerance]."""
    for steps in range(1, max_steps + 1):
        coefficients = polar_express_coefficients(steps, lower, safety=1.0)
        lo, hi = composition_range(coefficients, lower)
        if max(1 - lo, hi - 1) <= tolerance:
            return coefficients
    raise ValueError(f"no sequence of <= {max_steps} steps reaches tolerance={tolerance} from lower={lower}")
