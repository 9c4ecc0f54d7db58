"""Report section of the graph_sparsify experiments: log-log slopes of the perturbations (same trained weights on G
and on its sparsifier H) against the measured eps_hat, the paper's O(eps) law, fitted by least squares over the
per-seed records of ``framework experiment report``.

Model: log v = b log eps_hat + log C for a perturbation v; O(eps) is b = 1. Points are the ok runs with
0 < eps_hat < 1 (the law's regime: below 1, H keeps G connected; the dense control H = G has eps_hat = 0) and
v > 0, grouped by sparsifier family = the variant name up to its first ``_`` (``er_q2`` -> ``er``). A family is
fitted only when its points come from at least two variants (one variant's seeds span no range of eps_hat).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from framework.figures import pyplot

EPS, KEPT = "test/eps_hat", "test/kept_fraction"
PERTURBATIONS = {
    "test/filter_gap": "fixed-filter gap",
    "test/geometry/same_weights/layer0/rel_error": "layer-1 rel. error",
    "test/geometry/same_weights/layer1/rel_error": "output rel. error",
    "test/geometry/same_weights/layer0/gram_rel": "layer-1 Gram rel. error",
    "test/weight_distance": "twin weight distance",
}
FIGURE = "loglog_slopes.png"

Point = tuple[str, int, float, float]  # (variant, seed, eps_hat, perturbation)


def family(variant: str) -> str:
    """The sparsifier family of a variant: its name up to the first ``_`` (``uniform_q4`` -> ``uniform``)."""
    return variant.split("_", 1)[0]


def loglog_points(
    runs: dict[tuple[str, int], dict[str, Any]], metric: str, eps_max: float = 1.0
) -> dict[str, list[Point]]:
    """Per family, the (variant, seed, eps_hat, value) of every ok run that logged both, with 0 < eps_hat < eps_max and
    value > 0 (finite logarithms), in the order of ``runs``."""
    out: dict[str, list[Point]] = {}
    for (variant, seed), record in runs.items():
        m = record.get("metrics", {})
        if record.get("status") != "ok" or EPS not in m or metric not in m:
            continue
        eps, value = float(m[EPS]), float(m[metric])
        if 0 < eps < eps_max and value > 0:
            out.setdefault(family(variant), []).append((variant, seed, eps, value))
    return out


def loglog_fit(eps: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Least squares of log v = b log eps + log C over the points: b = cov(log eps, log v) / var(log eps) and
    C = exp(mean log v - b mean log eps). Returns (b, C); (nan, nan) with fewer than two distinct eps."""
    x, y = np.log(np.asarray(eps, dtype=float)), np.log(np.asarray(values, dtype=float))
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan
    xc = x - x.mean()
    b = float(xc @ (y - y.mean()) / (xc @ xc))
    return b, float(np.exp(y.mean() - b * x.mean()))


def per_seed_slopes(points: list[Point]) -> list[float]:
    """The slope b fitted over each seed's own points (seeds with at least two distinct eps_hat), by seed."""
    seeds = sorted({s for _, s, _, _ in points})
    slopes = []
    for seed in seeds:
        eps = np.array([e for _, s, e, _ in points if s == seed])
        values = np.array([v for _, s, _, v in points if s == seed])
        b, _ = loglog_fit(eps, values)
        if not math.isnan(b):
            slopes.append(b)
    return slopes


def slope_rows(runs: dict[tuple[str, int], dict[str, Any]], families: list[str]) -> list[dict[str, Any]]:
    """One row per (perturbation, family, then ``all`` families pooled): number of points, b, C and the per-seed
    slopes; b, C are nan and the per-seed slopes empty for a family whose points come from a single variant."""
    rows = []
    for metric, label in PERTURBATIONS.items():
        by_family = loglog_points(runs, metric)
        groups = [(f, by_family[f]) for f in families if f in by_family]
        if len(groups) > 1:
            groups.append(("all", [p for _, pts in groups for p in pts]))
        for name, points in groups:
            if len({v for v, _, _, _ in points}) < 2:
                b, c, seed_slopes = math.nan, math.nan, []
            else:
                b, c = loglog_fit(np.array([p[2] for p in points]), np.array([p[3] for p in points]))
                seed_slopes = per_seed_slopes(points)
            rows.append(
                {
                    "metric": metric,
                    "label": label,
                    "family": name,
                    "n": len(points),
                    "slope": b,
                    "C": c,
                    "seed_slopes": seed_slopes,
                }
            )
    return rows


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3g}"


def _figure(path: Path, runs: dict[tuple[str, int], dict[str, Any]], families: list[str], rows: list[dict]) -> None:
    """Left: each perturbation against eps_hat on log-log axes (family = marker, perturbation = colour, fitted
    lines solid, slope 1 dashed). Right: eps_hat against the kept edge fraction per family (runs with eps_hat > 0)."""
    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    markers = dict(zip(families, "osv^D<>p*h", strict=False))
    shown: set[str] = set()
    for i, (metric, label) in enumerate(PERTURBATIONS.items()):
        for name, points in loglog_points(runs, metric).items():
            shown.add(name)
            eps = np.array([p[2] for p in points])
            ax.scatter(eps, [p[3] for p in points], color=f"C{i}", marker=markers.get(name, "o"), s=14, alpha=0.7)
            fit = next(r for r in rows if r["metric"] == metric and r["family"] == name)
            if not math.isnan(fit["slope"]):
                grid = np.geomspace(eps.min(), eps.max(), 20)
                ax.plot(grid, fit["C"] * grid ** fit["slope"], color=f"C{i}", lw=1)
        ax.plot([], [], color=f"C{i}", label=label)
    all_eps = [p[2] for pts in loglog_points(runs, EPS).values() for p in pts]
    if all_eps:
        grid = np.geomspace(min(all_eps), max(all_eps), 20)
        ax.plot(grid, grid, "k--", lw=0.8, label="slope 1")
    for name in sorted(shown, key=families.index):
        ax.scatter([], [], color="gray", marker=markers[name], label=name)
    ax.set(xscale="log", yscale="log", xlabel="measured eps_hat", ylabel="perturbation", title="same weights on G, H")
    ax.legend(fontsize=7)
    for name, marker in markers.items():
        pts = [
            (r["metrics"][KEPT], r["metrics"][EPS])
            for (v, _), r in runs.items()
            if family(v) == name and r.get("status") == "ok" and KEPT in r["metrics"] and r["metrics"].get(EPS, 0) > 0
        ]
        if pts:
            ax2.scatter(*zip(*pts, strict=True), marker=marker, s=16, label=name)
    ax2.axhline(1.0, color="k", lw=0.6, ls=":")
    ax2.set(xlabel="kept edge fraction", ylabel="measured eps_hat", yscale="log", title="eps_hat per run")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def loglog_slopes(out: Path, exp: dict[str, Any], runs: dict[tuple[str, int], dict[str, Any]], prefix: str) -> str:
    """Markdown section: the slope table (pooled least squares over the per-seed records; per-seed slopes mean +- sd)
    and the figure ``loglog_slopes.png`` written into ``out``."""
    families = list(dict.fromkeys(family(v) for v in exp["variants"]))
    rows = slope_rows(runs, families)
    lines = [
        "",
        "## Log-log slopes against the measured eps_hat",
        "",
        "Least squares of log(perturbation) = b log(eps_hat) + log C over every run (seed x variant) with "
        "0 < eps_hat < 1, per sparsifier family (variant name up to its first `_`) and pooled (`all`); the paper's "
        "O(eps) law is b = 1. `per-seed b` fits each seed's own points (mean +- sd over seeds); a family whose "
        "points all come from one variant gets no fit (`-`).",
        "",
        "| perturbation | family | points | b | C | per-seed b (seeds) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        seeds = r["seed_slopes"]
        sd = float(np.std(seeds, ddof=1)) if len(seeds) > 1 else math.nan
        spread = f"{_fmt(float(np.mean(seeds)))} +- {_fmt(sd)} ({len(seeds)})" if seeds else "-"
        lines.append(
            f"| {r['label']} (`{r['metric']}`) | {r['family']} | {r['n']} | {_fmt(r['slope'])} | {_fmt(r['C'])} "
            f"| {spread} |"
        )
    _figure(out / FIGURE, runs, families, rows)
    lines += ["", f"![log-log slopes]({prefix}{FIGURE})", ""]
    return "\n".join(lines)
