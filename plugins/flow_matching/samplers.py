"""ODE samplers on the exact uniform grid t_k = k / N (no floating-point step accumulation)."""

from __future__ import annotations

from collections.abc import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _time(k: int, n_steps: int, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(k / n_steps, dtype=like.dtype, device=like.device)


def euler_sample(velocity: Velocity, x0: torch.Tensor, n_steps: int, return_path: bool = False) -> torch.Tensor:
    """Explicit Euler: x_{k+1} = x_k + h v(x_k, t_k), h = 1/N, t_k = k/N, from x0 at t=0 to t=1.

    Args:
        velocity: v(x: (n, d), t: 0-dim tensor) -> (n, d).
        x0: (n, d) initial noise.
        n_steps: N >= 1.
        return_path: also return every iterate, shape (N + 1, n, d).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps={n_steps} must be >= 1")
    h = 1.0 / n_steps
    x, path = x0, [x0]
    for k in range(n_steps):
        x = x + h * velocity(x, _time(k, n_steps, x0))
        path.append(x)
    return torch.stack(path) if return_path else x


def heun_sample(velocity: Velocity, x0: torch.Tensor, n_steps: int, return_path: bool = False) -> torch.Tensor:
    """Heun (explicit trapezoid, 2nd order) on the same grid:

    x~ = x_k + h v(x_k, t_k);  x_{k+1} = x_k + h/2 (v(x_k, t_k) + v(x~, t_{k+1})).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps={n_steps} must be >= 1")
    h = 1.0 / n_steps
    x, path = x0, [x0]
    for k in range(n_steps):
        v0 = velocity(x, _time(k, n_steps, x0))
        v1 = velocity(x + h * v0, _time(k + 1, n_steps, x0))
        x = x + 0.5 * h * (v0 + v1)
        path.append(x)
    return torch.stack(path) if return_path else x


SAMPLERS = {"euler": euler_sample, "heun": heun_sample}
