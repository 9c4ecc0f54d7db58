"""``framework experiment report DIR``: report.md, summary.json and figures from an experiment's results.jsonl.

Per metric: mean +- sd over seeds per variant, the paper's number where the experiment file gives one, and the
paired per-seed difference against the reference variant with a 95% paired-t interval and the number of seeds on
which the variant is better. Figures: metric bars with 95% intervals and per-seed points, and a per-seed scatter
against the reference. ``--page docs/results/<plugin>.md`` also writes the report into that page between the
markers ``<!-- experiment:<name> -->`` and ``<!-- /experiment:<name> -->``, so every number on the page comes
from this command.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from framework.experiments.runner import EXPERIMENT_FILE, read_results
from framework.experiments.spec import ExperimentError
from framework.experiments.stats import Summary, paired_difference, summarize, t_interval
from framework.experiments.worker import RESULT_FILE, write_json_atomically
from framework.figures import pyplot

REPORT_FILE, SUMMARY_FILE = "report.md", "summary.json"
LINK_PREFIX = "\x00prefix\x00"  # an analysis links its figures as prefix + name; replaced per place it is written


def slug(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", metric).strip("_")


def short_commit(commit: str | None) -> str:
    """12 hex digits, keeping the ``-dirty`` mark of a run made from a checkout with uncommitted changes."""
    if not commit:
        return "unknown (not a git checkout)"
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:+.1f}%"


def fmt(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def latest_runs(records: list[dict[str, Any]], exp: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """The last record per (variant, seed) of the experiment's current variants and seeds; where the runner wrote
    its plan (``planned`` digests), records of other arguments (an older version of the file) are left out."""
    planned = exp.get("planned")
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        key = (record.get("variant"), record.get("seed"))
        if key[0] not in exp["variants"] or key[1] not in exp["seeds"]:
            continue
        if planned is not None and planned.get(f"{key[0]}/{key[1]}") != record.get("digest"):
            continue
        latest[key] = record
    return latest


def missing_runs(exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """``variant/seed`` of every planned run with no record yet."""
    return [f"{v}/{s}" for v in exp["variants"] for s in exp["seeds"] if (v, s) not in runs]


def values_by_seed(runs: dict[tuple[str, int], dict[str, Any]], variant: str, metric: str) -> dict[int, float]:
    return {
        seed: float(r["metrics"][metric])
        for (v, seed), r in runs.items()
        if v == variant and r.get("status") == "ok" and metric in r.get("metrics", {})
    }


def relative_difference(variant: dict[int, float], reference: dict[int, float]) -> Summary:
    """Summary over shared seeds of (m_variant(s) - m_reference(s)) / |m_reference(s)| (seeds with m_ref = 0
    skipped)."""
    seeds = [s for s in sorted(set(variant) & set(reference)) if reference[s] != 0]
    return summarize([(variant[s] - reference[s]) / abs(reference[s]) for s in seeds])


def summarize_experiment(exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]]) -> dict[str, Any]:
    """The numbers of the report: per metric, per variant summary and paired difference against the reference."""
    out: dict[str, Any] = {}
    ref = exp["reference"]
    for metric, direction in exp["metrics"].items():
        per_variant = {}
        for variant in exp["variants"]:
            values = values_by_seed(runs, variant, metric)
            s = summarize(list(values.values()))
            low, high = t_interval(s.mean, s.sd, s.n)
            entry: dict[str, Any] = {"n": s.n, "mean": s.mean, "sd": s.sd, "ci95": [low, high], "per_seed": values}
            if ref is not None and variant != ref:
                reference = values_by_seed(runs, ref, metric)
                d = paired_difference(values, reference, direction)
                rel = relative_difference(values, reference)
                entry["paired_vs_reference"] = {
                    "n": d.n,
                    "mean": d.mean,
                    "sd": d.sd,
                    "ci95": [d.low, d.high],
                    "wins": d.wins,
                    "relative_mean": rel.mean,
                    "relative_ci95": list(t_interval(rel.mean, rel.sd, rel.n)),
                    "method": "paired t, 95%",
                }
            paper = exp.get("paper", {}).get(variant, {}).get(metric)
            if paper is not None:
                entry["paper"] = paper
            per_variant[variant] = entry
        out[metric] = {"direction": direction, "variants": per_variant}
    return out


def metric_figure(path: Path, metric: str, summary: dict[str, Any], reference: str | None) -> None:
    """Left: mean (square) with 95% t interval per variant, seeds as points. Right: each seed's value, variant vs
    reference."""
    plt = pyplot()
    variants = list(summary["variants"])
    panels = 2 if reference is not None and len(variants) > 1 else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels + 1, 3.6), squeeze=False)
    ax = axes[0][0]
    for i, v in enumerate(variants):
        e = summary["variants"][v]
        if e["n"] == 0:
            continue
        low, high = e["ci95"]
        err = None if math.isnan(low) else [[e["mean"] - low], [high - e["mean"]]]
        ax.errorbar(i, e["mean"], yerr=err, fmt="s", color=f"C{i}", ms=7, capsize=5, lw=1.5)
        seeds = list(e["per_seed"].values())
        ax.scatter(np.full(len(seeds), i) + np.linspace(-0.15, 0.15, len(seeds)), seeds, color=f"C{i}", s=12, zorder=3)
    ax.set_xticks(range(len(variants)), variants, rotation=20, ha="right", fontsize=8)
    ax.set(ylabel=metric, title=f"{metric}: mean, 95% t interval, seeds")
    if panels == 2:
        ax = axes[0][1]
        ref = summary["variants"][reference]["per_seed"]
        for i, v in enumerate(variants):
            if v == reference:
                continue
            own = summary["variants"][v]["per_seed"]
            seeds = sorted(set(own) & set(ref))
            ax.scatter([ref[s] for s in seeds], [own[s] for s in seeds], color=f"C{i}", s=14, label=v)
        lims = [*ax.get_xlim(), *ax.get_ylim()]
        lo, hi = min(lims), max(lims)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(xlabel=f"{reference} (reference)", ylabel="variant", title="per seed, same seed paired")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curve_figure(path: Path, key: str, runs: dict[tuple[str, int], dict[str, Any]], variants: list[str]) -> None:
    """Each seed's curve of ``key`` (thin) and the mean over seeds at the steps all seeds share (thick)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, variant in enumerate(variants):
        curves = [
            dict(map(tuple, r["curves"][key]))
            for (v, _), r in runs.items()
            if v == variant and r.get("curves", {}).get(key)
        ]
        for curve in curves:
            ax.plot(list(curve), list(curve.values()), color=f"C{i}", lw=0.6, alpha=0.4)
        if curves:
            common = sorted(set.intersection(*(set(c) for c in curves)))
            ax.plot(common, [np.mean([c[s] for c in curves]) for s in common], color=f"C{i}", lw=2, label=variant)
    ax.set(xlabel="step", ylabel=key, title=f"{key} (mean over seeds; seeds thin)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _early_stopping_lines(exp: dict[str, Any], ok: list[dict[str, Any]]) -> list[str]:
    """One sentence on early stopping and the selected checkpoints (step ranges over the runs), when declared."""
    stop = exp.get("early_stopping")
    if not stop:
        return []
    selected = [r["selected"] for r in ok if r.get("selected")]
    steps = sorted(s["step"] for s in selected if s.get("step") is not None)
    stopped = sorted(s["stopped_step"] for s in selected)
    spread = (
        f" Selected steps {steps[0]}-{steps[len(steps) // 2]}-{steps[-1]} (min-median-max); training stopped at"
        f" steps {stopped[0]}-{stopped[len(stopped) // 2]}-{stopped[-1]}."
        if steps and stopped
        else ""
    )
    return [
        "",
        f"Every fit and tuning trial stops early on `{stop['metric']}` ({stop['mode']}, patience {stop['patience']}"
        f" validations, min_delta {stop['min_delta']:g}); the test evaluates the best validation checkpoint, and a"
        f" tuning trial scores its best validation value.{spread}",
    ]


def _tuning_lines(out: Path, exp: dict[str, Any]) -> list[str]:
    tune = exp.get("tune")
    if not tune:
        return []
    search = (
        f"a grid search, each of its {tune['trials']} points once per variant"
        if tune.get("sampler") == "grid"
        else f"Optuna TPE, {tune['trials']} trials per variant counting pruned and failed ones, median pruning"
    )
    lines = [
        "",
        f"**Tuning** ({search}, selected on `{tune['metric']}` ({tune['direction']}), seed {tune['seed']}"
        + (f", trials with {_overrides_text(tune['overrides'])}" if tune.get("overrides") else "")
        + "; never on test data):",
        "",
        "| variant | search space | best | trials complete |",
        "|---|---|---|---|",
    ]
    for variant in exp["variants"]:
        path = out / "tune" / variant / RESULT_FILE
        result = json.loads(path.read_text()) if path.is_file() else {}
        space = ", ".join(f"`{k}` {_describe_dist(d)}" for k, d in exp["spaces"][variant].items())
        best = ", ".join(
            f"{k.rsplit('.', 1)[-1]}={fmt(v) if isinstance(v, float) else v}"
            for k, v in result.get("params", {}).items()
        )
        count = f"{result.get('complete', '-')}/{result.get('trials', '-')}"
        lines.append(f"| {variant} | {space} | {best or '-'} ({fmt(result.get('value'))}) | {count} |")
    return lines


def _overrides_text(overrides: dict[str, Any]) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in overrides.items())


def _describe_dist(dist: dict[str, Any]) -> str:
    if "choices" in dist:
        return f"in {dist['choices']}"
    return f"[{dist['low']}, {dist['high']}]{' log' if dist.get('log') else ''}"


def render(
    out: Path,
    exp: dict[str, Any],
    runs: dict[tuple[str, int], dict[str, Any]],
    summary: dict[str, Any],
    prefix: str = "",
) -> str:
    """The markdown of the report; figure links are ``prefix + file name``."""
    ok = [r for r in runs.values() if r.get("status") == "ok"]
    failed = [r for r in runs.values() if r.get("status") != "ok"]
    commits = sorted({short_commit(r.get("git_commit")) for r in ok})
    versions = ok[0].get("versions", {}) if ok else {}
    ref = exp["reference"]
    seed_text = ", ".join(map(str, exp["seeds"]))
    seed_keys = ", ".join(f"`{k}`" for k in exp["seed_keys"])
    lines = [f"# {exp['title']}", ""]
    if exp["description"]:
        lines += [exp["description"], ""]
    lines += [
        f"Experiment `{exp['plugin']}/{exp['name']}`{' (smoke size)' if exp['smoke'] else ''}: "
        f"`framework experiment run {exp['file']}`, then "
        f"`framework experiment report`. Seeds {seed_text}; each seed sets {seed_keys}"
        f"{' (' + exp['seed_controls'] + ')' if exp['seed_controls'] else ''}. "
        f"{len(ok)} runs ok, {len(failed)} failed. Commit {', '.join(commits) or '-'}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        + ".",
    ]
    lines += _early_stopping_lines(exp, ok)
    lines += _tuning_lines(out, exp)
    for metric, entry in summary.items():
        better = "lower" if entry["direction"] == "min" else "higher"
        has_paper = any("paper" in e for e in entry["variants"].values())
        head = ["variant", "n", "mean +- sd"] + (["paper"] if has_paper else [])
        if ref is not None:
            head += [f"paired diff vs {ref} (95% CI)", "relative (95% CI)", "better on seeds"]
        lines += ["", f"## {metric} ({better} is better)", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for variant, e in entry["variants"].items():
            cells = [
                variant + (" (reference)" if variant == ref else ""),
                str(e["n"]),
                f"{fmt(e['mean'])} +- {fmt(e['sd'])}",
            ]
            if has_paper:
                cells.append(fmt(e.get("paper")))
            if ref is not None:
                d = e.get("paired_vs_reference")
                if d is None:
                    cells += ["-", "-", "-"]
                else:
                    low, high = d["relative_ci95"]
                    cells += [
                        f"{fmt(d['mean'])} [{fmt(d['ci95'][0])}, {fmt(d['ci95'][1])}]",
                        f"{pct(d['relative_mean'])} [{pct(low)}, {pct(high)}]",
                        f"{d['wins']}/{d['n']}",
                    ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"![{metric}]({prefix}{slug(metric)}.png)"]
    for key in exp.get("curves", []):
        lines += ["", f"![{key}]({prefix}curve_{slug(key)}.png)"]
    missing = missing_runs(exp, runs)
    if missing:
        lines += [
            "",
            f"**Not run yet** ({len(missing)}): {', '.join(missing)}; `framework experiment run` finishes them.",
        ]
    if failed:
        lines += ["", "## Failed runs", "", "| variant | seed | error |", "|---|---|---|"]
        lines += [f"| {r['variant']} | {r['seed']} | {str(r.get('error')).replace('|', '/')} |" for r in failed]
    if ref is not None:
        lines += [
            "",
            f"Paired differences are variant minus {ref} on the same seed; the interval is the two-sided 95% "
            "t interval of their mean (n - 1 degrees of freedom); `relative` is the same for (variant - reference) / "
            "|reference| per seed; `better on seeds` counts seeds where the variant is strictly better.",
        ]
    return "\n".join(lines) + "\n"


def call_analysis(
    spec: str, out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str = ""
) -> str:
    """Call ``module:function(out, exp, runs, prefix) -> markdown``: a plugin's own analysis of the committed results
    (figures it writes into ``out`` are linked as ``prefix + name``)."""
    module, _, name = spec.partition(":")
    if not name:
        raise ExperimentError(f"analysis={spec!r}: give module:function")
    return getattr(importlib.import_module(module), name)(out, exp, runs, prefix)


def embed(page: Path, name: str, text: str) -> None:
    """Replace the block between ``<!-- experiment:name -->`` and ``<!-- /experiment:name -->`` in ``page``."""
    start, end = f"<!-- experiment:{name} -->", f"<!-- /experiment:{name} -->"
    content = page.read_text()
    if start not in content or end not in content:
        raise ExperimentError(f"--page {page}: add the markers {start} and {end} where the report should go")
    before, rest = content.split(start, 1)
    after = rest.split(end, 1)[1]
    demoted = re.sub(r"^(#+) ", r"#\1 ", text, flags=re.M)  # the report's headings sit one level below the page's
    page.write_text(f"{before}{start}\n{demoted}{end}{after}")


def write_report(out: str | Path, page: str | Path | None = None, figures: bool = True) -> Path:
    """Write report.md, summary.json and (unless ``figures`` is false) the figures into ``out``; optionally embed
    the report in ``page``."""
    out = Path(out)
    if not (out / EXPERIMENT_FILE).is_file():
        raise ExperimentError(
            f"{out}: no {EXPERIMENT_FILE}; point at the output directory of `framework experiment run`"
        )
    exp = json.loads((out / EXPERIMENT_FILE).read_text())
    runs = latest_runs(read_results(out), exp)
    summary = summarize_experiment(exp, runs)
    for metric, entry in summary.items() if figures else ():
        metric_figure(out / f"{slug(metric)}.png", metric, entry, exp["reference"])
    for key in exp.get("curves", []) if figures else ():
        curve_figure(out / f"curve_{slug(key)}.png", key, runs, exp["variants"])
    analysis = exp.get("analysis")
    failed = [
        {"variant": r["variant"], "seed": r["seed"], "error": r.get("error")}
        for r in runs.values()
        if r.get("status") != "ok"
    ]
    write_json_atomically(out / SUMMARY_FILE, {"experiment": exp["name"], "metrics": summary, "failed": failed})
    extra = call_analysis(analysis, out, exp, runs, LINK_PREFIX) if analysis else ""  # computed once
    (out / REPORT_FILE).write_text(render(out, exp, runs, summary) + extra.replace(LINK_PREFIX, ""))
    if page is not None:
        page = Path(page)
        prefix = os.path.relpath(out, page.parent) + "/"
        embed(page, exp["name"], render(out, exp, runs, summary, prefix) + extra.replace(LINK_PREFIX, prefix))
    return out / REPORT_FILE
