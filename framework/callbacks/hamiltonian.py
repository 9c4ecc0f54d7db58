"""The energy of the dynamics :class:`framework.optim.Muon` runs, and a callback that logs it.

Continuous limit (derivation: docs/muon.md, "Regularized Muon and the Hamiltonian view"). One step of a Muon group
g (lr_g, beta_g, lr_scale factor s_b of block b, no Nesterov, no weight decay) on block W_b with gradient G_b is

    ema          m_b <- beta_g m_b + (1 - beta_g) G_b        heavy_ball   m_b <- beta_g m_b + G_b
    both         W_b <- W_b - lr_g s_b grad K(m_b)

With time t = (steps) * h and h -> 0 at fixed (lr_g / h, (1 - beta_g) / h), the energy

    E = f(W) + sum_g c_g sum_{b in g} s_b K(m_b),    c_g = lr_g / (1 - beta_g) (ema),  c_g = lr_g (heavy_ball)

obeys, per optimizer step (dt = h),

    E_{t+1} - E_t = -D_t + O(h^2),    D = sum_g (1 - beta_g) c_g sum_{b in g} s_b <grad K(m_b), m_b>  >= 0,

i.e. (ema) D = sum_g lr_g sum_b s_b <grad K(m_b), m_b>, (heavy_ball) D = sum_g lr_g (1 - beta_g) sum_b s_b <...>.
K is convex, even and minimal at 0, so <grad K(m), m> >= K(m) - K(0) >= 0: E is a Lyapunov function. With one
EMA group and time unit lr this is E = (gamma f + sum_b s_b K(m_b)) / gamma, gamma = (1 - beta) / lr.

K per orthogonalizer: ``regularized`` K = K_eps (smoothed nuclear norm) with the eps the optimizer uses for that
block (:func:`framework.optim.muon.regularization_eps`: ``reg_eps`` itself with ``reg_eps_units: absolute``; with
``relative``, ``reg_eps`` x the block's RMS singular value at the current buffer), whose gradient (at that eps) is
exactly the map the optimizer applies. With absolute eps the identity below is exact to O(h^2); with relative eps
eps moves with m, and the map is grad K at frozen eps, not the gradient of K_{eps(m)}(m): E then changes by an
extra sum_b s_b (dK/deps) (d eps_b/dt) per unit time, small while the buffer's RMS changes slowly; ``svd``
K = ||m||_* (eps = 0), whose (sub)gradient is the polar factor U V^T; ``newton_schulz`` K = ||m||_* as well, but
Newton-Schulz only approximates U V^T (Jordan's coefficients: singular values in [0.68, 1.13]) and is not the
gradient of any function of m, so dE/dt then carries the extra term sum_b s_b <G_b, U V^T - NS(m_b)>, of no sign.

Assumptions of the identity: full-batch (deterministic) gradients of the same f; constant lr and momentum (a
schedule that lowers c_g adds dissipation, warm-up can raise E); no weight decay (it adds -wd <grad f, W>, of no
sign); no gradient clipping; Nesterov off (Nesterov has the same continuous limit, u - m = O(h), but changes the
O(h) discrete error); AdamW-routed parameters are outside the Hamiltonian (f still depends on them, so their
updates change E by an amount the identity does not account for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from framework.figures import figure
from framework.optim.muon import Muon, lr_scale_factor, regularization_eps


@dataclass(frozen=True)
class MomentumEnergy:
    """The momentum part of the energy, at the current buffers m.

    kinetic: sum over all Muon blocks of s_b K(m_b) (logged as ``energy/K``).
    weighted_kinetic: sum_g c_g sum_b s_b K(m_b) (the term E - f).
    dissipation: D = sum_g (1 - beta_g) c_g sum_b s_b <grad K(m_b), m_b>, the predicted decrease of E per step.
    """

    kinetic: float
    weighted_kinetic: float
    dissipation: float

    def with_loss(self, f: float) -> dict[str, float]:
        """The logged dictionary: ``energy/f``, ``energy/K``, ``energy/H`` = E, ``energy/dissipation`` = D."""
        return {
            "energy/f": f,
            "energy/K": self.kinetic,
            "energy/H": f + self.weighted_kinetic,
            "energy/dissipation": self.dissipation,
        }


def kinetic_eps(group: dict[str, Any], blocks: torch.Tensor) -> float | torch.Tensor:
    """eps of K for a stack of the group's blocks ``(n, rows, cols)``: the eps the regularized map uses for each
    block (one float, or one value per block for relative eps), 0 (K = nuclear norm) for svd / newton_schulz."""
    return regularization_eps(group, blocks) if group["orthogonalizer"] == "regularized" else 0.0


def energy_coefficient(group: dict[str, Any]) -> float:
    """c_g, the weight of the group's kinetic term in E: lr / (1 - beta) for ema, lr for heavy_ball.

    Equivalently 1 / gamma_g (ema) or lr_g (heavy ball): the momentum of the inertial-flow form is p = -c_g m.
    """
    lr, beta = float(group["lr"]), float(group["momentum"])
    if group["momentum_style"] == "ema":
        return lr / (1.0 - beta)
    return lr


def block_terms(blocks: torch.Tensor, eps: float | torch.Tensor) -> tuple[float, float]:
    """K and <grad K, m> summed over a stack of same-shaped blocks ``(n, rows, cols)``, in float64; ``eps`` is one
    value or one per block (shape ``(n,)``).

    With s_i the singular values (from the eigenvalues s_i^2 of the smaller Gram matrix):
    K_eps = sum_i (sqrt(s_i^2 + eps^2) - eps) and <grad K_eps(m), m> = sum_i s_i^2 / sqrt(s_i^2 + eps^2);
    eps = 0 gives ||m||_* for both.
    """
    m = blocks.detach().double()
    gram = m.mT @ m if m.shape[-2] >= m.shape[-1] else m @ m.mT
    s2 = torch.linalg.eigvalsh(gram).clamp(min=0)
    eps = torch.as_tensor(eps, dtype=torch.float64, device=m.device).reshape(-1, 1)
    root = (s2 + eps**2).sqrt()
    kinetic = (root - eps).sum()
    pairing = torch.where(root > 0, s2 / root.clamp(min=torch.finfo(root.dtype).tiny), 0.0).sum()
    return kinetic.item(), pairing.item()


def group_terms(optimizer: Muon, group: dict[str, Any]) -> tuple[float, float]:
    """sum_b s_b K(m_b) and sum_b s_b <grad K(m_b), m_b> over the blocks of one Muon group."""
    kinetic, pairing = 0.0, 0.0
    for p in group["params"]:
        blocks = optimizer.views[p].blocks(optimizer.state[p]["momentum_buffer"])
        by_shape: dict[tuple[int, int], list[torch.Tensor]] = {}
        for block in blocks:
            by_shape.setdefault((block.shape[0], block.shape[1]), []).append(block)
        for (rows, cols), same in by_shape.items():
            stack = torch.stack(same)
            k, d = block_terms(stack, kinetic_eps(group, stack))
            scale = lr_scale_factor(rows, cols, group["lr_scale"])
            kinetic += scale * k
            pairing += scale * d
    return kinetic, pairing


def momentum_energy(optimizers: list[torch.optim.Optimizer]) -> MomentumEnergy | None:
    """The momentum terms of E over every ``use_muon`` group of every :class:`Muon` (None without one)."""
    kinetic = weighted = dissipation = 0.0
    found = False
    for opt in optimizers:
        if not isinstance(opt, Muon):
            continue
        for group in opt.param_groups:
            if not group["use_muon"]:
                continue
            found = True
            k, d = group_terms(opt, group)
            c = energy_coefficient(group)
            kinetic += k
            weighted += c * k
            dissipation += (1.0 - float(group["momentum"])) * c * d
    return MomentumEnergy(kinetic, weighted, dissipation) if found else None


def muon_energy(optimizers: list[torch.optim.Optimizer], loss: float | torch.Tensor) -> dict[str, float] | None:
    """``energy/f``, ``energy/K``, ``energy/H`` (= E) and ``energy/dissipation`` (= D) at the state (W_t, m_t).

    Call it with f(W_t) and the buffers m_t *before* ``optimizer.step()``; then E_{t+1} - E_t = -D_t + O(h^2).
    """
    terms = momentum_energy(optimizers)
    return (
        None
        if terms is None
        else terms.with_loss(float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss))
    )


def violated_assumptions(optimizers: list[torch.optim.Optimizer], trainer: pl.Trainer | None = None) -> list[str]:
    """Settings under which E is not (exactly, in the limit) a Lyapunov function of the run, one line each."""
    found: list[str] = []
    for opt in optimizers:
        if not isinstance(opt, Muon):
            continue
        for group in opt.param_groups:
            name = group.get("name", "?")
            if not group["use_muon"]:
                found.append(f"{name}: AdamW-routed parameters are outside the Hamiltonian")
                continue
            if group["nesterov"]:
                found.append(f"{name}: nesterov=True (same limit, different O(lr) error)")
            if group["weight_decay"]:
                found.append(f"{name}: weight_decay={group['weight_decay']} (adds -wd <grad f, W>, of no sign)")
            if group["orthogonalizer"] == "newton_schulz":
                found.append(f"{name}: newton_schulz only approximates grad ||m||_* (K = nuclear norm)")
    if trainer is not None and trainer.gradient_clip_val:
        found.append(f"gradient_clip_val={trainer.gradient_clip_val}")
    return found


class HamiltonianMonitor(Callback):
    """Every ``every_n_steps`` optimizer steps, log the energy of the dynamics Muon runs (module docstring):

    ``energy/f`` the training loss f(W_t) (summed over the micro-batches of one step, as Lightning normalizes them),
    ``energy/K`` = sum_b s_b K(m_b), ``energy/H`` = E = f + sum_g c_g sum_b s_b K(m_b) and ``energy/dissipation``
    = D, all at the state (W_t, m_t) the step starts from; E_{t+1} - E_t ~ -D_t is the check. The momentum terms are
    read in ``on_before_optimizer_step`` (buffers not yet updated), the loss in ``on_train_batch_end``. At the end of
    training, the figure ``energy`` of f, E - f and E.

    Minibatch noise, weight decay, Nesterov, AdamW-routed parameters, schedules and clipping break the identity
    (listed once as a warning at the start of training): a monitor, not an assertion.
    """

    def __init__(self, every_n_steps: int = 10) -> None:
        self.every_n_steps = every_n_steps
        self.history: list[tuple[int, float, float]] = []  # (step t, f, E)
        self._pending: tuple[int, MomentumEnergy] | None = None  # (step t, momentum terms at m_t) to log
        self._stepped = False  # an optimizer step ran during the current batch
        self._loss = 0.0  # sum of the (1/accumulate-normalized) micro-batch losses since the last step

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        caveats = violated_assumptions(trainer.optimizers, trainer)
        if caveats:
            rank_zero_warn(
                "HamiltonianMonitor: energy/H is the Lyapunov function of the continuous limit only without "
                "these settings, which this run has: " + "; ".join(caveats)
            )

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        self._stepped = True
        if trainer.global_step % self.every_n_steps == 0:
            terms = momentum_energy(trainer.optimizers)
            self._pending = None if terms is None else (trainer.global_step, terms)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._loss += float(loss.detach())
        if not self._stepped:  # accumulating: the step (and f's last micro-batch) is still to come
            return
        pending, f = self._pending, self._loss
        self._pending, self._stepped, self._loss = None, False, 0.0
        if pending is None:
            return
        step, terms = pending
        values = terms.with_loss(f)
        self.history.append((step, values["energy/f"], values["energy/H"]))
        pl_module.log_dict(values)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.history:
            return
        steps, f, energy = zip(*self.history, strict=True)
        with figure(trainer, "energy", figsize=(5, 3)) as (_, ax):
            ax.plot(steps, f, label="f (loss)")
            ax.plot(steps, [e - a for e, a in zip(energy, f, strict=True)], label="sum_g c_g s K (momentum)")
            ax.plot(steps, energy, label="E = f + sum_g c_g s K")
            ax.set(xlabel="step", ylabel="energy", title="Energy of the Muon dynamics")
            ax.legend()
