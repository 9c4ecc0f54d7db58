"""Report section of the filter-sweep experiments (``analysis: framework_plugins.graph_sparsify.sweep_analysis:
filter_sweep``): the per-draw records of :class:`~framework_plugins.graph_sparsify.sweep.SparsifierSweep` as

1. the sparsifier draws: eps_hat and kept edges per q, draw-to-draw spread and a 95% interval over seeds;
2. the upper-bound checks per filter and representation: the operator lemma and the theorem's bounds on the
   relative and Gram errors, how often they hold and by how much (slack = bound / measured);
3. the probes per filter and q (mean over seeds and draws, 95% t interval over the per-seed means);
4. what the log-log slope measures: slopes against q of eps_hat and of the perturbation, the pooled slope
   against eps_hat, and the within-(seed, q) slope, which uses only the draw-to-draw variation of eps_hat at fixed
   q and so cannot come from the shared q^(-1/2) scaling;
5. the predictive claim: correlation of the hidden Gram error with neighbourhood loss (1 - kNN-Jaccard) and with
   the class-centroid shift across q, draws and layers, and the partial correlation given log eps_hat.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from framework.experiments.stats import summarize, t_interval
from framework.figures import pyplot
from framework_plugins.graph_sparsify.correlation import correlation, partial_correlation, regression, within_slope
from framework_plugins.graph_sparsify.sweep_records import Row, column, select, sweep_rows

FIGURE = "sweep_bounds_prediction.png"
PROBES = {
    "rel_error": "relative error",
    "gram_rel": "Gram error",
    "knn_jaccard": "kNN-Jaccard@10",
    "centroid_shift": "centroid shift",
}
TARGETS = {"neighbourhood loss (1 - kNN-Jaccard)": "knn_loss", "centroid shift": "centroid_shift"}


def _fmt(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.3g}"


def seed_interval(rows: list[Row], name: str) -> tuple[float, float, float, float]:
    """(mean over all rows, draw-to-draw sd pooled inside seeds, 95% t interval of the mean of the per-seed means)
    of field ``name``."""
    seeds = sorted({r["seed"] for r in rows})
    per_seed = [column(select(rows, seed=s), name) for s in seeds]
    means = [float(np.mean(v)) for v in per_seed]
    within = [float(np.var(v, ddof=1)) for v in per_seed if len(v) > 1]
    s = summarize(means)
    low, high = t_interval(s.mean, s.sd, s.n)
    return float(np.mean(column(rows, name))), math.sqrt(np.mean(within)) if within else math.nan, low, high


def draws_table(rows: list[Row]) -> list[str]:
    """eps_hat and kept fraction per samples factor (one layer-0 row per draw: the draws are the same for every
    filter of a seed, taken from the first variant)."""
    first = rows[0]["variant"]
    lines = [
        "| q / (n ln n) | draws | kept edges | eps_hat mean | draw-to-draw sd | 95% CI (seeds) | min - max |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in sorted({r["factor"] for r in rows}):
        sub = select(rows, variant=first, factor=f, layer=0)
        mean, sd, low, high = seed_interval(sub, "eps_hat")
        eps = column(sub, "eps_hat")
        lines.append(
            f"| {f:g} | {len(sub)} | {_fmt(float(np.mean(column(sub, 'kept_fraction'))))} | {_fmt(mean)} | "
            f"{_fmt(sd)} | [{_fmt(low)}, {_fmt(high)}] | {_fmt(eps.min())} - {_fmt(eps.max())} |"
        )
    return lines


def _check(measured: np.ndarray, bound: np.ndarray) -> str:
    """'held/n, slack median [min]' for measured <= bound over the rows with a finite bound."""
    ok = np.isfinite(bound)
    if not ok.any():
        return "-"
    m, b = measured[ok], bound[ok]
    slack = b / np.maximum(m, 1e-300)
    return f"{int(np.sum(m <= b))}/{int(ok.sum())}, {_fmt(float(np.median(slack)))} [{_fmt(float(slack.min()))}]"


def bounds_table(rows: list[Row], variants: list[str]) -> list[str]:
    """Per filter and representation: the operator lemma, the theorem's bound on the relative error (from eps_hat
    and from the measured operator gap), the Gram bound, and the constants C = bound / eps_hat (theorem) against
    the largest measured rel_error / eps_hat."""
    lines = [
        "| filter | layer | operator gap <= delta(eps_hat) | rel. error <= bound | rel. error <= bound given gap "
        "| Gram error <= bound | C theorem (median) | rel. error / eps_hat (max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        for layer in sorted({r["layer"] for r in select(rows, variant=v)}):
            sub = select(rows, variant=v, layer=layer)
            eps, bound = column(sub, "eps_hat"), column(sub, "bound")
            ok = np.isfinite(bound)
            rel = column(sub, "rel_error")
            c_theorem = float(np.median(bound[ok] / eps[ok])) if ok.any() else math.nan
            c_seen = float(np.max(rel[ok] / eps[ok])) if ok.any() else math.nan
            lines.append(
                f"| {v} | {layer} | {_check(column(sub, 'op_gap'), column(sub, 'op_bound'))} "
                f"| {_check(rel, bound)} | {_check(rel, column(sub, 'bound_given_gap'))} "
                f"| {_check(column(sub, 'gram_rel'), column(sub, 'gram_bound'))} | {_fmt(c_theorem)} | {_fmt(c_seen)} |"
            )
    return lines


def probe_table(rows: list[Row], variants: list[str], probe: str) -> list[str]:
    """Mean [95% t interval over seeds] of ``probe`` per filter and layer (rows) and samples factor (columns)."""
    factors = sorted({r["factor"] for r in rows})
    lines = [
        "| filter | layer | " + " | ".join(f"q = {f:g} n ln n" for f in factors) + " |",
        "|---|---|" + "---|" * len(factors),
    ]
    for v in variants:
        for layer in sorted({r["layer"] for r in select(rows, variant=v)}):
            cells = []
            for f in factors:
                mean, _, low, high = seed_interval(select(rows, variant=v, layer=layer, factor=f), probe)
                cells.append(f"{_fmt(mean)} [{_fmt(low)}, {_fmt(high)}]")
            lines.append(f"| {v} | {layer} | " + " | ".join(cells) + " |")
    return lines


def _slope_cell(s: Any) -> str:
    return f"{_fmt(s.slope)} [{_fmt(s.low)}, {_fmt(s.high)}]"


def slopes_table(rows: list[Row], variants: list[str]) -> list[str]:
    """Per filter and layer, over the draws with 0 < eps_hat < 1: slope of log eps_hat and of log rel_error on
    log q, of log rel_error on log eps_hat (pooled), and the within-(seed, q) slope of log rel_error on log
    eps_hat (each with its 95% t interval)."""
    lines = [
        "| filter | layer | points | log eps_hat on log q | log rel. error on log q | log rel. error on log eps_hat "
        "(pooled) | same, within (seed, q) |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        for layer in sorted({r["layer"] for r in select(rows, variant=v)}):
            sub = [r for r in select(rows, variant=v, layer=layer) if 0 < r["eps_hat"] < 1 and r["rel_error"] > 0]
            if len(sub) < 3:
                continue
            log_q, log_eps = np.log(column(sub, "factor")), np.log(column(sub, "eps_hat"))
            log_rel = np.log(column(sub, "rel_error"))
            groups = np.array([(r["seed"], r["factor"]) for r in sub])
            lines.append(
                f"| {v} | {layer} | {len(sub)} | {_slope_cell(regression(log_q, log_eps))} "
                f"| {_slope_cell(regression(log_q, log_rel))} | {_slope_cell(regression(log_eps, log_rel))} "
                f"| {_slope_cell(within_slope(log_eps, log_rel, groups))} |"
            )
    return lines


def _with_targets(rows: list[Row]) -> list[Row]:
    """The rows with positive Gram error, neighbourhood loss and centroid shift (finite logarithms), with the field
    ``knn_loss`` = 1 - knn_jaccard added."""
    out = [{**r, "knn_loss": 1.0 - r["knn_jaccard"]} for r in rows]
    return [r for r in out if r["gram_rel"] > 0 and r["knn_loss"] > 0 and r["centroid_shift"] > 0 and r["eps_hat"] > 0]


def dummies(rows: list[Row], fields: tuple[str, ...]) -> np.ndarray:
    """Indicator columns (n, cells - 1) of the cells that ``fields`` form (the first cell is the baseline)."""
    keys = [tuple(r[f] for f in fields) for r in rows]
    cells = sorted(set(keys))
    return np.array([[k == c for c in cells[1:]] for k in keys], dtype=float).reshape(len(rows), len(cells) - 1)


def _cor_cell(c: Any) -> str:
    return f"{_fmt(c.r)} [{_fmt(c.low)}, {_fmt(c.high)}]"


def prediction_table(rows: list[Row], variants: list[str]) -> list[str]:
    """Per filter and pooled, over every (seed, q, draw, layer): Spearman rho and Pearson r (of logarithms) between
    the Gram error and each target, the log-log regression slope; the partial r of the logarithms given log eps_hat
    and one intercept per (filter, seed, layer); and the partial r given one intercept per (filter, seed, layer, q),
    i.e. from the draw-to-draw variation at a fixed q only."""
    lines = [
        "| filter | target | points | Spearman rho | Pearson r of logs | slope of log target on log Gram "
        "| partial r given log eps_hat | partial r within (seed, layer, q) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in [*variants, "all"]:
        sub = _with_targets(rows if v == "all" else select(rows, variant=v))
        if len(sub) < 5:
            continue
        log_gram, log_eps = np.log(column(sub, "gram_rel")), np.log(column(sub, "eps_hat"))
        given_eps = np.column_stack([log_eps, dummies(sub, ("variant", "seed", "layer"))])
        within_q = dummies(sub, ("variant", "seed", "layer", "factor"))
        for label, name in TARGETS.items():
            target = column(sub, name)
            log_target = np.log(target)
            cells = [
                correlation(column(sub, "gram_rel"), target, "spearman"),
                correlation(log_gram, log_target),
                regression(log_gram, log_target),
                partial_correlation(log_gram, log_target, given_eps),
                partial_correlation(log_gram, log_target, within_q) if within_q.shape[1] else None,
            ]
            text = [_slope_cell(c) if hasattr(c, "slope") else _cor_cell(c) if c else "-" for c in cells]
            lines.append(f"| {v} | {label} | {len(sub)} | " + " | ".join(text) + " |")
    return lines


def figure(path: Path, rows: list[Row], variants: list[str]) -> None:
    """Left, middle: neighbourhood loss and centroid shift against the Gram error (log-log; colour = filter, marker
    = layer). Right: measured relative error / theorem bound against eps_hat (log-log; the bound holds below 1)."""
    from matplotlib.ticker import NullFormatter

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    markers = "os^v"
    sub = _with_targets(rows)
    for i, v in enumerate(variants):
        for layer in sorted({r["layer"] for r in select(sub, variant=v)}):
            pts = select(sub, variant=v, layer=layer)
            style = {"color": f"C{i}", "marker": markers[layer % 4], "s": 10, "alpha": 0.6}
            for ax, name in zip(axes[:2], TARGETS.values(), strict=True):
                ax.scatter(column(pts, "gram_rel"), column(pts, name), label=f"{v} layer {layer}", **style)
            ok = [r for r in select(rows, variant=v, layer=layer) if np.isfinite(r.get("bound", math.nan))]
            if ok:
                ratio = column(ok, "rel_error") / column(ok, "bound")
                axes[2].scatter(column(ok, "eps_hat"), ratio, label=f"{v} layer {layer}", **style)
    for ax, label in zip(axes[:2], TARGETS, strict=True):
        ax.set(xscale="log", yscale="log", xlabel="Gram relative error", ylabel=label)
        ax.xaxis.set_minor_formatter(NullFormatter())  # the 2x..9x labels of one decade overlap
    axes[0].set_title("neighbourhoods vs Gram preservation")
    axes[1].set_title("class centroids vs Gram preservation")
    axes[2].axhline(1.0, color="k", lw=0.8, ls="--")
    axes[2].set(xscale="log", yscale="log", xlabel="measured eps_hat", ylabel="rel. error / theorem bound")
    axes[2].set_title("upper-bound check (holds below the line)")
    axes[0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def filter_sweep(out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str) -> str:
    """Markdown section: the five tables of the module docstring and the figure ``sweep_bounds_prediction.png``
    written into ``out``."""
    rows = sweep_rows(runs)
    if not rows:
        return "\n## Sparsifier sweep\n\nNo run logged `test/sweep/...` records.\n"
    variants = [v for v in exp["variants"] if select(rows, variant=v)]
    figure(out / FIGURE, rows, variants)
    lines = [
        "",
        "## Sparsifier sweep: repeated draws, upper bounds and the predictive claim",
        "",
        "Every row below pools the `SparsifierSweep` records of the runs: per seed, the same sparsifier draws H for "
        "every filter, and the G-trained weights of each filter run on each H. Intervals over seeds are t intervals "
        "of the per-seed means (draws averaged inside a seed); correlation intervals are Fisher-z intervals that "
        "treat the points as independent (they are not: draws share a graph and a model per seed), so they are "
        "narrower than an honest interval.",
        "",
        "### Sparsifier draws",
        "",
        *draws_table(rows),
        "",
        "### Upper-bound checks (the theorem's constants)",
        "",
        "Each cell: draws where measured <= bound / draws with eps_hat < 1 (where the bound is finite), then the "
        "median slack bound / measured [smallest slack]. Operator gap: ||M_H - M_G||_2 of the filter's propagation "
        "operator against delta(eps_hat) = 2 eps_hat ||N_G|| / (1 - eps_hat). Bound given gap: the layer bound with "
        "the measured operator gap in place of delta (the slack of the layer chain alone). C theorem: median of "
        "bound / eps_hat; against it, the largest measured relative error / eps_hat.",
        "",
        *bounds_table(rows, variants),
    ]
    for probe, label in PROBES.items():
        lines += ["", f"### {label} (`{probe}`) per filter and q", "", *probe_table(rows, variants, probe)]
    lines += [
        "",
        "### What the log-log slope measures",
        "",
        "Slopes (95% t interval) of least-squares fits over the draws with 0 < eps_hat < 1. If eps_hat and the "
        "perturbation both scale as q^(-1/2), the pooled slope on eps_hat is near 1 whatever couples them; the "
        "within-(seed, q) slope uses only how the perturbation follows eps_hat from draw to draw at a fixed q.",
        "",
        *slopes_table(rows, variants),
        "",
        "### Does Gram preservation predict neighbourhood preservation and centroid stability?",
        "",
        "Over every (seed, q, draw, layer), each with its 95% interval: Spearman rho of the Gram error with the "
        "target, Pearson r and the regression slope of their logarithms; the partial r of the logarithms given log "
        "eps_hat and one intercept per (filter, seed, layer) (does the Gram error tell more than eps_hat?); and the "
        "partial r given one intercept per (filter, seed, layer, q): only the draw-to-draw variation at a fixed q "
        "is left, so a shared dependence on q cannot produce it.",
        "",
        *prediction_table(rows, variants),
        "",
        f"![bounds and prediction]({prefix}{FIGURE})",
        "",
    ]
    return "\n".join(lines)
