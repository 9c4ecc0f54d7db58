"""Empirical Lipschitz constant of a velocity field along its own sampling path."""

from __future__ import annotations

import torch
from torch.func import jacrev, vmap

from framework_plugins.flow_matching.samplers import Velocity


def jacobian_spectral_norms(velocity: Velocity, x: torch.Tensor, t: float) -> torch.Tensor:
    """||D_x v(x_i, t)||_2 (largest singular value of the d x d Jacobian) at each row of x: (n, d) -> (n,)."""
    tt = torch.tensor(t, dtype=x.dtype, device=x.device)

    def single(xi: torch.Tensor) -> torch.Tensor:
        return velocity(xi[None], tt)[0]

    jac = vmap(jacrev(single))(x)  # (n, d, d)
    return torch.linalg.matrix_norm(jac, ord=2)


def lipschitz_profile(velocity: Velocity, path: torch.Tensor) -> torch.Tensor:
    """max_i ||D_x v(x_i(t_k), t_k)||_2 at every grid time t_k = k/N of an Euler ``path``: (N + 1, n, d) -> (N + 1,).

    A lower bound on the field's Lipschitz constant in x at each time, measured where the samples actually are.
    """
    n_steps = path.shape[0] - 1
    return torch.stack([jacobian_spectral_norms(velocity, path[k], k / n_steps).max() for k in range(n_steps + 1)])
