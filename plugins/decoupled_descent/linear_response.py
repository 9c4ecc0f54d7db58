"""The matrix Onsager correction: decoupled descent without the isotropy assumption (``onsager: matrix``).

The scalar correction P = A - Delta M (README, "Why the correction cancels the data-reuse bias") needs the features
to be isotropic, so that H_{-i} = sum_{j != i} H_j x_j x_j^T / d acts on x_i as the scalar C. Without that step the
first-order leave-one-out argument still holds, with a d-dimensional response per sample instead of a scalar:

    R_i^t = W^t - W_{-i}^t  (K, d),   the effect of sample i on the iterate, to first order:
    R_i^{t+1} = R_i^t - eta_t * SGDfilter( G_i^t x_i^T / sqrt(d)                                  (its own gradient)
                                         + sum_{j != i} H_j^t (R_i^t x_j / sqrt(d)) x_j^T / sqrt(d) (its effect on
                                                                                                     the others)
                                         + lam R_i^t ),                                  R_i^0 = 0,
    c_i^t = R_i^t x_i / sqrt(d)  (K,)   (the self-influence of sample i on its own field),
    P_i^t = A_i^t - c_i^t               (the cavity field x_i . W_{-i}^t / sqrt(d), up to second order).

For isotropic x this reduces to the scalar rule (R_i ~ M_i x_i / sqrt(d), c_i ~ Delta M_i); it needs no Delta at
all. The price is memory and time: R is (n, K, d) and a step costs O(n^2 K d) (the n x n products x_j . R_i),
against O(n d K) for the scalar rule. The SGD filter is torch.optim.SGD's (momentum, dampening, weight decay), as
for the scalar memory. Full batch, one process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from framework.optim.decoupled_descent import per_sample_derivatives, sgd_coefficients, sgd_filter_step
from framework.optim.readout import ReadoutNetwork, classification_error


def response_drive(response: torch.Tensor, x: torch.Tensor, grad: torch.Tensor, hessians: torch.Tensor) -> torch.Tensor:
    """The gradient the SGD filter applies to R (without the weight-decay term), for every sample at once:

        drive_i = G_i x_i^T / sqrt(d) + sum_{j != i} H_j (R_i x_j / sqrt(d)) x_j^T / sqrt(d).

    response: R (n, K, d); x: (n, d); grad: G (n, K); hessians: H (n, K, K) -> (n, K, d).
    """
    scale = math.sqrt(x.shape[1])
    fields = torch.einsum("ikd,jd->ijk", response, x) / scale  # R_i x_j / sqrt(d): (n_i, n_j, K)
    pushed = torch.einsum("jkl,ijl->ijk", hessians, fields)  # H_j (R_i x_j / sqrt(d)), then drop j = i
    pushed = pushed.masked_fill(torch.eye(len(x), dtype=torch.bool, device=x.device)[:, :, None], 0.0)
    others = torch.einsum("ijk,jd->ikd", pushed, x) / scale
    return grad[:, :, None] * x[:, None, :] / scale + others


class LinearResponseMemory(nn.Module):
    """Per-sample responses R (n, K, d) with their SGD velocity and the corrections c (n, K) they give, as buffers
    (checkpointed; a resumed run is exact). Same ``correct`` interface as
    :class:`~framework.optim.decoupled_descent.OnsagerMemory`.

    Args:
        width: K, the number of first-layer units.
    """

    def __init__(self, width: int = 1) -> None:
        super().__init__()
        self.width = width
        self.register_buffer("response", torch.zeros(0, width, 0, dtype=torch.float64))
        self.register_buffer("velocity", torch.zeros(0, width, 0, dtype=torch.float64))
        self.register_buffer("correction", torch.zeros(0, width, dtype=torch.float64))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def allocate(self, n_samples: int, n_features: int) -> None:
        """R^0 = 0 for ``n_samples`` samples of ``n_features`` features, unless already of that size."""
        if tuple(self.response.shape) != (n_samples, self.width, n_features):
            device = self.response.device
            self.response = torch.zeros(n_samples, self.width, n_features, dtype=torch.float64, device=device)
            self.velocity = torch.zeros_like(self.response)
            self.correction = torch.zeros(n_samples, self.width, dtype=torch.float64, device=device)
            self.started = torch.zeros((), dtype=torch.bool, device=device)

    def correct(self, raw: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """P = A - c[index]. raw: (b, K), index: (b,) -> (b, K) in raw's dtype."""
        return raw - self.correction[index].to(raw.dtype)

    def step(
        self, x: torch.Tensor, index: torch.Tensor, grad: torch.Tensor, hessians: torch.Tensor, sgd: dict[str, float]
    ) -> None:
        """R <- SGD filter of (:func:`response_drive` + lam R), then c_i = R_i x_i / sqrt(d).

        x: (n, d), index: (n,) every training sample once, grad: (n, K), hessians: (n, K, K), rows in ``index``
        order; sgd: :func:`~framework.optim.decoupled_descent.sgd_coefficients` of the optimizer that stepped W.
        """
        n = self.response.shape[0]
        if index.numel() != n or torch.unique(index).numel() != n:
            raise ValueError(
                f"onsager='matrix' is full-batch: a step saw {index.numel()} indices of {n} samples; use "
                "batch_size >= n_train in one process."
            )
        order = torch.argsort(index)
        x, grad, hessians = (t[order].to(torch.float64) for t in (x, grad, hessians))
        drive = response_drive(self.response, x, grad, hessians)
        shape, decay = self.response.shape, torch.full((1, 1), sgd["weight_decay"], dtype=torch.float64)
        state, velocity = sgd_filter_step(
            self.response.reshape(-1, 1),
            self.velocity.reshape(-1, 1) if bool(self.started) else None,
            drive.reshape(-1, 1),
            decay.to(drive.device),
            sgd["lr"],
            sgd["momentum"],
            sgd["dampening"],
        )
        self.response, self.velocity = state.reshape(shape), velocity.reshape(shape)
        self.correction = torch.einsum("ikd,id->ik", self.response, x) / math.sqrt(x.shape[1])
        self.started = torch.ones_like(self.started)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        stored = state_dict.get(prefix + "response")
        if stored is not None:
            self.allocate(stored.shape[0], stored.shape[2])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def linear_response_step(
    net: ReadoutNetwork,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    index: torch.Tensor,
    memory: LinearResponseMemory,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
) -> dict[str, torch.Tensor]:
    """One full-batch DD step with the matrix correction; the counterpart of
    :func:`framework.optim.decoupled_step.full_batch_step` (same returned statistics of W^t: ``loss``,
    ``raw_loss``, ``raw_error``, ``corrected_error``). x: (n, d), y: (n,) in {-1, +1}, index: (n,)."""
    sgd = sgd_coefficients(optimizer)
    raw = net.preactivations(x)
    p = memory.correct(raw, index)
    per_sample = net.loss(p, y)
    loss = per_sample.sum()
    grad, hessians = per_sample_derivatives(loss, p)
    optimizer.zero_grad()
    backward(loss)
    optimizer.step()
    memory.step(x.detach(), index, grad, hessians, sgd)
    with torch.no_grad():
        return {
            "loss": per_sample.mean(),
            "raw_loss": net.loss(raw, y).mean(),
            "raw_error": classification_error(net.score(raw), y).mean(),
            "corrected_error": classification_error(net.score(p), y).mean(),
        }
