"""The log-log slope analysis against numpy.polyfit on synthetic per-seed records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framework_plugins.graph_sparsify.analysis import (
    EPS,
    FIGURE,
    loglog_fit,
    loglog_slopes,
    per_seed_slopes,
    slope_rows,
)

METRIC = "test/geometry/same_weights/layer1/rel_error"


def synthetic_runs(seed: int = 0) -> dict[tuple[str, int], dict]:
    """er: v = 0.3 eps^1.1 x noise; uniform: v = 0.2 eps^0.7 x noise (4 seeds); a dense control (eps 0, v 0), an
    eps > 1 run and a failed run that the fit must ignore, and a one-variant family (knn) that gets no fit."""
    rng = np.random.default_rng(seed)
    runs: dict[tuple[str, int], dict] = {}
    for s in range(4):
        runs[("dense", s)] = {"status": "ok", "metrics": {EPS: 0.0, METRIC: 0.0, "test/filter_gap": 0.0}}
        for name, c, b, eps0 in (("er", 0.3, 1.1, 0.8), ("uniform", 0.2, 0.7, 0.6)):
            for q in (1, 2, 4, 8):
                eps = eps0 / math.sqrt(q) * rng.uniform(0.9, 1.1)
                value = c * eps**b * math.exp(rng.normal(0, 0.05))
                runs[(f"{name}_q{q}", s)] = {"status": "ok", "metrics": {EPS: eps, METRIC: value}}
        runs[("er_q0.5", s)] = {"status": "ok", "metrics": {EPS: 1.4, METRIC: 50.0}}  # outside the law's regime
        runs[("knn_k5", s)] = {"status": "ok", "metrics": {EPS: 0.5 + 0.01 * s, METRIC: 0.1 * (1 + s)}}
    runs[("er_q16", 0)] = {"status": "failed", "metrics": {}}
    return runs


def polyfit_points(runs: dict, prefixes: tuple[str, ...], seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    keep = [
        r["metrics"]
        for (v, s), r in runs.items()
        if v.split("_")[0] in prefixes and r["status"] == "ok" and 0 < r["metrics"][EPS] < 1 and seed in (None, s)
    ]
    return np.array([m[EPS] for m in keep]), np.array([m[METRIC] for m in keep])


def test_pooled_and_per_seed_slopes_match_numpy_polyfit():
    runs = synthetic_runs()
    rows = {(r["metric"], r["family"]): r for r in slope_rows(runs, ["dense", "er", "uniform", "knn"])}
    for family, prefixes in (("er", ("er",)), ("uniform", ("uniform",)), ("all", ("er", "uniform", "knn"))):
        eps, value = polyfit_points(runs, prefixes)
        slope, intercept = np.polyfit(np.log(eps), np.log(value), 1)
        row = rows[(METRIC, family)]
        assert row["n"] == len(eps) == {"er": 16, "uniform": 16, "all": 36}[family]
        assert row["slope"] == pytest.approx(slope, rel=1e-10)
        assert row["C"] == pytest.approx(math.exp(intercept), rel=1e-10)
        expected = [np.polyfit(*np.log(polyfit_points(runs, prefixes, s)), 1)[0] for s in range(4)]
        np.testing.assert_allclose(row["seed_slopes"], expected, rtol=1e-10)
    assert rows[(METRIC, "er")]["slope"] == pytest.approx(1.1, abs=0.15)
    assert rows[(METRIC, "uniform")]["slope"] == pytest.approx(0.7, abs=0.15)
    assert (METRIC, "dense") not in rows  # eps_hat = 0 has no logarithm: the control is not a point
    assert ("test/filter_gap", "dense") not in rows
    single = rows[(METRIC, "knn")]  # one variant: its seeds span no range of eps_hat
    assert single["n"] == 4 and math.isnan(single["slope"]) and single["seed_slopes"] == []


def test_exact_power_law_and_degenerate_inputs():
    eps = np.array([0.1, 0.2, 0.4, 0.8])
    b, c = loglog_fit(eps, 0.5 * eps**1.0)
    assert b == pytest.approx(1.0, abs=1e-12) and c == pytest.approx(0.5, rel=1e-12)
    assert all(math.isnan(x) for x in loglog_fit(np.array([0.3, 0.3]), np.array([0.1, 0.2])))
    assert per_seed_slopes([("a", 0, 0.5, 0.1), ("a", 1, 0.2, 0.1), ("b", 1, 0.4, 0.2)]) == pytest.approx([1.0])


def test_report_section_lists_the_slopes_and_writes_the_figure(tmp_path):
    runs = synthetic_runs()
    exp = {"variants": ["dense", "er_q1", "er_q2", "er_q4", "er_q8", "uniform_q1", "uniform_q2", "knn_k5"]}
    text = loglog_slopes(tmp_path, exp, runs, prefix="sub/")
    eps, value = polyfit_points(runs, ("er",))
    slope = np.polyfit(np.log(eps), np.log(value), 1)[0]
    assert f"| er | 16 | {slope:.3g} |" in text and "| knn | 4 | - | - | - |" in text
    assert f"![log-log slopes](sub/{FIGURE})" in text and (tmp_path / FIGURE).is_file()
