"""Named parameter groups: the one place that decides which parameters get weight decay and how they are routed.

Every group carries ``name`` (so ``LearningRateMonitor`` logs ``lr-<Optimizer>/<name>``) and ``param_names``
(so an optimizer that routes by name and shape, e.g. Muon sending 2-D hidden weights to orthogonalized updates and
embeddings/heads/norms/biases to AdamW, can see which tensor is which).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

NO_DECAY_NAME_PARTS = ("bias", "norm", "embed", "pos_", "ln_", "bn")


def default_no_decay(name: str, param: nn.Parameter) -> bool:
    """No weight decay for vectors/scalars (biases, norm gains) and for embeddings and norm layers by name."""
    lowered = name.lower()
    return param.ndim < 2 or any(part in lowered for part in NO_DECAY_NAME_PARTS)


def named_param_groups(
    module: nn.Module,
    no_decay: Callable[[str, nn.Parameter], bool] = default_no_decay,
    route: Callable[[str, nn.Parameter], str] | None = None,
) -> list[dict[str, Any]]:
    """Split ``module``'s trainable parameters into named groups.

    Groups are keyed by ``(route(name, p), no_decay(name, p))`` in first-seen order. No-decay groups set
    ``weight_decay=0.0``; decay groups leave it unset so the optimizer's own ``weight_decay`` (from YAML) applies.

    Args:
        module: the model whose ``named_parameters()`` are grouped (frozen parameters are skipped).
        no_decay: predicate selecting parameters exempt from weight decay.
        route: optional label per parameter (e.g. ``"hidden_matrix"`` vs ``"other"``); each label gets its own
            groups, recorded under ``group["route"]``.

    Returns:
        A list of dicts ``{"params", "param_names", "name", "route"[, "weight_decay"]}`` accepted by any
        ``torch.optim.Optimizer``.
    """
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        label = route(name, param) if route is not None else "default"
        exempt = no_decay(name, param)
        key = (label, exempt)
        if key not in groups:
            group: dict[str, Any] = {
                "params": [],
                "param_names": [],
                "name": f"{label}/{'no_decay' if exempt else 'decay'}"
                if route
                else ("no_decay" if exempt else "decay"),
                "route": label,
            }
            if exempt:
                group["weight_decay"] = 0.0
            groups[key] = group
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    if not groups:
        raise ValueError(
            f"{type(module).__name__} has no trainable parameters (requires_grad=True); nothing to optimize. "
            "Unfreeze at least one parameter or use `framework test` instead of `fit`."
        )
    return list(groups.values())


def build_optimizer(
    factory: Callable[[list[dict[str, Any]]], torch.optim.Optimizer], groups: list[dict[str, Any]]
) -> torch.optim.Optimizer:
    """``factory(groups)``; ``torch.optim.Muon``'s refusal of a parameter that is not 2-D (every model has biases
    and norm gains) becomes one line that names the model's first such parameter and points to
    :class:`framework.optim.Muon`, which sends those parameters to AdamW."""
    try:
        return factory(groups)
    except ValueError as error:
        if "only supports 2D parameters" not in str(error):
            raise
    # raised outside the handler, so that the config-key mapping (which reads the root cause) shows this message
    others = [
        (name, tuple(p.shape))
        for group in groups
        for name, p in zip(group.get("param_names", [""] * len(group["params"])), group["params"], strict=True)
        if p.ndim != 2
    ]
    name, shape = others[0]
    raise ValueError(
        f"model.init_args.optimizer: torch.optim.Muon takes only 2-D parameters and this model has {len(others)} "
        f"others (e.g. {name!r} of "
        f"shape {shape}); use framework.optim.Muon, which gives them AdamW (same Muon update on the matrices)."
    )


def check_group_values_representable(optimizer: torch.optim.Optimizer) -> None:
    """Raise ``ValueError`` naming the hyperparameter when a numeric value of a parameter group (``lr``,
    ``weight_decay``, each of ``betas``, ...) is not finite or exceeds the largest number of its parameters' dtype:
    ``lr=1e300`` on float32 weights would overflow inside the update (a traceback from deep in ``torch.optim``)."""
    for group in optimizer.param_groups:
        dtypes = {p.dtype for p in group["params"] if p.is_floating_point()}
        if not dtypes:
            continue
        largest = min(torch.finfo(dtype).max for dtype in dtypes)
        for key, value in group.items():
            numbers = value if isinstance(value, tuple | list) else (value,)
            for number in numbers:
                if isinstance(number, float) and not (math.isfinite(number) and abs(number) <= largest):
                    raise ValueError(
                        f"{key}={value!r} is not representable in the parameters' "
                        f"{'/'.join(sorted(str(d).removeprefix('torch.') for d in dtypes))} (largest {largest:.3g}); "
                        f"the update would overflow: choose a finite value well below that."
                    )
