"""One full-batch step of decoupled descent (DD) or plain gradient descent (GD), shared by the decoupled_descent
plugin, the :class:`~framework.callbacks.DecoupledProbe` callback and the plain loops of tests and benchmarks.

DD (framework.optim.decoupled_descent):  P = A - Delta M;  SGD step on W with the gradient of sum_i l(P_i, y_i)
(M fixed);  M <- SGD filter of G + M (lam I + C)^T.   GD: the same with P = A (no memory).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from framework.optim.decoupled_descent import OnsagerMemory, onsager_matrix, per_sample_derivatives, sgd_coefficients
from framework.optim.readout import ReadoutNetwork, classification_error

Gather = Callable[[torch.Tensor], torch.Tensor]


def full_batch_step(
    net: ReadoutNetwork,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    index: torch.Tensor,
    memory: OnsagerMemory | None,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    gather: Gather = lambda t: t,
    world_size: int = 1,
) -> dict[str, torch.Tensor]:
    """One step at W^t; returns the train statistics of W^t over all samples (gathered over ranks):
    ``loss`` = mean l(P, y) (the objective DD descends), ``raw_loss`` = mean l(A, y), ``raw_error`` (the usual train
    error, from A), ``corrected_error`` (from P; equal to raw for GD).

    x: (b, d); y: (b,) in {-1, +1}; index: (b,) sample ids of this rank's rows. ``backward`` is
    ``LightningModule.manual_backward`` inside Lightning; ``gather`` concatenates a tensor over ranks; the summed loss
    is scaled by ``world_size`` so that DDP's gradient averaging yields the full-batch gradient X^T G / sqrt(d).
    """
    sgd = sgd_coefficients(optimizer) if memory is not None else None
    raw = net.preactivations(x)
    p = memory.correct(raw, index) if memory is not None else raw
    per_sample = net.loss(p, y)
    loss = per_sample.sum()
    if memory is not None:
        grad, hessians = per_sample_derivatives(loss, p)
    optimizer.zero_grad()
    backward(loss * world_size)
    optimizer.step()
    if memory is not None:
        onsager = onsager_matrix(gather(hessians), memory.noise_var, net.n_features)
        memory.step(gather(index), gather(grad), onsager, sgd)
    with torch.no_grad():
        stats = {
            "loss": per_sample,
            "raw_loss": net.loss(raw, y),
            "raw_error": classification_error(net.score(raw), y),
            "corrected_error": classification_error(net.score(p), y),
        }
        return {key: gather(value.detach()).mean() for key, value in stats.items()}
