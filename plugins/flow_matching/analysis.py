"""The closed-form parts of the flow-matching results (no training), called by ``framework experiment report``:

- ``exact_euler_tables`` (``trained_fields.yaml``): exact Euler W2 of the *true* velocity field against N;
- ``regularity_sections`` (``regularity.yaml``): the paper's distinguishing claims, i.e. Euler constants against
  the spatial extent R of the target, the sqrt(d)/N rate on non-product targets, and the field's Lipschitz
  constant over time against the bound of ``regularity.py``, next to the learned fields of the runs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from framework.figures import pyplot
from framework_plugins.flow_matching.analytic import euler_w2_gaussian, euler_w2_mixture_1d, loglog_slope
from framework_plugins.flow_matching.regularity_report import regularity_sections
from framework_plugins.flow_matching.targets import analytic_target

__all__ = ["exact_euler_curves", "exact_euler_tables", "regularity_sections"]

STEPS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
SLOPE_FROM = 16  # the slope is fitted over N >= 16
MIXTURE_1D = {"weights": [0.3, 0.7], "means": [-2.0, 1.5], "stds": [0.5, 0.8]}
DIMS = (1, 16, 256)


@cache
def exact_euler_curves() -> dict[str, tuple[int, list[float]]]:
    """name -> (d, [W2(Euler_N law, target) for N in STEPS]) for N(0, I), the anisotropic d = 16 Gaussian of the
    configs (seed 0) and the product mixture (W2 = sqrt(d) W2_1D by the product structure). Cached: the mixture
    quadrature is the slow part and the curves never change. Do not mutate the result."""
    curves: dict[str, tuple[int, list[float]]] = {}
    for d in DIMS:
        curves[f"N(0, I), d={d}"] = (d, [euler_w2_gaussian(np.ones(d), n) for n in STEPS])
    aniso = analytic_target("anisotropic_gaussian", dim=16, seed=0).eigvals[0].numpy()
    curves["anisotropic Gaussian, d=16"] = (16, [euler_w2_gaussian(aniso, n) for n in STEPS])
    mix_1d = [euler_w2_mixture_1d(n_steps=n, **MIXTURE_1D) for n in STEPS]
    for d in DIMS:
        curves[f"product mixture, d={d}"] = (d, [float(np.sqrt(d)) * w for w in mix_1d])
    return curves


def exact_euler_tables(out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str) -> str:
    """Markdown table of N W2 / sqrt(d) and the slope over N >= 16, and the figure ``exact_euler_w2.png``."""
    curves = exact_euler_curves()
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, (d, w2) in curves.items():
        ax.loglog(STEPS, np.array(w2) / np.sqrt(d), "o-", ms=3, label=name)
    ax.set(xlabel="Euler steps N", ylabel="W2 / sqrt(d)", title="Exact Euler W2 of the true velocity field")
    ax.legend(fontsize=7)
    fig.savefig(out / "exact_euler_w2.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    lines = [
        "",
        "## Exact Euler error of the true velocity field (closed forms, no training)",
        "",
        "N * W2(Euler_N law, target) / sqrt(d), and the log-log slope of W2 in N over N >= 16. Gaussian rows use the "
        "eigenvalue product formula; mixture rows use Gauss-Legendre quadrature of the 1-D quantile coupling "
        f"(pi = {MIXTURE_1D['weights']}, m = {MIXTURE_1D['means']}, s = {MIXTURE_1D['stds']}) and W2 = sqrt(d) W2_1D.",
        "",
        "| target | " + " | ".join(f"N={n}" for n in STEPS) + " | slope |",
        "|---|" + "---|" * len(STEPS) + "---|",
    ]
    for name, (d, w2) in curves.items():
        tail = [(n, e) for n, e in zip(STEPS, w2, strict=True) if n >= SLOPE_FROM]
        cells = " | ".join(f"{n * e / np.sqrt(d):.3f}" for n, e in zip(STEPS, w2, strict=True))
        lines.append(f"| {name} | {cells} | {loglog_slope(*zip(*tail, strict=True)):.3f} |")
    lines += ["", f"![exact Euler W2]({prefix}exact_euler_w2.png)", ""]
    return "\n".join(lines)
