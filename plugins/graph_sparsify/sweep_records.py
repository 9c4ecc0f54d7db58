"""The per-draw records of :class:`~framework_plugins.graph_sparsify.sweep.SparsifierSweep` read back from an
experiment's results: one row per (variant, seed, samples factor f, draw, representation layer)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

KEY = re.compile(r"^test/sweep/q(?P<f>[^/]+)/d(?P<d>\d+)/(?:layer(?P<layer>\d+)/)?(?P<name>[^/]+)$")
GRAPH_FIELDS = ("eps_hat", "kept_fraction", "op_gap", "op_bound")

Row = dict[str, Any]


def sweep_rows(runs: dict[tuple[str, int], dict[str, Any]]) -> list[Row]:
    """Rows {variant, seed, factor, draw, layer, eps_hat, kept_fraction, op_gap, op_bound, <probe>...} of every ok
    run, sorted by (variant order of ``runs``, seed, factor, draw, layer); fields a draw did not log (``op_bound``
    and the bounds for eps_hat >= 1) are nan."""
    rows: dict[tuple, Row] = {}
    graph: dict[tuple, dict[str, float]] = {}
    order = {v: i for i, v in enumerate(dict.fromkeys(v for v, _ in runs))}
    for (variant, seed), record in runs.items():
        if record.get("status") != "ok":
            continue
        for key, value in record.get("metrics", {}).items():
            match = KEY.match(key)
            if match is None:
                continue
            draw = (variant, seed, float(match["f"]), int(match["d"]))
            if match["layer"] is None:
                graph.setdefault(draw, {})[match["name"]] = float(value)
            else:
                row = rows.setdefault((*draw, int(match["layer"])), {})
                row[match["name"]] = float(value)
    out = []
    for (variant, seed, factor, draw, layer), probes in rows.items():
        info = graph.get((variant, seed, factor, draw), {})
        row = {"variant": variant, "seed": seed, "factor": factor, "draw": draw, "layer": layer}
        row.update({name: info.get(name, math.nan) for name in GRAPH_FIELDS})
        out.append({**row, **probes})
    return sorted(out, key=lambda r: (order[r["variant"]], r["seed"], r["factor"], r["draw"], r["layer"]))


def column(rows: list[Row], name: str) -> np.ndarray:
    """The field ``name`` of every row as a float array (nan where a row lacks it)."""
    return np.array([r.get(name, math.nan) for r in rows], dtype=float)


def select(rows: list[Row], **fields: Any) -> list[Row]:
    """The rows whose fields equal the given values."""
    return [r for r in rows if all(r[k] == v for k, v in fields.items())]
