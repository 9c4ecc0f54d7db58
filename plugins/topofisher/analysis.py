"""Report sections of the TopoFisher experiments (``analysis:`` in ``configs/topofisher/experiments/*.yaml``).

They read the run records (the test/ metrics each run logged); only :func:`spiral` copies one figure out of a run
directory:

- :func:`fisher_ellipses`: the exact ln|F| the runs logged and the 1-sigma ellipses of N(0, F^-1) for the seed-mean
  held-out F of every variant (from ``test/F_ij``) next to the exact one (``test/F_exact_ij``).
- :func:`spiral`: the ellipses plus the vertex filtration of each variant that has one (its first seed's
  ``filtration.png`` from the test, copied next to the results while the run directory exists; the committed copy
  is shown afterwards).
- :func:`simulator_shift`: the change of held-out ln|F| between the two named test sets of the lensing experiment,
  Delta = ln|F| on Gaussian maps - ln|F| on lognormal maps (same seeds, same C_l), per variant over seeds, plus the
  ellipses.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framework.experiments.report import fmt
from framework.experiments.stats import summarize, t_interval
from framework.figures import pyplot
from framework_plugins.topofisher.plots import ellipse

Runs = dict[tuple[str, int], dict[str, Any]]
SHIFT_FROM, SHIFT_TO = "test/lognormal/log_det_F", "test/gaussian/log_det_F"


def matrix_from_metrics(metrics: dict[str, float], key: str) -> np.ndarray | None:
    """The symmetric (p, p) matrix whose upper triangle a run logged as ``<key>_ij`` (i <= j); None if absent."""
    p = 0
    while f"{key}_{p}{p}" in metrics:
        p += 1
    if p == 0:
        return None
    m = np.empty((p, p))
    for i in range(p):
        for j in range(i, p):
            m[i, j] = m[j, i] = metrics[f"{key}_{i}{j}"]
    return m


def ok_runs(runs: Runs, variant: str) -> list[dict[str, Any]]:
    """The finished records of one variant, in seed order."""
    return [r for (v, _), r in sorted(runs.items()) if v == variant and r.get("status") == "ok"]


def mean_fisher(runs: Runs, variant: str, key: str = "test/F") -> np.ndarray | None:
    """Mean over the variant's seeds of the held-out Fisher matrices it logged (None if none did)."""
    matrices = [m for r in ok_runs(runs, variant) if (m := matrix_from_metrics(r["metrics"], key)) is not None]
    return np.mean(matrices, axis=0) if matrices else None


def exact_fisher(runs: Runs) -> np.ndarray | None:
    """The exact Fisher matrix logged by the runs (the same closed form for every run of an experiment)."""
    for record in runs.values():
        if record.get("status") == "ok" and (m := matrix_from_metrics(record["metrics"], "test/F_exact")) is not None:
            return m
    return None


def log_det(matrix: np.ndarray) -> float:
    """ln|M| of a symmetric matrix; -inf unless it is positive definite."""
    sign, value = np.linalg.slogdet(matrix)
    return float(value) if sign > 0 else -math.inf


def ellipse_figure(path: Path, title: str, fishers: dict[str, np.ndarray], exact: np.ndarray | None) -> None:
    """1-sigma contours of N(0, F^-1) (first two parameters) of each named F, the exact one dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for i, (name, fisher) in enumerate(fishers.items()):
        if log_det(fisher) > -math.inf:
            ax.plot(*ellipse(torch.from_numpy(fisher)).T, color=f"C{i}", label=f"{name} ({log_det(fisher):.2f})")
    if exact is not None:
        ax.plot(*ellipse(torch.from_numpy(exact)).T, "k--", label=f"exact ({log_det(exact):.2f})")
    ax.set(title=title, xlabel=r"$\delta\theta_1$", ylabel=r"$\delta\theta_2$")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ellipse_section(out: Path, exp: dict[str, Any], runs: Runs, prefix: str) -> list[str]:
    """Markdown lines: the exact ln|F| (if logged) and the ellipse figure of the seed-mean held-out F."""
    exact = exact_fisher(runs)
    fishers = {v: f for v in exp["variants"] if (f := mean_fisher(runs, v)) is not None}
    lines = ["", "## Fisher ellipses", ""]
    if exact is not None:
        lines += [
            f"Exact ln\\|F\\| of the simulator (closed form, logged as `test/log_det_F_exact`): {log_det(exact):.4g}."
        ]
        lines += [""]
    if fishers:
        ellipse_figure(out / "fisher_ellipses.png", f"{exp['name']}: seed-mean held-out F", fishers, exact)
        lines += [
            "1-sigma ellipses of N(0, F^-1) for each variant's held-out F averaged over seeds (legend: its ln\\|F\\|)"
            + (", exact F dashed" if exact is not None else "")
            + ".",
            "",
            f"![Fisher ellipses]({prefix}fisher_ellipses.png)",
        ]
    return lines


def fisher_ellipses(out: Path, exp: dict[str, Any], runs: Runs, prefix: str = "") -> str:
    """Report section: the exact ln|F| and the Fisher ellipses (see the module docstring)."""
    return "\n".join(ellipse_section(out, exp, runs, prefix)) + "\n"


def shift_deltas(runs: Runs, variant: str) -> list[float]:
    """Per seed (in seed order): ln|F| on Gaussian maps - ln|F| on lognormal maps, both held out, same seeds."""
    return [
        r["metrics"][SHIFT_TO] - r["metrics"][SHIFT_FROM]
        for r in ok_runs(runs, variant)
        if SHIFT_TO in r["metrics"] and SHIFT_FROM in r["metrics"]
    ]


def simulator_shift(out: Path, exp: dict[str, Any], runs: Runs, prefix: str = "") -> str:
    """Report section: the shift table Delta = ln|F|(Gaussian maps) - ln|F|(lognormal maps) per variant, mean +- sd
    over seeds and the 95% t interval of its mean, the information ratio exp(mean Delta), then the ellipses."""
    lines = [
        "",
        "## Simulator shift: ln|F| on Gaussian maps minus ln|F| on lognormal maps",
        "",
        f"Delta = `{SHIFT_TO}` - `{SHIFT_FROM}` of the same run (the same test seeds and C_l; each variant's summary "
        "and compressor were fitted on its own training simulator). Negative: the summary loses information when "
        "the maps are Gaussian.",
        "",
        "| variant | n | Delta mean +- sd | 95% t interval | exp(mean Delta) |",
        "|---|---|---|---|---|",
    ]
    for variant in exp["variants"]:
        s = summarize(shift_deltas(runs, variant))
        if s.n == 0:
            continue
        low, high = t_interval(s.mean, s.sd, s.n)
        ratio = fmt(math.exp(s.mean))
        lines.append(f"| {variant} | {s.n} | {fmt(s.mean)} +- {fmt(s.sd)} | [{fmt(low)}, {fmt(high)}] | {ratio} |")
    return "\n".join(lines + ellipse_section(out, exp, runs, prefix)) + "\n"


def filtration_section(out: Path, exp: dict[str, Any], runs: Runs, prefix: str) -> list[str]:
    """Markdown lines showing ``filtration_<variant>.png`` for each variant whose test logged a vertex-filtration
    figure: copied from its first finished seed's run directory when that exists, else the copy committed
    earlier."""
    lines = []
    for variant in exp["variants"]:
        target = out / f"filtration_{variant}.png"
        records = ok_runs(runs, variant)
        if records and (found := sorted(Path(records[0]["run_dir"]).glob("figures/test-*/filtration.png"))):
            shutil.copyfile(found[-1], target)
        if target.exists():
            lines += [
                "",
                f"## Filtration: {variant}",
                "",
                f"The first test point cloud of seed {records[0]['seed'] if records else '?'} coloured by its vertex "
                "filtration value f and, for a learned filtration, by the learned correction to the distance to "
                "measure, g = f - DTM.",
                "",
                f"![{variant} filtration]({prefix}filtration_{variant}.png)",
            ]
    return lines


def spiral(out: Path, exp: dict[str, Any], runs: Runs, prefix: str = "") -> str:
    """Report section: the exact ln|F|, the Fisher ellipses and the trained vertex filtrations."""
    return "\n".join(ellipse_section(out, exp, runs, prefix) + filtration_section(out, exp, runs, prefix)) + "\n"
