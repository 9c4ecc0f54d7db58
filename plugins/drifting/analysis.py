"""The escaping-mass check of the drifting results page (no training): what the raw field and the overlap ratio
report when part of the generated mass escapes far from the data.

Called by ``framework experiment report`` through the ``analysis:`` of
``configs/drifting/experiments/kernels_gmm.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from framework.figures import pyplot
from framework_plugins.drifting.field import normalized_drift_loss
from framework_plugins.drifting.module import overlap_ratio

RADII = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
ESCAPED = 0.3  # fraction of q moved by R
TEMPERATURES = (0.02, 0.05, 0.2)


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
