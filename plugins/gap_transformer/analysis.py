"""Report section of the gap_transformer experiments (``analysis:`` in ``configs/gap_transformer/experiments/*.yaml``).

:func:`gap_report` adds, to the generated tables:

- paired per-seed differences of test MSE for the questions the paper's argument rests on (gap penalty on vs off,
  residual vs not, triplet vs grid tokens, the transformer vs each baseline), 95% t intervals over the seeds;
- figures pooled over the seeds' test splits: predicted vs observed, calibration (mean observed change per decile
  of the prediction), test MSE by the time since the previous visit and by the age of the latest leading biomarker,
  and the learned gap penalty softplus(rho_h) per head and seed (from the ``test/gap_slope_l<l>h<h>`` metrics),
  beside its initial value and the simulator's information-decay rate 1 / tau (the correlation of the rate
  fluctuation decays with the gap as exp(-gap / tau); the rate is 0 without the gap effect:
  :func:`gap_report_no_gap_effect`).

The per-anchor test predictions are gathered from the runs' ``test_predictions.csv`` into
``<out>/test_predictions.csv.gz`` (committed with the results), so the figures can be redrawn without the run
directories.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from framework.experiments.stats import paired_difference
from framework.figures import pyplot
from framework_plugins.gap_transformer.attention import GapAwareSelfAttention
from framework_plugins.gap_transformer.features import NEVER
from framework_plugins.gap_transformer.module import PREDICTIONS_FILE
from framework_plugins.gap_transformer.synthetic import SimulatorConfig

PREDICTIONS = "test_predictions.csv.gz"
QUESTIONS = (  # (variant, against, what the difference answers)
    ("gap_transformer", "no_gap_penalty", "does the learned gap penalty help?"),
    ("learned_penalty", "no_gap_penalty", "does a gap penalty trained at a scaled learning rate help?"),
    ("gap_transformer", "no_residual", "does learning the residual over the LME help?"),
    ("gap_transformer", "grid_tokens", "do triplet tokens beat one token per visit?"),
    ("gap_transformer", "least_squares", "vs least squares on history summaries"),
    ("gap_transformer", "boosted_trees", "vs boosted trees on history summaries"),
    ("gap_transformer", "grud", "vs GRU-D"),
    ("gap_transformer", "strats", "vs STraTS"),
    ("boosted_trees", "least_squares", "nonlinear vs linear on the same summaries"),
)
# (edges, labels): years since the previous visit (NEVER = the anchor is the first visit) and since the latest
# leading biomarker (0 = measured at the anchor visit, NEVER = never measured)
GAP_BINS = ((0.0, 0.75, 1.25, 2.0, NEVER - 1e-9, math.inf), ("< 0.75", "0.75-1.25", "1.25-2", ">= 2", "first visit"))
AGE_BINS = ((0.0, 1e-9, 1.0, 2.0, NEVER - 1e-9, math.inf), ("at anchor", "(0, 1)", "1-2", ">= 2", "never"))
SLOPE = re.compile(r"test/gap_slope_l(\d+)h(\d+)")


def _values(runs: dict[tuple[str, int], dict[str, Any]], variant: str, metric: str) -> dict[int, float]:
    return {
        s: float(r["metrics"][metric])
        for (v, s), r in runs.items()
        if v == variant and r.get("status") == "ok" and metric in r.get("metrics", {})
    }


def question_rows(exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """Markdown rows: variant - against on test MSE per seed, mean, 95% t interval, seeds where the variant wins."""
    rows = []
    for variant, against, what in QUESTIONS:
        if variant not in exp["variants"] or against not in exp["variants"]:
            continue
        d = paired_difference(_values(runs, variant, "test/mse"), _values(runs, against, "test/mse"), "min")
        if d.n == 0:
            continue
        rows.append(
            f"| {variant} - {against} | {what} | {d.n} | {d.mean:+.3f} | [{d.low:+.3f}, {d.high:+.3f}] | "
            f"{d.wins}/{d.n} |"
        )
    return rows


def gather_predictions(out: Path, runs: dict[tuple[str, int], dict[str, Any]]) -> pd.DataFrame | None:
    """Every ok run's test predictions (columns of ``test_predictions.csv`` plus variant, seed), written to
    ``out/test_predictions.csv.gz`` when the run directories are here, else read from it; None if neither."""
    frames = []
    for (variant, seed), record in sorted(runs.items()):
        path = Path(record.get("run_dir", "")) / PREDICTIONS_FILE
        if record.get("status") == "ok" and path.is_file():
            frames.append(pd.read_csv(path).assign(variant=variant, seed=seed))
    if frames:
        table = pd.concat(frames, ignore_index=True)
        table.to_csv(out / PREDICTIONS, index=False, float_format="%.5g")
        return table
    return pd.read_csv(out / PREDICTIONS) if (out / PREDICTIONS).is_file() else None


def binned_mse(table: pd.DataFrame, column: str, edges: tuple[float, ...]) -> pd.DataFrame:
    """Per variant and bin of ``column``: the mean over seeds of the per-seed MSE in the bin, its standard error
    over seeds and the anchors per seed (rows: variant; columns: bin)."""
    binned = table.assign(
        bin=pd.cut(table[column], edges, right=False, labels=False), sq=(table.prediction - table.observed) ** 2
    )
    per_seed = binned.groupby(["variant", "bin", "seed"])["sq"].agg(["mean", "size"]).reset_index()
    return per_seed.groupby(["variant", "bin"]).agg(
        mse=("mean", "mean"), se=("mean", lambda x: x.std(ddof=1) / math.sqrt(len(x))), n=("size", "mean")
    )


def draw_figures(out: Path, table: pd.DataFrame, order: list[str]) -> list[str]:
    """predicted_vs_observed.png, calibration.png, error_by_gap.png in ``out``; returns their names."""
    plt = pyplot()
    variants = [v for v in order if v in set(table.variant)]
    cols = min(3, len(variants))
    rows = math.ceil(len(variants) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.6 * rows), sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(variants) :]:
        ax.set_visible(False)
    for ax, variant in zip(axes.flat, variants, strict=False):
        part = table[table.variant == variant]
        ax.scatter(part.observed, part.prediction, s=3, alpha=0.25)
        lo, hi = float(table.observed.min()), float(table.observed.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(title=variant, xlabel="observed change", ylabel="predicted change")
    fig.tight_layout()
    fig.savefig(out / "predicted_vs_observed.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4))
    edges = np.quantile(table.prediction, np.linspace(0, 1, 11))
    points = []
    for variant in variants:
        part = table[table.variant == variant]
        decile = np.clip(np.searchsorted(edges, part.prediction, side="right") - 1, 0, 9)
        means = part.groupby(decile)[["prediction", "observed"]].mean()
        ax.plot(means.prediction, means.observed, "o-", ms=3, label=variant)
        points.append(means.to_numpy())
    lo, hi = float(np.min(np.concatenate(points))), float(np.max(np.concatenate(points)))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xlabel="mean predicted (decile of the pooled predictions)", ylabel="mean observed", title="calibration")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, column, (bins, labels), title in (
        (axes[0], "gap", GAP_BINS, "years since the previous visit"),
        (axes[1], "biomarker_age", AGE_BINS, "years since the latest leading biomarker"),
    ):
        stats = binned_mse(table, column, bins)
        for k, variant in enumerate(variants):
            s = stats.loc[variant]
            ax.errorbar(s.index + 0.06 * (k - len(variants) / 2), s.mse, yerr=s.se, fmt="o-", ms=3, label=variant)
        ax.set_xticks(range(len(labels)), list(labels), fontsize=7)
        ax.set(xlabel=title, ylabel="test MSE (mean over seeds +- SE)")
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "error_by_gap.png", dpi=100)
    plt.close(fig)
    return ["predicted_vs_observed", "calibration", "error_by_gap"]


def slope_table(exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]]) -> pd.DataFrame:
    """Rows (variant, seed, layer, head, slope) of every run that logged learned gap penalties."""
    rows = [
        (v, s, int(m.group(1)), int(m.group(2)), value)
        for (v, s), r in runs.items()
        if r.get("status") == "ok"
        for key, value in r.get("metrics", {}).items()
        if (m := SLOPE.fullmatch(key))
    ]
    return pd.DataFrame(rows, columns=["variant", "seed", "layer", "head", "slope"])


def initial_slopes(n_heads: int) -> np.ndarray:
    """(n_heads,) softplus(rho_h) at initialisation (the attention's default geometric spread)."""
    return GapAwareSelfAttention(n_heads, n_heads).slopes().detach().numpy()


def draw_slopes(out: Path, slopes: pd.DataFrame, decay_rate: float) -> None:
    """gap_slopes.png: the learned softplus(rho_h) per head (x) and seed (dots), one colour per variant; crosses at
    the initial values and a dashed line at the simulator's decay rate ``decay_rate`` (when > 0, the log axis)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    heads = sorted({(layer, head) for layer, head in zip(slopes.layer, slopes["head"], strict=True)})
    variants = list(dict.fromkeys(slopes.variant))
    for k, variant in enumerate(variants):
        part = slopes[slopes.variant == variant]
        x = [
            heads.index((a, b)) + 0.12 * (k - (len(variants) - 1) / 2)
            for a, b in zip(part.layer, part["head"], strict=True)
        ]
        ax.scatter(x, part.slope, s=10, alpha=0.7, label=variant)
    start = initial_slopes(int(slopes["head"].max()) + 1)
    ax.scatter(range(len(heads)), [start[b] for _, b in heads], marker="x", c="k", label="initial")
    if decay_rate > 0:
        ax.axhline(decay_rate, ls="--", c="grey", lw=0.8, label="simulator's 1 / tau")
    ax.set_xticks(range(len(heads)), [f"layer {a} head {b}" for a, b in heads], fontsize=7)
    ax.set(ylabel="learned gap penalty per year", yscale="log", title="softplus(rho_h) at the selected checkpoint")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "gap_slopes.png", dpi=100)
    plt.close(fig)


def gap_report(
    out: Path,
    exp: dict[str, Any],
    runs: dict[tuple[str, int], dict[str, Any]],
    prefix: str,
    decay_rate: float = 1 / SimulatorConfig().tau,
) -> str:
    """The markdown section (module docstring); figures are written into ``out`` and linked as prefix + name.
    ``decay_rate``: the simulator's information-decay rate per year, printed beside the learned penalties."""
    lines = ["", "## Paired questions (test MSE, variant minus the other, per seed)", ""]
    rows = question_rows(exp, runs)
    if rows:
        lines += [
            "| difference | question | n | mean | 95% CI | variant better on seeds |",
            "|---|---|---|---|---|---|",
        ]
        lines += rows
    else:
        lines += ["No pair of these variants finished on common seeds."]
    table = gather_predictions(out, runs)
    if table is not None and len(table):
        names = draw_figures(out, table, list(exp["variants"]))
        lines += ["", "## Predictions pooled over the seeds' test splits", ""]
        lines += [f"![{name}]({prefix}{name}.png)" for name in names]
        for column, (bins, labels), title in (
            ("gap", GAP_BINS, "years since the previous visit"),
            ("biomarker_age", AGE_BINS, "years since the latest leading biomarker"),
        ):
            stats = binned_mse(table, column, bins)
            present = sorted({b for _, b in stats.index})
            lines += ["", f"Test MSE by {title} (mean over seeds; anchors per seed in the header):", ""]
            counts = stats.groupby(level="bin")["n"].mean()
            lines += ["| variant | " + " | ".join(f"{labels[int(b)]} (n={counts[b]:.0f})" for b in present) + " |"]
            lines += ["|---|" + "---|" * len(present)]
            for variant in [v for v in exp["variants"] if v in stats.index.get_level_values(0)]:
                cells = [
                    f"{stats.loc[(variant, b), 'mse']:.3f}" if (variant, b) in stats.index else "-" for b in present
                ]
                lines += [f"| {variant} | " + " | ".join(cells) + " |"]
    slopes = slope_table(exp, runs)
    if len(slopes):
        draw_slopes(out, slopes, decay_rate)
        summary = slopes.groupby(["variant", "layer", "head"])["slope"].agg(["mean", "min", "max"]).reset_index()
        start = initial_slopes(int(slopes["head"].max()) + 1)
        lines += ["", "## Learned gap penalties", "", f"![gap_slopes]({prefix}gap_slopes.png)", ""]
        lines += [
            f"Per year, at the selected checkpoint; the simulator's information-decay rate 1 / tau is "
            f"{decay_rate:.3g} per year.",
            "",
            "| variant | layer | head | initial | mean over seeds | min | max |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.variant} | {r.layer} | {r['head']} | {start[r['head']]:.3f} | {r['mean']:.3f} | {r['min']:.3f} | "
            f"{r['max']:.3f} |"
            for _, r in summary.iterrows()
        ]
    return "\n".join(lines) + "\n"


def gap_report_no_gap_effect(
    out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str
) -> str:
    """:func:`gap_report` for an experiment on the simulator with ``gap_effect: false`` (decay rate 0)."""
    return gap_report(out, exp, runs, prefix, decay_rate=0.0)
