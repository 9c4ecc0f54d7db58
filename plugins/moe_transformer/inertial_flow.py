"""Continuous-time view of regularized Muon: damped Hamiltonian dynamics with kinetic energy K_eps.

With H(x, p) = f(x) + w sum_i K_eps(p_i) over particles i (matrices x_i, momenta p_i, weight w = 1/N for the
mean-field N-particle system, w = 1 for one matrix), the inertial limit of regularized Muon is

    x_i' = grad K_eps(p_i),        p_i' = -(1/w) grad_{x_i} f(x) - gamma p_i,

and H dissipates exactly:  dH/dt = -gamma w sum_i <p_i, grad K_eps(p_i)> <= 0  (derivation: docs/muon.md;
"Move on Muon", Mustafi, Mukherjee & Sriperumbudur 2026, states the phase-space picture).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from framework.optim.orthogonalize import kinetic_energy, regularized_polar

Objective = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class InertialTrajectory:
    """Energies along an RK4 solution: ``times``, ``hamiltonian`` H(t), ``dissipated`` int_0^t gamma w <p, grad K>."""

    times: torch.Tensor
    hamiltonian: torch.Tensor
    dissipated: torch.Tensor
    x: torch.Tensor
    p: torch.Tensor


def integrate_inertial(
    f: Objective,
    x0: torch.Tensor,
    p0: torch.Tensor,
    eps: float,
    gamma: float,
    dt: float,
    n_steps: int,
    weight: float = 1.0,
) -> InertialTrajectory:
    """Classical RK4 on (x, p, D) with D' = gamma w sum_i <p_i, grad K(p_i)> (so D(T) is the exact dissipation
    integral to RK4 accuracy). ``x0``/``p0``: (N, m, n) particles or one (m, n) matrix; f maps x to a scalar."""

    def grad_f(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(f(xr), xr)
        return g

    def rhs(x: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        velocity = regularized_polar(p, eps)
        force = -grad_f(x) / weight - gamma * p
        return velocity, force, gamma * weight * (p * velocity).sum()

    def energy(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return f(x).detach().double() + weight * kinetic_energy(p, eps)

    x, p, d = x0.double(), p0.double(), torch.zeros((), dtype=torch.float64)
    hamiltonian, dissipated = [energy(x, p)], [d]
    for _ in range(n_steps):
        k1 = rhs(x, p)
        k2 = rhs(x + dt / 2 * k1[0], p + dt / 2 * k1[1])
        k3 = rhs(x + dt / 2 * k2[0], p + dt / 2 * k2[1])
        k4 = rhs(x + dt * k3[0], p + dt * k3[1])
        x = x + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        p = p + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        d = d + dt / 6 * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
        hamiltonian.append(energy(x, p))
        dissipated.append(d)
    times = torch.arange(n_steps + 1, dtype=torch.float64) * dt
    return InertialTrajectory(times, torch.stack(hamiltonian), torch.stack(dissipated), x, p)
