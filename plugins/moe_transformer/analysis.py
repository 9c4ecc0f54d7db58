"""Report section of the optimizer comparison: steps to reach the reference's final validation loss, per seed.

Used as ``analysis: framework_plugins.moe_transformer.analysis:steps_to_target`` in
``configs/moe_transformer/experiments/optimizers.yaml``. For seed s the target is the reference variant's (AdamW's)
final validation loss L_ref(s); each variant's steps to target is the first step at which its validation curve
reaches L_ref(s), linearly interpolated between the two validations around the crossing (so the ratio is not
quantised to the validation cadence). The speed-up of variant v on seed s is steps_ref(s) / steps_v(s) (> 1: v
needs fewer steps); the report gives its paired mean over seeds with a t interval of the log ratios (a geometric
mean), and says on how many seeds a variant never reached the target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from framework.experiments.stats import summarize, t_interval

Runs = dict[tuple[str, int], dict[str, Any]]
CURVE = "val/loss"


def steps_to_reach(curve: list[list[float]], target: float) -> float | None:
    """The first step at which the piecewise-linear curve through the points [[step, loss], ...] falls to
    ``target`` (None if it never does). A curve that starts at or below the target reaches it at its first step."""
    points = sorted((float(s), float(v)) for s, v in curve)
    for i, (step, value) in enumerate(points):
        if value <= target:
            if i == 0:
                return step
            s0, v0 = points[i - 1]
            return s0 + (v0 - target) / (v0 - value) * (step - s0)
    return None


def speedups(runs: Runs, reference: str) -> dict[str, dict[int, float | None]]:
    """variant -> seed -> steps_ref / steps_variant at the reference's final validation loss (None: the variant
    never reached it). Seeds where the reference has no curve are left out."""
    curves = {
        key: r["curves"][CURVE] for key, r in runs.items() if r.get("status") == "ok" and r.get("curves", {}).get(CURVE)
    }
    out: dict[str, dict[int, float | None]] = {}
    for (variant, seed), curve in sorted(curves.items()):
        ref_curve = curves.get((reference, seed))
        if ref_curve is None:
            continue
        target = float(sorted(ref_curve)[-1][1])
        ref_steps, steps = steps_to_reach(ref_curve, target), steps_to_reach(curve, target)
        out.setdefault(variant, {})[seed] = None if steps is None or steps <= 0 else float(ref_steps) / steps
    return out


def steps_to_target(out: Path, exp: dict[str, Any], runs: Runs, prefix: str) -> str:
    """Markdown table: per variant, the geometric-mean speed-up over seeds (steps AdamW needs to reach its own final
    validation loss / steps the variant needs), its 95% t interval, the per-seed values and the seeds where the
    variant never got there."""
    reference = exp["reference"]
    table = speedups(runs, reference)
    lines = [
        f"**Steps to the reference's final `{CURVE}`** (per seed, target = `{reference}`'s final validation loss; "
        "speed-up = reference steps / variant steps, interpolated between validations; geometric mean over seeds "
        "with a 95% t interval of the log ratios):",
        "",
        "| variant | speed-up | 95% CI | per seed | never reached |",
        "|---|---|---|---|---|",
    ]
    for variant, per_seed in table.items():
        reached = [v for v in per_seed.values() if v is not None]
        logs = summarize([math.log(v) for v in reached])
        low, high = t_interval(logs.mean, logs.sd, logs.n)
        mean = f"{math.exp(logs.mean):.2f}x" if reached else "-"
        interval = f"[{math.exp(low):.2f}, {math.exp(high):.2f}]" if np.isfinite(low) else "-"
        seeds = ", ".join(f"{s}: {'-' if v is None else f'{v:.2f}'}" for s, v in sorted(per_seed.items()))
        never = sum(v is None for v in per_seed.values())
        lines.append(f"| {variant} | {mean} | {interval} | {seeds} | {never} of {len(per_seed)} |")
    return "\n".join(lines) + "\n"
