"""Report section of the meta-training experiments: the pairwise comparisons the papers' claims rest on, each with
its paired 95% t interval over seeds and a verdict read off the interval (so no verdict is typed by hand).

Comparisons (those whose two variants both ran): SG-MRL, its learned-baseline form, the released estimator and
FO-MAML against MAML; the learned score baseline against the leave-one-task-out one; and every trained variant
against the never-trained control ``untrained`` where the experiment has one. Metric: ``test/post_return``, the
held-out return after one inner step (what meta-training maximises), and ``test/final_return``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.experiments.stats import PairedDifference, paired_difference
from framework_plugins.meta_rl.analysis import Runs, wall_time_markdown, wall_time_rows

METRICS = ("test/post_return", "test/final_return")
# (variant, compared with, what the comparison tests)
PAIRS = (
    ("sgmrl", "maml", "the unbiased SG-MRL estimator vs MAML (SG-MRL paper)"),
    ("sgmrl_learned", "maml", "SG-MRL with the learned per-step score baseline vs MAML"),
    ("sgmrl_learned", "sgmrl", "the learned score baseline vs the leave-one-task-out baseline"),
    ("sgmrl_released", "maml", "the released SG-MRL code vs MAML (equal in expectation; tested draw for draw)"),
    ("fomaml", "maml", "first-order vs second-order MAML"),
    ("maml", "untrained", "MAML meta-training vs the never-trained control (MAML paper)"),
    ("sgmrl", "untrained", "SG-MRL meta-training vs the never-trained control"),
    ("sgmrl_learned", "untrained", "SG-MRL (learned baseline) meta-training vs the never-trained control"),
)


def seed_values(runs: Runs, variant: str, metric: str) -> dict[int, float]:
    """seed -> ``metric`` of the ok runs of ``variant``."""
    return {
        seed: float(r["metrics"][metric])
        for (v, seed), r in runs.items()
        if v == variant and r.get("status") == "ok" and metric in r.get("metrics", {})
    }


def verdict(diff: PairedDifference) -> str:
    """``higher`` / ``lower`` when the 95% interval excludes 0, ``no difference resolved`` when it contains it."""
    if diff.n < 2:
        return "too few seeds"
    if diff.low > 0:
        return "higher"
    if diff.high < 0:
        return "lower"
    return "no difference resolved"


def comparisons_markdown(exp: dict[str, Any], runs: Runs) -> str:
    """The comparison table: one row per (pair of :data:`PAIRS` present in ``exp``, metric of :data:`METRICS`)."""
    lines = [
        "## Comparisons behind the papers' claims",
        "",
        "Paired over seeds (variant minus the compared variant on the same seed; higher return is better); the "
        "verdict is read off the two-sided 95% t interval: `higher` or `lower` when it excludes 0.",
        "",
        "| comparison | metric | seeds | mean difference [95% CI] | better on seeds | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for variant, other, what in PAIRS:
        if variant not in exp["variants"] or other not in exp["variants"]:
            continue
        for metric in METRICS:
            diff = paired_difference(seed_values(runs, variant, metric), seed_values(runs, other, metric), "max")
            interval = f"{diff.mean:.3g} [{diff.low:.3g}, {diff.high:.3g}]"
            lines.append(
                f"| `{variant}` - `{other}`: {what} | {metric} | {diff.n} | {interval} | {diff.wins}/{diff.n} "
                f"| {verdict(diff)} |"
            )
    return "\n".join(lines) + "\n"


def training_comparisons(out: Path, exp: dict[str, Any], runs: Runs, prefix: str) -> str:
    """``analysis:`` hook: the comparison table and the wall-time table."""
    return "\n" + comparisons_markdown(exp, runs) + "\n" + wall_time_markdown(wall_time_rows(exp, runs))
