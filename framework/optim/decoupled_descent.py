"""Decoupled descent (DD) as Onsager-corrected SGD: per-sample Onsager memory, decoupled preactivations and the
scalar / K x K Onsager correction, for a model whose trained part is a linear first layer (a GLM, or a two-layer
network with a smooth activation and a fixed readout) trained full-batch by ``torch.optim.SGD``.

**This is this project's reconstruction, not the paper's update.** Lovig, "Decoupled Descent: Exact Test Error
Tracking Via Approximate Message Passing" (arXiv 2604.27883) publishes no update rule; what follows is derived from
AMP with memory (GFOM; Celentano, Montanari & Wu 2020) for inputs x_i = y_i v / sqrt(d) + sqrt(Delta) z_i.

Notation (one step t; X: (n, d) inputs, W: (d, K) first layer, Delta: per-coordinate noise variance of x):

    A^t = X W^t / sqrt(d)                       raw preactivations, (n, K)   (biased by data reuse)
    P^t = A^t - Delta M^t                       decoupled preactivations      (corrected_preactivations)
    G_i = dl_i/dP_i,  H_i = d^2 l_i/dP_i^2      per-sample gradient (n, K), Hessian (n, K, K)
    C_t = (Delta / d) sum_i H_i                 Onsager matrix, (K, K); = Delta (n/d) mean l'' for K = 1
    SGD on W with gradient X^T G / sqrt(d)      i.e. the gradient of sum_i l_i(P_i) with M held fixed
        U^t = mu U^{t-1} + (1 - tau) (X^T G / sqrt(d) + lam W^t)   (U^0 = X^T G / sqrt(d) + lam W^0)
        W^{t+1} = W^t - eta_t U^t
    Onsager memory: the same linear filter on the n side, driven by G instead of X^T G / sqrt(d):
        V^t = mu V^{t-1} + (1 - tau) (G^t + M^t (lam I + C_t)^T)
        M^{t+1} = M^t - eta_t V^t                                   (OnsagerMemory.step)

For mu = 0 this is M^{t+1} = M^t ((1 - eta lam) I - eta C_t)^T - eta G^t. Because G^t depends on P^t only, the d-side
Onsager term of X^T G is C_t W^t (diagonal in time), so the n-side term Delta M^t needs no time-by-time matrices.
The momentum mu with dampening tau is the optional **damping** (an EMA of the decoupled gradient); the paper's
damping rule is unknown. Then (1/n) sum_i phi(P_i^t, y_i) tracks the test value E phi(x W^t / sqrt(d), y).

Restrictions: full batch only (every sample once per step); per-sample losses l_i(P_i) smooth in P (ReLU's delta
mass in sigma'' is invisible to the empirical Hessian); scalar Delta (isotropic noise; on real data an estimate).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def standardize(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Centre by the mean of ``reference`` rows and scale so that their mean per-coordinate variance is 1
    (real features put on the scale of the model x = y v / sqrt(d) + sqrt(Delta) z). x: (m, d) -> (m, d)."""
    mean = reference.mean(0)
    return (x - mean) / (reference - mean).pow(2).mean().sqrt()


def estimate_noise_var(x: torch.Tensor, y: torch.Tensor) -> float:
    """Delta^ = mean_i ||x_i - mu_{y_i}||^2 / d with class means mu_{+-1} (heuristic off the Gaussian mixture).
    x: (n, d), y: (n,) in {-1, +1}."""
    centred = torch.where((y > 0)[:, None], x - x[y > 0].mean(0), x - x[y < 0].mean(0))
    return float(centred.pow(2).mean())


def corrected_preactivations(raw: torch.Tensor, memory: torch.Tensor, noise_var: float) -> torch.Tensor:
    """P = A - Delta M: raw preactivations minus the Onsager memory term. raw, memory: (n, K) -> (n, K)."""
    return raw - noise_var * memory


def per_sample_derivatives(loss: torch.Tensor, preactivations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """G_i = d loss / dP_i (n, K) and H_i = d^2 loss / dP_i^2 (n, K, K) for loss = sum_i l_i(P_i).

    Exact by autograd (one gradient with ``create_graph`` plus K gradients of its columns); valid only when each
    l_i depends on row P_i alone. The graph of ``loss`` is retained, so it can still be back-propagated to W.
    """
    (grad,) = torch.autograd.grad(loss, preactivations, create_graph=True)
    rows = [torch.autograd.grad(grad[:, k].sum(), preactivations, retain_graph=True)[0] for k in range(grad.shape[1])]
    return grad.detach(), torch.stack(rows, dim=1).detach()


def onsager_matrix(hessians: torch.Tensor, noise_var: float, n_features: int) -> torch.Tensor:
    """C = (Delta / d) sum_i H_i, the K x K Onsager correction (scalar Delta (n/d) mean_i l''_i for K = 1).
    hessians: (n, K, K) over **all** n training samples (gather them first under DDP) -> (K, K)."""
    return noise_var / n_features * hessians.sum(dim=0)


def sgd_coefficients(optimizer: Any) -> dict[str, float]:
    """The (lr, momentum, dampening, weight_decay) of a plain ``torch.optim.SGD`` (Lightning wrappers unwrapped).

    The Onsager memory replays SGD's linear filter, so other optimizers (Adam, Nesterov, several groups with
    different hyper-parameters) are refused with a ``ValueError``.
    """
    optimizer = getattr(optimizer, "optimizer", optimizer)
    if not isinstance(optimizer, torch.optim.SGD):
        raise ValueError(
            f"decoupled descent needs optimizer=torch.optim.SGD, got {type(optimizer).__name__}: "
            "its Onsager memory replays SGD's linear update (use momentum/dampening for damping)."
        )
    keys = ("lr", "momentum", "dampening", "weight_decay")
    values = {tuple(float(group[k]) for k in keys) for group in optimizer.param_groups}
    if len(values) != 1 or any(group["nesterov"] or group["maximize"] for group in optimizer.param_groups):
        raise ValueError(
            f"decoupled descent needs one set of SGD hyper-parameters without nesterov/maximize, got {values}; "
            "train only the first layer (one parameter group) with nesterov=false."
        )
    return dict(zip(keys, values.pop(), strict=True))


def sgd_filter_step(
    state: torch.Tensor,
    velocity: torch.Tensor | None,
    drive: torch.Tensor,
    self_coupling: torch.Tensor,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of torch.optim.SGD's linear filter with a state-dependent drive:

        g = drive + state @ self_coupling^T;   v = g (first step or mu = 0) else mu v + (1 - tau) g;
        state <- state - lr v.

    Used for the Onsager memory (state M (n, K), drive G, self_coupling lam I + C) and, in the state evolution, for
    the coefficients of W on the signal and on the Gaussian fields. Returns (new state, new velocity).
    """
    grad = drive + state @ self_coupling.T
    velocity = grad if velocity is None or momentum == 0 else momentum * velocity + (1 - dampening) * grad
    return state - lr * velocity, velocity


class OnsagerMemory(nn.Module):
    """The per-sample state of decoupled descent: memory M (n, K) and its SGD velocity V (n, K), as buffers (so
    they are checkpointed with the model and a resumed run is exact).

    Created empty; :meth:`allocate` sizes it to the training set. Loading a state dict resizes the buffers to the
    stored shapes, so a checkpoint loads into a fresh, unallocated module.

    Args:
        width: K, the number of first-layer units.
        noise_var: Delta, the per-coordinate noise variance of x (known for simulated data, estimated otherwise).
    """

    def __init__(self, width: int = 1, noise_var: float = 1.0) -> None:
        super().__init__()
        if width < 1 or noise_var < 0:
            raise ValueError(f"OnsagerMemory(width={width}, noise_var={noise_var}): need width >= 1, noise_var >= 0.")
        self.width, self.noise_var = width, noise_var
        self.register_buffer("memory", torch.zeros(0, width, dtype=torch.float64))
        self.register_buffer("velocity", torch.zeros(0, width, dtype=torch.float64))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def allocate(self, n_samples: int) -> None:
        """Zero state for ``n_samples`` training samples (M^0 = 0), unless already of that size."""
        if self.memory.shape[0] != n_samples:
            self.memory = torch.zeros(n_samples, self.width, dtype=torch.float64, device=self.memory.device)
            self.velocity = torch.zeros_like(self.memory)
            self.started = torch.zeros((), dtype=torch.bool, device=self.memory.device)

    def correct(self, raw: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """P = A - Delta M[index] for the batch rows ``index``. raw: (b, K), index: (b,) -> (b, K), raw's dtype."""
        return corrected_preactivations(raw, self.memory[index].to(raw.dtype), self.noise_var)

    def step(self, index: torch.Tensor, grad: torch.Tensor, onsager: torch.Tensor, sgd: dict[str, float]) -> None:
        """M <- the SGD filter applied to G + M (lam I + C)^T, with SGD's own (lr, momentum, dampening, weight_decay).

        index: (n,) every training sample exactly once (full batch, gathered over ranks); grad: (n, K) = G rows in
        ``index`` order; onsager: (K, K) = C; sgd: :func:`sgd_coefficients` of the optimizer that stepped W.
        """
        n = self.memory.shape[0]
        if index.numel() > n:  # a DistributedSampler padded the ranks' shares with repeated samples
            raise ValueError(
                f"n_train={n}: decoupled descent is full-batch, and {index.numel() - n} sample(s) were repeated to "
                "split the data evenly over the processes; make n_train divisible by the number of processes."
            )
        if index.numel() != n or torch.unique(index).numel() != n:
            raise ValueError(
                f"decoupled descent is full-batch: a step saw {index.numel()} indices ({torch.unique(index).numel()} "
                f"distinct) of {n} samples. It needs batch_size >= n_train (under DDP, n_train divisible by "
                "the number of processes) and do not limit the training batches."
            )
        order = torch.argsort(index)
        grad = grad[order].to(self.memory.dtype)
        coupling = sgd["weight_decay"] * torch.eye(self.width, dtype=self.memory.dtype, device=grad.device)
        coupling = coupling + onsager.to(self.memory.dtype)
        velocity = self.velocity if bool(self.started) else None
        self.memory, self.velocity = sgd_filter_step(
            self.memory, velocity, grad, coupling, sgd["lr"], sgd["momentum"], sgd["dampening"]
        )
        self.started = torch.ones_like(self.started)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        stored = state_dict.get(prefix + "memory")
        if stored is not None:
            self.allocate(stored.shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
