"""Report sections of the decoupled-descent experiments, computed from the run records only (their ``metrics`` and
``curves``): the train-test tracking figure per variant and, on the Gaussian mixture, state evolution vs simulation
(``tracking_report``); the zero-cost-validation table and figure (``early_stopping_report``).

Used as ``analysis: framework_plugins.decoupled_descent.analysis:<function>`` in
``configs/decoupled_descent/experiments/*.yaml``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from framework.experiments.stats import paired_difference, summarize, t_interval
from framework.figures import pyplot

Runs = dict[tuple[str, int], dict[str, Any]]

# The project's reference note (its own SE / simulation of this construction; the paper publishes no numbers) for
# the ``dd`` variant of the full-size experiment ``gmm`` at t = 40: quantity -> (SE, simulation), None = not given.
REFERENCE_NOTE: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "gmm": {
        "m": (2.377, 2.346),
        "q": (12.50, 12.39),
        "test error": (0.2507, 0.2529),
        "corrected train error": (None, 0.2521),
    }
}
# (row label, state-evolution metric, simulation metric) of the SE table; all test/ metrics of one run.
SE_ROWS = (
    ("m", "test/se_m", "test/m"),
    ("q", "test/se_q", "test/q"),
    ("test error", "test/se_error", "test/exact_error"),
    ("corrected train error", "test/se_error", "test/corrected_train_error"),
)
CURVES = {  # curve key -> (label, colour, line style)
    "val/error": ("test (held-out val split)", "C1", "-"),
    "train/corrected_error": ("corrected train (P)", "C2", "-"),
    "train/raw_error": ("raw train (A)", "C0", "-"),
    "train/se_error": ("state evolution", "C3", "--"),
}


def by_iterate(key: str, curve: list[list[float]]) -> dict[int, float]:
    """One recorded curve as iterate t -> value of W^t.

    A run's history row at step s (written after the validation that follows the s-th optimizer step) holds
    ``val/`` metrics of W^s and the ``train/`` metrics that the training step of W^{s-1} logged before stepping,
    so ``train/`` keys move back by one step. curve: [[step, value], ...] as in a record's ``curves``.
    """
    shift = 1 if key.startswith("train/") else 0
    return {int(step) - shift: float(value) for step, value in curve}


def mean_curve(curves: list[dict[int, float]]) -> dict[int, float]:
    """The pointwise mean over ``curves`` at the iterates every curve has (empty for no curves)."""
    if not curves:
        return {}
    common = sorted(set.intersection(*(set(c) for c in curves)))
    return {t: float(np.mean([c[t] for c in curves])) for t in common}


def variant_curves(runs: Runs, variant: str) -> dict[str, dict[int, float]]:
    """Seed-mean curve per key (by iterate) of the variant's ok runs; GD's corrected curve (= raw) is dropped."""
    records = [r for (v, _), r in sorted(runs.items()) if v == variant and r.get("status") == "ok"]
    out = {}
    for key in CURVES:
        curves = [by_iterate(key, r["curves"][key]) for r in records if r.get("curves", {}).get(key)]
        if curves:
            out[key] = mean_curve(curves)
    if out.get("train/corrected_error") == out.get("train/raw_error"):
        out.pop("train/corrected_error", None)
    return out


def tracking_figure(path: Path, exp: dict[str, Any], runs: Runs) -> bool:
    """One panel per variant: seed-mean test, corrected train, raw train and SE error against the iterate t.
    Returns False (and writes nothing) when no run kept a curve."""
    panels = {v: variant_curves(runs, v) for v in exp["variants"]}
    panels = {v: c for v, c in panels.items() if c}
    if not panels:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), sharey=True, squeeze=False)
    for ax, (variant, curves) in zip(axes[0], panels.items(), strict=True):
        for key, curve in curves.items():
            label, color, style = CURVES[key]
            ax.plot(list(curve), list(curve.values()), label=label, color=color, ls=style)
        ax.set(title=f"{exp['name']}: {variant}", xlabel="iterate t")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("0-1 error (mean over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _fmt(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.4g}"


def _mean_sd(values: list[float]) -> str:
    s = summarize(values)
    return f"{_fmt(s.mean)} +- {_fmt(s.sd)}"


def se_rows(exp: dict[str, Any], runs: Runs) -> list[list[str]]:
    """Table rows (variant, quantity, SE, simulation, simulation - SE with a 95% paired t interval, n, reference
    note) for every variant whose runs logged the state evolution; the note only for ``dd`` of a full-size run."""
    notes = {} if exp.get("smoke") else REFERENCE_NOTE.get(exp["name"], {})
    rows = []
    for variant in exp["variants"]:
        metrics = [r["metrics"] for (v, _), r in sorted(runs.items()) if v == variant and r.get("status") == "ok"]
        metrics = [m for m in metrics if "test/se_error" in m]
        if not metrics:
            continue
        for label, se_key, sim_key in SE_ROWS:
            pairs = [(m[se_key], m[sim_key]) for m in metrics if sim_key in m]
            diff = summarize([sim - se for se, sim in pairs])
            low, high = t_interval(diff.mean, diff.sd, diff.n)
            note = notes.get(label) if variant == "dd" else None
            rows.append(
                [
                    variant,
                    label,
                    _mean_sd([se for se, _ in pairs]),
                    _mean_sd([sim for _, sim in pairs]),
                    f"{_fmt(diff.mean)} [{_fmt(low)}, {_fmt(high)}]",
                    str(diff.n),
                    "-" if note is None else f"{_fmt(note[0])} / {_fmt(note[1])}",
                ]
            )
    return rows


def tracking_report(out: Path, exp: dict[str, Any], runs: Runs, prefix: str = "") -> str:
    """The extra report section: the tracking figure and (Gaussian mixture) the SE-vs-simulation table."""
    lines = []
    if tracking_figure(out / "tracking.png", exp, runs):
        lines += [
            "",
            "## Tracking along the trajectory",
            "",
            "Mean over seeds of the error of the iterate W^t: on the held-out val split, the corrected train error "
            "(from P = A - Delta M; DD only, GD's equals its raw one), the raw train error (from A) and the state "
            "evolution's prediction where there is one.",
            "",
            f"![tracking]({prefix}tracking.png)",
        ]
    rows = se_rows(exp, runs)
    if rows:
        head = ["variant", "quantity at t = T", "SE prediction", "simulation", "simulation - SE (95% CI)", "n"]
        head.append("reference note: SE / simulation")
        lines += [
            "",
            "## State evolution vs simulation",
            "",
            "Mean +- sd over seeds. Simulation: m = v.w/d, q = ||w||^2/d and the exact test error "
            "Phi(-m/sqrt(Delta q)) of the final W^T, and its corrected train error; the SE (one fixed Monte-Carlo "
            "seed, the same for every data seed) predicts m, q and the test error, which the corrected train error "
            "should also match. The interval is the two-sided 95% t interval of the mean per-seed difference.",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    return "\n".join(lines) + "\n" if lines else ""


# -- zero-cost validation (configs/decoupled_descent/experiments/early_stopping.yaml) ---------------------------------
STOPPING_RULES = {  # record prefix -> what the rule selects on
    "dd": "DD, corrected train error (all n)",
    "gd_train": "GD, train error (all n)",
    "gd_holdout": "GD, 80/20 hold-out (trained on 80%)",
    "gd_kfold": "GD, 5-fold CV, refit on all n",
    "oracle_dd": "oracle: DD, test error",
    "oracle_gd": "oracle: GD, test error",
    "oracle_holdout": "oracle: GD on 80%, test error",
}


def rule_values(runs: Runs, variant: str, rule: str, key: str) -> dict[int, float]:
    """seed -> ``test/<rule>/<key>`` over the variant's ok runs that logged it."""
    name = f"test/{rule}/{key}"
    return {
        seed: float(r["metrics"][name])
        for (v, seed), r in runs.items()
        if v == variant and r.get("status") == "ok" and name in r.get("metrics", {})
    }


def _paired(a: dict[int, float], b: dict[int, float]) -> str:
    """``mean [low, high] (k/n)``: the paired t interval of a - b over shared seeds and on how many a < b."""
    d = paired_difference(a, b, "min")
    return f"{_fmt(d.mean)} [{_fmt(d.low)}, {_fmt(d.high)}] ({d.wins}/{d.n})"


def stopping_rows(exp: dict[str, Any], runs: Runs) -> list[list[str]]:
    """Rows (n/d variant, rule, test error, regret, DD - rule paired, rule - GD oracle paired, selected t)."""
    rows = []
    for variant in exp["variants"]:
        dd, oracle = rule_values(runs, variant, "dd", "error"), rule_values(runs, variant, "oracle_gd", "error")
        for rule, label in STOPPING_RULES.items():
            error = rule_values(runs, variant, rule, "error")
            if not error:
                continue
            regret = rule_values(runs, variant, rule, "regret")
            steps = sorted(rule_values(runs, variant, rule, "step").values())
            rows.append(
                [
                    variant,
                    label,
                    _mean_sd(list(error.values())),
                    _mean_sd(list(regret.values())) if regret else "-",
                    "-" if rule == "dd" else _paired(dd, error),
                    "-" if rule == "oracle_gd" else _paired(error, oracle),
                    f"{np.median(steps):g} [{steps[0]:g}, {steps[-1]:g}]",
                ]
            )
    return rows


def stopping_figure(path: Path, exp: dict[str, Any], runs: Runs) -> bool:
    """Excess test error over the GD test-set oracle (paired mean, 95% t interval) of each rule against n/d."""
    variants = [v for v in exp["variants"] if rule_values(runs, v, "oracle_gd", "error")]
    if not variants:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    rules = [r for r in STOPPING_RULES if r != "oracle_gd"]
    for k, rule in enumerate(rules):
        means, lows, highs = [], [], []
        for variant in variants:
            d = paired_difference(
                rule_values(runs, variant, rule, "error"), rule_values(runs, variant, "oracle_gd", "error")
            )
            means.append(d.mean)
            lows.append(d.mean - d.low)
            highs.append(d.high - d.mean)
        x = np.arange(len(variants)) + (k - len(rules) / 2) * 0.08
        ax.errorbar(x, means, yerr=[lows, highs], fmt="o-", ms=4, capsize=2, label=STOPPING_RULES[rule])
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(range(len(variants)), variants)
    ax.set(xlabel="n/d", ylabel="test error - GD oracle's (paired)", title=f"{exp['name']}: cost of each rule")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


GRID_PICKS = ("dd", "gd_holdout", "gd_kfold", "oracle_gd")  # rules whose chosen cell the grid table counts


def grid_rows(exp: dict[str, Any], runs: Runs) -> list[list[str]]:
    """Per variant and (lr, weight decay) cell: mean +- sd over seeds of the best test error of the cell's GD and
    DD arms, of DD's and the hold-out's choice within the cell, and on how many seeds each of ``GRID_PICKS`` chose
    that cell. Empty when the runs did not log ``test/cell<c>/`` metrics."""
    rows = []
    for variant in exp["variants"]:
        cell = 0
        while rule_values(runs, variant, f"cell{cell}", "lr"):
            lr = next(iter(rule_values(runs, variant, f"cell{cell}", "lr").values()))
            wd = next(iter(rule_values(runs, variant, f"cell{cell}", "weight_decay").values()))
            picks = []
            for rule in GRID_PICKS:
                lrs, wds = (rule_values(runs, variant, rule, key) for key in ("lr", "weight_decay"))
                same = [math.isclose(lrs[k], lr, rel_tol=1e-6) and math.isclose(wds[k], wd, rel_tol=1e-6) for k in lrs]
                picks.append(sum(same))
            values = [
                _mean_sd(list(rule_values(runs, variant, f"cell{cell}", key).values()))
                for key in ("oracle_gd", "oracle_dd", "dd", "gd_holdout")
            ]
            rows.append([variant, f"{lr:.3g}", f"{wd:.3g}", *values, " / ".join(map(str, picks))])
            cell += 1
    return rows


def early_stopping_report(out: Path, exp: dict[str, Any], runs: Runs, prefix: str = "") -> str:
    """The section of the zero-cost-validation experiment: per n/d and rule the exact test error of the selected
    iterate, the regret, DD minus the rule and the rule minus the GD oracle (paired over seeds), and a figure."""
    rows = stopping_rows(exp, runs)
    if not rows:
        return ""
    head = [
        "n/d",
        "rule (selects lr, weight decay and t on)",
        "test error",
        "regret",
        "DD - rule (95% CI) (DD better)",
        "rule - GD oracle (95% CI)",
        "selected t: median [min, max]",
    ]
    lines = [
        "",
        "## Early stopping and tuning without a validation set",
        "",
        "Mean +- sd over seeds of the exact test error of the iterate each rule selects and of its regret (that "
        "error minus the best test error among the candidates the rule chose from). `DD - rule`: paired "
        "difference of test errors over the same seeds (same data, same start) with its two-sided 95% t interval "
        "and on how many seeds DD's is strictly lower; `rule - GD oracle`: the same against the best GD iterate "
        "chosen on the test error.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    if stopping_figure(out / "stopping.png", exp, runs):
        lines += ["", f"![cost of each stopping rule]({prefix}stopping.png)"]
    grid = grid_rows(exp, runs)
    if grid:
        head = ["n/d", "lr", "weight decay", "GD oracle in cell", "DD oracle in cell", "DD rule in cell"]
        head += ["hold-out rule in cell", "cell chosen by DD / hold-out / 5-fold / GD oracle (seeds)"]
        lines += [
            "",
            "### Where in the grid the optimum lies",
            "",
            "Per (lr, weight decay) cell, mean +- sd over seeds of the exact test error of: the best iterate of the "
            "cell's GD and DD arms (test-set oracles with the cell fixed), the DD iterate chosen by the corrected "
            "train error and the 80%-GD iterate chosen on the hold-out with the cell fixed; and on how many seeds "
            "each rule chose that cell over the whole grid.",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            *("| " + " | ".join(row) + " |" for row in grid),
        ]
    return "\n".join(lines) + "\n"


# -- XOR over step sizes and initialisations (configs/decoupled_descent/experiments/xor_sweep.yaml) ------------------
def xor_simulations(runs: Runs) -> list[dict[str, float]]:
    """Every simulation of every ok run as one dict: ``seed``, ``lr``, ``init_scale`` and ``<method>/<summary>``
    for the methods and summaries of :mod:`~framework_plugins.decoupled_descent.xor_sweep` (from ``test/sim<j>/``)."""
    sims = []
    for (_, seed), record in sorted(runs.items()):
        metrics = record.get("metrics", {}) if record.get("status") == "ok" else {}
        j = 0
        while f"test/sim{j}/lr" in metrics:
            prefix = f"test/sim{j}/"
            sim = {key[len(prefix) :]: value for key, value in metrics.items() if key.startswith(prefix)}
            sims.append({**sim, "seed": seed})
            j += 1
    return sims


def wilson(k: int, n: int) -> tuple[float, float]:
    """Two-sided 95% Wilson score interval of a binomial proportion k / n."""
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _rate(sims: list[dict[str, float]], key: str) -> str:
    """``k/n = rate [low, high]`` of the 0/1 values ``key`` over ``sims`` with the Wilson interval."""
    k, n = int(sum(s[key] for s in sims)), len(sims)
    low, high = wilson(k, n)
    return f"{k}/{n} = {k / n:.2f} [{low:.2f}, {high:.2f}]"


def mcnemar(sims: list[dict[str, float]], key: str) -> tuple[int, int, float]:
    """Paired 0/1 outcome ``key`` of DD and GD on the same starts: (DD only, GD only, exact two-sided McNemar p)."""
    dd_only = sum(1 for s in sims if s[f"dd/{key}"] > s[f"gd/{key}"])
    gd_only = sum(1 for s in sims if s[f"gd/{key}"] > s[f"dd/{key}"])
    p = 1.0 if dd_only + gd_only == 0 else float(stats.binomtest(dd_only, dd_only + gd_only).pvalue)
    return dd_only, gd_only, p


def xor_sweep_rows(sims: list[dict[str, float]]) -> list[list[str]]:
    """Per (lr, init scale) cell and over all: escape and tracking rates of DD and GD (Wilson intervals), the
    paired escape comparison and the mean final / stopped / best population errors."""
    cells = sorted({(s["lr"], s["init_scale"]) for s in sims})
    groups = [
        (f"{lr:g}", f"{scale:g}", [s for s in sims if (s["lr"], s["init_scale"]) == (lr, scale)]) for lr, scale in cells
    ]
    rows = []
    for lr, scale, group in [*groups, ("all", "all", sims)]:
        dd_only, gd_only, p = mcnemar(group, "escaped")
        rows.append(
            [
                lr,
                scale,
                _rate(group, "dd/escaped"),
                _rate(group, "gd/escaped"),
                f"{dd_only} / {gd_only} (p = {p:.2g})",
                _rate(group, "dd/tracks"),
                _rate(group, "gd/tracks"),
                " / ".join(_mean_sd([s[f"{m}/error"] for s in group]) for m in ("dd", "gd")),
                " / ".join(_mean_sd([s[f"{m}/stopped_error"] for s in group]) for m in ("dd", "gd")),
                " / ".join(_mean_sd([s[f"{m}/best_error"] for s in group]) for m in ("dd", "gd")),
            ]
        )
    return rows


ESCAPE_THRESHOLDS = (0.2, 0.25, 0.3, 0.35)  # final population errors the sensitivity table counts as escaped


def threshold_rows(sims: list[dict[str, float]]) -> list[list[str]]:
    """How the escape counts depend on the threshold: per threshold in ``ESCAPE_THRESHOLDS``, the DD and GD rates
    (Wilson intervals) and the paired DD-only / GD-only counts with McNemar's p, recomputed from the final errors."""
    rows = []
    for threshold in ESCAPE_THRESHOLDS:
        flagged = [{f"{m}/escaped": float(s[f"{m}/error"] <= threshold) for m in ("dd", "gd")} for s in sims]
        dd_only, gd_only, p = mcnemar(flagged, "escaped")
        rates = [_rate(flagged, f"{m}/escaped") for m in ("dd", "gd")]
        rows.append([f"{threshold:g}", *rates, f"{dd_only} / {gd_only} (p = {p:.2g})"])
    return rows


def paired_error_lines(sims: list[dict[str, float]]) -> list[str]:
    """Two generated sentences comparing DD and GD on the same starts: stopped on their own train criteria (with
    the mean paired difference and its 95% t interval over simulations), and final iterates where GD escaped."""
    stopped = [s["dd/stopped_error"] - s["gd/stopped_error"] for s in sims]
    diff = summarize(stopped)
    low, high = t_interval(diff.mean, diff.sd, diff.n)
    escaped = [s for s in sims if s["gd/escaped"]]
    worse = sum(1 for s in escaped if s["dd/error"] > s["gd/error"])
    return [
        f"- Stopped on its own train criterion, DD's population error is below GD's on "
        f"{sum(1 for d in stopped if d < 0)} of {len(sims)} starts; mean paired difference DD - GD "
        f"{_fmt(diff.mean)} [{_fmt(low)}, {_fmt(high)}] (95% t interval over simulations).",
        f"- Final iterates where GD escaped: DD's final population error is above GD's on {worse} of "
        f"{len(escaped)} starts.",
    ]


def xor_sweep_figure(path: Path, exp: dict[str, Any], sims: list[dict[str, float]]) -> None:
    """Escape rate and mean max tracking gap against the init scale, one line per lr (DD solid, GD dashed), and the
    population error of GD against DD's on the same start, each stopped where its own train criterion is smallest
    (colour: log init scale)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.6))
    lrs, scales = sorted({s["lr"] for s in sims}), sorted({s["init_scale"] for s in sims})
    for k, lr in enumerate(lrs):
        for method, style in (("dd", "-"), ("gd", "--")):
            group = [[s for s in sims if s["lr"] == lr and s["init_scale"] == scale] for scale in scales]
            for ax, key in zip(axes[:2], ("escaped", "max_tracking_gap"), strict=True):
                values = [float(np.mean([s[f"{method}/{key}"] for s in g])) for g in group]
                ax.plot(scales, values, style, marker="o", ms=3, color=f"C{k}", label=f"{method.upper()}, lr {lr:g}")
    axes[0].set(xscale="log", xlabel="init scale s (W^0 ~ N(0, s^2))", ylabel="fraction escaped", ylim=(-0.05, 1.05))
    axes[1].set(xscale="log", xlabel="init scale s", ylabel="mean max_t |train criterion - test error|")
    axes[0].legend(fontsize=6, ncol=2)
    colour = [np.log(s["init_scale"]) for s in sims]
    dd, gd = ([s[f"{m}/stopped_error"] for s in sims] for m in ("dd", "gd"))
    axes[2].scatter(dd, gd, s=8, c=colour, cmap="viridis")
    high = max(*dd, *gd) + 0.02
    axes[2].plot([0.0, high], [0.0, high], "k-", lw=0.6)
    axes[2].set(xlabel="DD, stopped on corrected train error", ylabel="GD, stopped on train error (same start)")
    for ax in axes:
        ax.set_title(f"{exp['name']}: population errors", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def xor_sweep_report(out: Path, exp: dict[str, Any], runs: Runs, prefix: str = "") -> str:
    """The section of the XOR sweep: per (lr, init scale) cell how often DD and GD escape and track (Wilson 95%
    intervals), DD-only vs GD-only escapes (exact McNemar), mean final and best errors, and a figure."""
    sims = xor_simulations(runs)
    if not sims:
        return ""
    head = [
        "lr",
        "init scale",
        "DD escaped (95% CI)",
        "GD escaped (95% CI)",
        "escaped: DD only / GD only (McNemar p)",
        "DD tracks (95% CI)",
        "GD tracks (95% CI)",
        "final error DD / GD",
        "stopped on own train criterion DD / GD",
        "best error over t (oracle) DD / GD",
    ]
    xor_sweep_figure(out / "xor_sweep.png", exp, sims)
    return (
        "\n".join(
            [
                "",
                "## Escape and tracking over step sizes and initialisations",
                "",
                f"{len(sims)} paired simulations (a DD and a GD arm from the same start W^0) over "
                f"{len({s['seed'] for s in sims})} data draws. Escaped: final population error <= the run's "
                "`escape_error`; tracks: the method's own train criterion (DD: corrected train error; GD: train error) "
                "stays within `track_tolerance` of the population error at every iterate. Rates are k/n with the "
                "95% Wilson interval, which treats the simulations as independent (those of one data draw share the "
                "data); the paired comparison counts starts where only DD or only GD escaped, with the exact "
                "two-sided McNemar p-value. Errors (population, mean +- sd): of the final iterate W^T, of the "
                "iterate where the method's own train criterion is smallest (stopping without held-out data) and "
                "the smallest over t (an oracle). Colour in the scatter: log init scale.",
                "",
                "| " + " | ".join(head) + " |",
                "|" + "---|" * len(head),
                *("| " + " | ".join(row) + " |" for row in xor_sweep_rows(sims)),
                "",
                *paired_error_lines(sims),
                "",
                f"![escape and tracking]({prefix}xor_sweep.png)",
                "",
                "### Sensitivity to the escape threshold",
                "",
                "The same counts over all simulations with other thresholds on the final population error.",
                "",
                "| escaped if final error <= | DD (95% CI) | GD (95% CI) | DD only / GD only (McNemar p) |",
                "|---|---|---|---|",
                *("| " + " | ".join(row) + " |" for row in threshold_rows(sims)),
            ]
        )
        + "\n"
    )
