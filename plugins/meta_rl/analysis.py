"""Report sections of the meta_rl experiments (``analysis:`` in ``configs/meta_rl/experiments/*.yaml``).

- :func:`exactness_rows`: how far the *expected* meta-gradient estimators are from the exact meta-gradient, by
  exact enumeration of every inner and outer batch of small bandits and tabular MDPs (float64, closed form; no run
  is read). E[SG-MRL] = grad V holds to rounding; MAML and first-order MAML miss by their bias.
- :func:`wall_time_rows`: mean wall time of a run (fit + test, from the run records) per variant.
- :func:`estimator_study_report`: bias, variance and MSE of every meta-gradient estimator against the exact
  meta-gradient as a function of the inner batch size N, from the ``test/study_*`` metrics of the runs (computed by
  :mod:`~framework_plugins.meta_rl.estimator_study` in ``MetaRL``'s test): tables, findings and a log-log figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framework.experiments.stats import summarize, t_interval
from framework.figures import pyplot
from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv
from framework_plugins.meta_rl.estimator_study import STUDY_ESTIMATORS
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


Runs = dict[tuple[str, int], dict[str, Any]]
STUDY_FIGURE = "estimator_study.png"
SHOWN_STATS = {"bias": "bias", "variance": "variance", "mse": "MSE"}
BIAS_FLOOR = 1e-18  # an exact 0 (or rounding) bias drawn on the log axis


@dataclass(frozen=True)
class StudyCell:
    """Mean over seeds of one study metric, its two-sided 95% t interval (NaN for one seed), the seed count and
    the smallest and largest value over seeds."""

    mean: float
    low: float
    high: float
    n: int
    smallest: float
    largest: float


def study_sizes(runs: Runs, variant: str) -> list[int]:
    """The inner batch sizes N with a ``test/study_grad_norm_N<n>`` metric in an ok run of ``variant``, sorted."""
    sizes = {
        int(key.rsplit("_N", 1)[1])
        for (v, _), r in runs.items()
        if v == variant and r.get("status") == "ok"
        for key in r.get("metrics", {})
        if key.startswith("test/study_grad_norm_N")
    }
    return sorted(sizes)


def study_cell(runs: Runs, variant: str, key: str) -> StudyCell:
    """Mean and 95% t interval over the ok seeds of ``variant`` of the metric ``key``."""
    values = [
        float(r["metrics"][key])
        for (v, _), r in runs.items()
        if v == variant and r.get("status") == "ok" and key in r.get("metrics", {})
    ]
    s = summarize(values)
    low, high = t_interval(s.mean, s.sd, s.n)
    return StudyCell(s.mean, low, high, s.n, min(values, default=math.nan), max(values, default=math.nan))


def study_table(runs: Runs, variant: str) -> dict[tuple[str, str, int], StudyCell]:
    """(estimator, stat, N) -> cell for every estimator of :data:`STUDY_ESTIMATORS`, stat in bias, variance, mse,
    mc_z, and N of :func:`study_sizes`."""
    return {
        (est, stat, n): study_cell(runs, variant, f"test/study_{stat}_{est}_N{n}")
        for est in STUDY_ESTIMATORS
        for stat in (*SHOWN_STATS, "mc_z")
        for n in study_sizes(runs, variant)
    }


def cell_text(stat: str, cell: StudyCell) -> str:
    """``mean [low, high]`` in two significant digits; a bias at rounding level as ``< 1e-13``."""
    if stat == "bias" and cell.mean < ROUNDING:
        return error_text(cell.mean)
    if not np.isfinite(cell.low):
        return f"{cell.mean:.2g}"
    return f"{cell.mean:.2g} [{cell.low:.2g}, {cell.high:.2g}]"


def break_even(table: dict[tuple[str, str, int], StudyCell], unbiased: str, biased: str, n: int) -> float:
    """K* = (var_u - var_b) / bias_b^2 from the seed means (mean bias^2 = mean MSE - mean variance): the number of
    independent estimates to average before the unbiased estimator's MSE var_u / K drops below the biased one's
    bias_b^2 + var_b / K."""
    bias2 = table[biased, "mse", n].mean - table[biased, "variance", n].mean
    return (table[unbiased, "variance", n].mean - table[biased, "variance", n].mean) / bias2


def study_findings(table: dict[tuple[str, str, int], StudyCell], sizes: list[int]) -> list[str]:
    """Plain statements read off the table: which estimators are unbiased at every N, how MAML's bias and each
    estimator's variance change from the smallest to the largest N, and the lowest-MSE estimator per N."""
    first, last = sizes[0], sizes[-1]
    unbiased = [e for e in STUDY_ESTIMATORS if all(table[e, "bias", n].mean < ROUNDING for n in sizes)]
    lines = [f"- Bias at rounding level (< {ROUNDING:.0e}) at every N: {', '.join(unbiased) or 'none'}."]
    for est in STUDY_ESTIMATORS:
        if est in unbiased:
            continue
        b0, b1 = table[est, "bias", first].mean, table[est, "bias", last].mean
        lines.append(f"- {est}: relative bias {b0:.3g} at N={first}, {b1:.3g} at N={last} (x{b1 / b0:.2g}).")
    for est in STUDY_ESTIMATORS:
        v0, v1 = table[est, "variance", first].mean, table[est, "variance", last].mean
        lines.append(f"- {est}: relative variance {v0:.3g} at N={first}, {v1:.3g} at N={last} (x{v1 / v0:.2g}).")
    for est in unbiased:
        k = [break_even(table, est, "maml", n) for n in (first, last)]
        lines.append(
            f"- {est} vs maml: averaging K independent estimates divides each variance by K and leaves MAML's bias, "
            f"so {est} has the lower MSE only for K > K* = (var_{est} - var_maml) / bias_maml^2: K* = {k[0]:.3g} at "
            f"N={first}, {k[1]:.3g} at N={last}."
        )
    best = []
    for n in sizes:
        low = min(table[e, "mse", n].mean for e in STUDY_ESTIMATORS)
        best.append(" = ".join(e for e in STUDY_ESTIMATORS if table[e, "mse", n].mean <= low * (1 + 1e-6)))
    lines.append("- Lowest mean MSE per N: " + ", ".join(f"N={n}: {b}" for n, b in zip(sizes, best, strict=True)) + ".")
    z = max(table[e, "mc_z", n].mean for e in STUDY_ESTIMATORS for n in sizes)
    lines.append(
        f"- Monte-Carlo check: the largest seed-mean of max_i |sample mean_i - E_i| / se_i is {z:.2f} standard "
        "errors (the real estimator's sample mean agrees with the exact expectation)."
    )
    return lines


def study_figure(path: Path, tables: dict[str, dict[tuple[str, str, int], StudyCell]], sizes: dict[str, list[int]]):
    """Rows = variants, columns = bias, variance, MSE against N (log-log), one line per estimator: the mean over
    seeds, error bars from the smallest to the largest seed (a t interval would reach below zero on a log axis);
    values below ``BIAS_FLOOR`` (an exact 0 bias) drawn at it."""
    plt = pyplot()
    fig, axes = plt.subplots(len(tables), 3, figsize=(13, 3.6 * len(tables)), squeeze=False)
    for row, (variant, table) in zip(axes, tables.items(), strict=True):
        ns = sizes[variant]
        for ax, (stat, label) in zip(row, SHOWN_STATS.items(), strict=True):
            for est in STUDY_ESTIMATORS:
                cells = [table[est, stat, n] for n in ns]
                mean = np.maximum([c.mean for c in cells], BIAS_FLOOR)
                low = np.maximum([c.smallest for c in cells], BIAS_FLOOR)
                high = np.maximum([c.largest for c in cells], BIAS_FLOOR)
                ax.errorbar(ns, mean, yerr=[mean - low, high - mean], marker="o", ms=3, capsize=2, label=est)
            ax.set(xscale="log", yscale="log", xlabel="inner batch size N", title=f"{variant}: relative {label}")
            ax.set_xticks(ns, [str(n) for n in ns])
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def estimator_study_report(out: Path, exp: dict[str, Any], runs: Runs, prefix: str) -> str:
    """``analysis:`` hook: per variant a table of relative bias, variance and MSE (mean over seeds, 95% t interval)
    per estimator and N, the findings, and the figure ``estimator_study.png``; then the wall-time table."""
    lines = [
        "## Estimator study: bias, variance and MSE against the exact meta-gradient",
        "",
        "Each seed is one task and one policy initialisation; on it, every estimator's exact expectation and the "
        "exact grad V are sums over the count vectors of the inner batch (float64), and its variance is "
        "tr Cov over Monte-Carlo draws of the real estimator (`MetaPolicyGradient.meta_step`). All three are "
        "relative to |grad V|: bias = |E[g] - grad V| / |grad V|, variance = tr Cov(g) / |grad V|^2, MSE = bias^2 + "
        "variance. Cells: mean over seeds [95% t interval]. `sgmrl` uses score baseline none, `sgmrl_pre_update` "
        "the pre-update batch, `sgmrl_inner_batch` and `sgmrl_learned` the per-step baselines of "
        "`score_baselines.py` (the learned weights fitted on the other Monte-Carlo copies of the task); "
        "`sgmrl_released` is the released code's estimator.",
        "",
    ]
    tables, sizes = {}, {}
    for variant in exp["variants"]:
        sizes[variant] = study_sizes(runs, variant)
        if not sizes[variant]:
            continue
        tables[variant] = table = study_table(runs, variant)
        seeds = max(c.n for c in table.values())
        lines += [f"### {variant} ({seeds} seeds)", ""]
        lines += ["| estimator | stat | " + " | ".join(f"N={n}" for n in sizes[variant]) + " |"]
        lines += ["|---|---|" + "---|" * len(sizes[variant])]
        for est in STUDY_ESTIMATORS:
            for stat, label in SHOWN_STATS.items():
                cells = " | ".join(cell_text(stat, table[est, stat, n]) for n in sizes[variant])
                lines.append(f"| {est} | {label} | {cells} |")
        lines += ["", *study_findings(table, sizes[variant]), ""]
    if tables:
        study_figure(out / STUDY_FIGURE, tables, sizes)
        lines += [
            f"![estimator study]({prefix}{STUDY_FIGURE})",
            "",
            "Figure: mean over seeds, bars from the smallest to the largest seed; `sgmrl_released` lies under `maml` "
            "and the other SG-MRL baselines under `sgmrl` in the bias panels (an exact 0 is drawn at "
            f"{BIAS_FLOOR:.0e}).",
            "",
        ]
    return "\n" + "\n".join(lines) + "\n" + wall_time_markdown(wall_time_rows(exp, runs))
