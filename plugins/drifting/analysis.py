"""The no-training sections of the drifting results page, called by ``framework experiment report`` through the
``analysis:`` of ``configs/drifting/experiments/kernels_gmm.yaml`` (``kernels_gmm_sections``):

- the companion-elliptic class by its defining elliptic closure, for every kernel of the plugin and two contrast
  kernels outside the class, and the two-cluster identifiability check (``closure.py``);
- escaping mass: what the raw field and the overlap ratio report when part of the generated mass escapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from framework.figures import pyplot
from framework_plugins.drifting.closure import closure_fit, predicted_closure, two_cluster_field
from framework_plugins.drifting.field import normalized_drift_loss
from framework_plugins.drifting.kernels import CONTRAST_KERNELS, KERNELS
from framework_plugins.drifting.module import overlap_ratio

RADII = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
ESCAPED = 0.3  # fraction of q moved by R
TEMPERATURES = (0.02, 0.05, 0.2)
CLOSURE_DIMS = (1, 2, 3, 8)
SEPARATIONS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
NUMERICAL_ZERO = 1e-13  # relative field below this is float64 rounding of two equal mean shifts
ROUNDING = 1e-12  # closure residuals below this are float64 rounding (their digits vary with the BLAS run)


def _pair(values: tuple[float, ...]) -> str:
    """(alpha, beta) to 4 decimals, a rounding-level -0.0 printed as 0.0000."""
    return "(" + ", ".join(f"{round(v, 4) + 0.0:.4f}" for v in values) + ")"


def _residual(value: float) -> str:
    return f"< {ROUNDING:g}" if value < ROUNDING else f"{value:.1e}"


def closure_grid(name: str, ell: float = 1.0) -> torch.Tensor:
    """Radii for the closure fit: (0.05 l, 6 l], inside the support (0.05 l, 0.95 l] for the Wendland kernel."""
    top = 0.95 * ell if name == "wendland" else 6.0 * ell
    return torch.linspace(0.05 * ell, top, 400, dtype=torch.float64)


def companion_class_section(out: Path, prefix: str) -> str:
    """Closure table, two-cluster table and the figure ``companion_class.png``."""
    names = (*KERNELS, *CONTRAST_KERNELS)
    lines = [
        "",
        "## The companion-elliptic class by its defining closure (no training)",
        "",
        "The companion identity E_p[k(|x - y|)(y - x)] = grad(eta * p)(x) holds for every radial kernel (the "
        "tests check it for the contrast kernels too), so it says nothing about the class. The class's defining "
        "property is the elliptic closure k = alpha eta - beta Delta_d eta (alpha > 0, beta >= 0): least-squares "
        "(alpha, beta) on 400 radii (l = 1), Delta_d eta by autograd of the closed-form companion; predicted "
        "(alpha, beta) from the Bessel recurrence (Matern) or eta = l^2 k (Gaussian). IMQ is (1 + r^2)^(-3/2), "
        "Wendland phi_{3,1} has support 1; "
        f"both are outside the class. Residuals below {ROUNDING:g} are shown as such (float64 rounding).",
        "",
        "| kernel | in class | predicted (alpha, beta), d=2 | fitted (alpha, beta), d=2 | "
        + " | ".join(f"residual d={d}" for d in CLOSURE_DIMS)
        + " |",
        "|---|---|---|---|" + "---|" * len(CLOSURE_DIMS),
    ]
    for name in names:
        fits = {d: closure_fit(name, 1.0, d, closure_grid(name)) for d in CLOSURE_DIMS}
        predicted = predicted_closure(name, 1.0, 2)
        pred = "-" if predicted is None else _pair(predicted)
        cells = " | ".join(_residual(fits[d][2]) for d in CLOSURE_DIMS)
        lines.append(f"| {name} | {'yes' if predicted else 'no'} | {pred} | {_pair(fits[2][:2])} | {cells} |")
    fields = {name: [two_cluster_field(name, 1.0, s) for s in SEPARATIONS] for name in names}
    lines += [
        "",
        "Identifiability (V = 0 implies p = q): p and q weigh the same two clusters (20 points each, std 0.25, the "
        "second a copy of the first moved by the separation s) 0.5/0.5 and 0.3/0.7, so p != q. Cells: "
        "max_x ||V_{p,q}(x)|| / max_x ||V+_p(x)|| over the support points, kernel length 1 (Wendland: support 1); "
        f"'0' marks values below {NUMERICAL_ZERO:g} (float64 rounding).",
        "",
        "| kernel | " + " | ".join(f"s={s:g}" for s in SEPARATIONS) + " |",
        "|---|" + "---|" * len(SEPARATIONS),
        *(
            f"| {name} | " + " | ".join("0" if v < NUMERICAL_ZERO else f"{v:.1e}" for v in fields[name]) + " |"
            for name in names
        ),
        "",
        f"![companion class]({prefix}companion_class.png)",
    ]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in names:
        ax.semilogy(SEPARATIONS, [max(v, 1e-17) for v in fields[name]], "o-" if name in KERNELS else "s--", label=name)
    ax.axhline(NUMERICAL_ZERO, color="k", lw=0.6, ls=":")
    ax.set(xlabel="cluster separation s (kernel lengths)", ylabel="max ||V|| / max ||V+||", title="V for p != q")
    ax.legend(fontsize=7)
    fig.savefig(out / "companion_class.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return "\n".join(lines)


def kernels_gmm_sections(
    out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str
) -> str:
    """The ``analysis:`` of ``kernels_gmm.yaml``: the class checks, then the escaping-mass check."""
    return companion_class_section(out, prefix) + "\n" + escaping_mass_section(out, exp, runs, prefix)


def escaping_mass(radii: tuple[float, ...] = RADII, n: int = 2000, seed: int = 0) -> list[tuple[float, float, float]]:
    """(R, raw ||V||^2, overlap ratio) for q_R = fresh samples of p = N(0, I_2) with 30% of them shifted by R (in
    both coordinates), against n samples of p, Laplace kernel. At R = 0, q_R and p are the same law."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    fresh = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    rows = []
    for radius in radii:
        q = fresh.clone()
        q[: int(ESCAPED * n)] += radius
        field = normalized_drift_loss(q, p, "laplace", TEMPERATURES)[1].item()
        rows.append((radius, field, overlap_ratio(q, p, "laplace", 0.5).item()))
    return rows


def escaping_mass_section(
    out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str
) -> str:
    """Markdown table and figure ``escaping_mass.png`` of :func:`escaping_mass`."""
    rows = escaping_mass()
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    radii = [r + 0.1 for r, _, _ in rows]
    ax.semilogx(radii, [f for _, f, _ in rows], "o-", label="raw ||V||^2")
    twin = ax.twinx()
    twin.semilogx(radii, [o for _, _, o in rows], "s-", color="C1", label="overlap ratio")
    ax.set(xlabel="distance R of the escaped 30% (+0.1)", ylabel="raw ||V||^2")
    twin.set_ylabel("overlap ratio")
    fig.legend(loc="upper center")
    fig.savefig(out / "escaping_mass.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    lines = [
        "",
        "## Escaping mass (no training)",
        "",
        f"q_R = {1 - ESCAPED:.0%} fresh samples of p = N(0, I_2) + {ESCAPED:.0%} moved by R; 2000 points each, "
        "Laplace kernel. The raw field is computed from kernel weights, which vanish for far-away mass; the overlap "
        "ratio Phi(q)/Phi(p) keeps counting it.",
        "",
        "| R | raw ||V||^2 | overlap ratio |",
        "|---|---|---|",
        *(f"| {r:g} | {f:.5f} | {o:.3f} |" for r, f, o in rows),
        "",
        f"![escaping mass]({prefix}escaping_mass.png)",
        "",
    ]
    return "\n".join(lines)
