"""Per-run summaries logged as ``test/`` metrics at the end of a run: the exact Gaussian-mixture test error of a
linear classifier and the train-test tracking gap along the trajectory."""

from __future__ import annotations

import math

import torch


def gmm_exact_error(w: torch.Tensor, v: torch.Tensor, noise_var: float) -> dict[str, float]:
    """Exact test error of sign(x . w) on x = y v / sqrt(d) + sqrt(Delta) z, y = +-1, z ~ N(0, I_d).

    x . w / sqrt(d) = y m + sqrt(Delta q) xi with m = v . w / d, q = ||w||^2 / d, xi ~ N(0, 1), so the error is
    Phi(-m / sqrt(Delta q)) = erfc(m / sqrt(2 Delta q)) / 2 (1/2 at w = 0, where every score ties).

    Args:
        w: (d,) the effective weight (readout times first-layer row); v: (d,) the signal; noise_var: Delta.

    Returns:
        ``m``, ``q`` and ``exact_error``.
    """
    w, v = w.double(), v.double().to(w.device)
    m, q = (v @ w).item() / len(v), (w @ w).item() / len(v)
    error = 0.5 if q == 0 else 0.5 * math.erfc(m / math.sqrt(2 * noise_var * q))
    return {"m": m, "q": q, "exact_error": error}


def trajectory_summary(train: dict[int, float], test: dict[int, float]) -> dict[str, float]:
    """Over the steps t >= 1 present in both: the largest |train_t - test_t| and the smallest test_t.

    ``train[t]`` is the train error the method reports for the iterate W^t (DD: corrected, GD: raw) and ``test[t]``
    the held-out error of the same W^t; t = 0 (the initialization) is left out. Empty when no step is shared.

    Returns:
        ``max_tracking_gap`` and ``best_error_over_t`` (an oracle: the minimum over t of held-out errors).
    """
    steps = sorted(t for t in set(train) & set(test) if t >= 1)
    if not steps:
        return {}
    return {
        "max_tracking_gap": max(abs(train[t] - test[t]) for t in steps),
        "best_error_over_t": min(test[t] for t in steps),
    }
