"""A plain full-batch training loop (no Lightning) for the DecoupledProbe callback, tests and the reproduction;
each step is :func:`framework.optim.decoupled_step.full_batch_step`, the same as in the LightningModule."""

from __future__ import annotations

from collections.abc import Callable

import torch

from framework.optim.decoupled_descent import OnsagerMemory
from framework.optim.decoupled_step import full_batch_step
from framework.optim.readout import ReadoutNetwork


def train_full_batch(
    net: ReadoutNetwork,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    method: str = "dd",
    noise_var: float = 1.0,
    evaluate: Callable[[ReadoutNetwork], dict[str, float]] | None = None,
    **sgd: float,
) -> tuple[dict[str, list[float]], OnsagerMemory | None]:
    """Run ``steps`` steps of DD (``method="dd"``) or GD with ``torch.optim.SGD(net.parameters(), **sgd)``.

    Returns the history (lists over t = 0..steps-1 of ``loss``, ``raw_loss``, ``raw_error``, ``corrected_error``
    of W^t, and ``evaluate(net)``'s keys at t = 0..steps) and the final Onsager memory (None for GD).
    x: (n, d), y: (n,) in {-1, +1}.
    """
    if method not in ("dd", "gd"):
        raise ValueError(f"method={method!r} is unknown; choose 'dd' or 'gd'.")
    optimizer = torch.optim.SGD(net.parameters(), **sgd)
    memory = OnsagerMemory(net.first.out_features, noise_var) if method == "dd" else None
    if memory is not None:
        memory.allocate(len(x))
    index = torch.arange(len(x))
    history: dict[str, list[float]] = {}
    for t in range(steps + 1):
        for key, value in (evaluate(net) if evaluate is not None else {}).items():
            history.setdefault(key, []).append(value)
        if t == steps:
            break
        for key, value in full_batch_step(net, optimizer, x, y, index, memory).items():
            history.setdefault(key, []).append(value.item())
    return history, memory
