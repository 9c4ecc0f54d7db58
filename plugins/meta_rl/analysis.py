"""Report sections of the meta_rl experiments (``analysis:`` in ``configs/meta_rl/experiments/*.yaml``).

- :func:`exactness_rows`: how far the *expected* meta-gradient estimators are from the exact meta-gradient, by
  exact enumeration of every inner and outer batch of small bandits and tabular MDPs (float64, closed form; no run
  is read). E[SG-MRL] = grad V holds to rounding; MAML and first-order MAML miss by their bias.
- :func:`wall_time_rows`: mean wall time of a run (fit + test, from the run records) per variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv
from framework_plugins.meta_rl.exact import exact_return
from framework_plugins.meta_rl.expectations import (
    bandit_setup,
    exact_meta_objective,
    expected_estimator,
    hessians,
    mdp_setup,
)
from framework_plugins.meta_rl.meta import MetaPolicyGradient
from framework_plugins.meta_rl.policy import MLPPolicy

EXACT_ESTIMATORS = ("sgmrl", "maml", "fomaml")
INNER_LR = 0.5
Setup = Callable[..., tuple[TensorTaskEnv, Tasks, MLPPolicy]]


@dataclass(frozen=True)
class Case:
    """One enumerated setting (``label``: markdown, pipes escaped): ``setup(seed, **kwargs)`` gives the env, the
    task and the policy (MLP [4], float64); ``n_inner`` = |D_in| (trajectories in the inner batch; 0 for the
    Hessian case)."""

    label: str
    setup: Setup
    kwargs: dict[str, Any]
    n_inner: int
    seed: int


GRADIENT_CASES = (
    Case("bandit K=3, alpha=0.5, \\|D_in\\|=2", bandit_setup, {"n_arms": 3}, 2, 1),
    Case("MDP S=2 A=2 H=3, alpha=0.5, \\|D_in\\|=1", mdp_setup, {"horizon": 3}, 1, 2),
    Case("MDP S=2 A=2 H=2, alpha=0.5, \\|D_in\\|=2", mdp_setup, {"horizon": 2}, 2, 3),
)
HESSIAN_CASE = Case("MDP S=2 A=2 H=3 gamma=0.9", mdp_setup, {"horizon": 3}, 0, 7)
HESSIAN_GAMMA = 0.9


@dataclass(frozen=True)
class Row:
    """One line of the exactness table: ``kind`` in {``estimator``, ``gain``, ``hessian``}, ``name`` (the
    estimator or Hessian estimator), ``value`` (max abs error; for ``gain`` the signed V - J) and ``scale`` (max
    abs entry of the exact quantity, None for ``gain``)."""

    case: str
    kind: str
    name: str
    value: float
    scale: float | None


def max_abs_error(got: list[torch.Tensor], exact: list[torch.Tensor]) -> float:
    """max_i max |got_i - exact_i| over a list of same-shaped tensors."""
    return max((a - b).abs().max().item() for a, b in zip(got, exact, strict=True))


def gradient_rows(case: Case) -> list[Row]:
    """For each estimator e: max |E[e] - grad V| with V(theta) = E_{D_in}[J(theta + alpha g_hat(theta, D_in))] (one
    inner step, |D_o| = 1, score baseline ``none``), and the gain V(theta) - J(theta) of one inner step."""
    env, task, policy = case.setup(case.seed, **case.kwargs)
    metas = {e: MetaPolicyGradient(policy, INNER_LR, 1.0, estimator=e, score_baseline="none") for e in EXACT_ESTIMATORS}
    value = exact_meta_objective(metas["sgmrl"], env, task, case.n_inner)
    exact = list(torch.autograd.grad(value, list(policy.parameters())))
    scale = max(g.abs().max().item() for g in exact)
    rows = [
        Row(case.label, "estimator", e, max_abs_error(expected_estimator(m, env, task, case.n_inner), exact), scale)
        for e, m in metas.items()
    ]
    gain = value.item() - exact_return(policy, policy.params(), env, task, 1.0).item()
    return [*rows, Row(case.label, "gain", "V - J", gain, None)]


def hessian_rows(case: Case, gamma: float) -> list[Row]:
    """max |E[Hessian estimator] - hess J| for the DiCE and the REINFORCE-surrogate Hessians (expectations exact)."""
    env, task, policy = case.setup(case.seed, **case.kwargs)
    h = hessians(policy, env, task, gamma)
    scale = h["exact"].abs().max().item()
    return [Row(case.label, "hessian", k, (h[k] - h["exact"]).abs().max().item(), scale) for k in ("dice", "reinforce")]


def exactness_rows() -> list[Row]:
    """Every row of the exactness table; the global torch RNG is restored afterwards."""
    with torch.random.fork_rng():
        return [r for case in GRADIENT_CASES for r in gradient_rows(case)] + hessian_rows(HESSIAN_CASE, HESSIAN_GAMMA)


ROUNDING = 1e-13  # float64 enumeration sums of O(1) terms agree to ~1e-16; their last digits vary by machine


def error_text(value: float) -> str:
    """``value`` in scientific notation, or ``< 1e-13`` at float64 rounding level (so the report is the same on every
    machine, whose summation order decides those last digits)."""
    return f"< {ROUNDING:.0e}" if value < ROUNDING else f"{value:.1e}"


def exactness_markdown(rows: list[Row]) -> str:
    """The exactness table as a markdown section."""
    lines = [
        "## Exactness of the meta-gradient estimators (exact enumeration, float64; no runs)",
        "",
        "Every inner batch D_in and every one-trajectory outer batch D_o of a small task is enumerated with its "
        "probability, so E[estimator] and the exact grad V of V(theta) = E_{D_in}[J(theta + alpha g_hat(theta, "
        "D_in))] are computed without sampling (policy MLP [4], score baseline none, gamma 1). SG-MRL is unbiased "
        "when its error is at rounding level; MAML and first-order MAML (fomaml) are biased.",
        "",
        "| case | check | max abs error (V - J for the gain) | scale (max abs of the exact quantity) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if r.kind == "estimator":
            lines.append(f"| {r.case} | E[{r.name}] vs grad V | {error_text(r.value)} | {r.scale:.3f} |")
        elif r.kind == "gain":
            lines.append(f"| {r.case} | V(theta) - J(theta) (> 0: one inner step helps) | {r.value:+.2e} | - |")
        else:
            lines.append(f"| {r.case} | E[{r.name} Hessian] vs hess J | {error_text(r.value)} | {r.scale:.3f} |")
    return "\n".join(lines) + "\n"


def wall_time_rows(exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]]) -> list[tuple[str, int, float]]:
    """(variant, number of ok runs, mean ``wall_s`` over them) per variant of ``exp``, in file order."""
    rows = []
    for variant in exp["variants"]:
        times = [r["wall_s"] for (v, _), r in runs.items() if v == variant and r.get("status") == "ok"]
        rows.append((variant, len(times), float(np.mean(times)) if times else float("nan")))
    return rows


def wall_time_markdown(rows: list[tuple[str, int, float]]) -> str:
    """The wall-time table as a markdown section."""
    lines = [
        "## Wall time per run",
        "",
        "Mean over seeds of the wall time of one run (fit and test in one process, start-up included; shared CPU, "
        "so only a rough guide to the cost of each estimator).",
        "",
        "| variant | runs | wall time per run (s) |",
        "|---|---|---|",
    ]
    lines += [f"| {v} | {n} | {t:.1f} |" for v, n, t in rows]
    return "\n".join(lines) + "\n"


def wall_time(out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str) -> str:
    """``analysis:`` hook: the wall-time table."""
    return "\n" + wall_time_markdown(wall_time_rows(exp, runs))


def exactness_and_wall_time(
    out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str
) -> str:
    """``analysis:`` hook: the exactness table (closed form) and the wall-time table."""
    return "\n" + exactness_markdown(exactness_rows()) + "\n" + wall_time_markdown(wall_time_rows(exp, runs))
