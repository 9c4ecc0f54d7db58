"""The report sections of the TopoFisher experiments, on hand-made run records: the shift table against numpy /
scipy, the Fisher matrices rebuilt from the logged entries, the exact ln|F| line and the ellipse figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from framework_plugins.topofisher.analysis import (
    fisher_ellipses,
    matrix_from_metrics,
    mean_fisher,
    shift_deltas,
    simulator_shift,
)
from framework_plugins.topofisher.grf import grf_fisher


def record(variant: str, seed: int, metrics: dict[str, float], status: str = "ok") -> dict:
    return {"variant": variant, "seed": seed, "status": status, "metrics": metrics}


def fisher_metrics(f: np.ndarray, key: str = "test/F") -> dict[str, float]:
    return {f"{key}_00": f[0, 0], f"{key}_01": f[0, 1], f"{key}_11": f[1, 1]}


def test_matrix_from_metrics_rebuilds_the_symmetric_matrix():
    f = np.array([[4.0, -1.5], [-1.5, 2.0]])
    assert np.array_equal(matrix_from_metrics(fisher_metrics(f), "test/F"), f)
    assert matrix_from_metrics({"test/log_det_F": 1.0}, "test/F") is None


def test_shift_table_matches_numpy_and_scipy(tmp_path):
    rng = np.random.default_rng(0)
    on_lognormal, on_gaussian = rng.normal(10, 0.3, 4), rng.normal(9, 0.3, 4)
    runs = {
        ("tf", s): record("tf", s, {"test/lognormal/log_det_F": a, "test/gaussian/log_det_F": b})
        for s, (a, b) in enumerate(zip(on_lognormal, on_gaussian, strict=True))
    }
    runs[("tf", 9)] = record("tf", 9, {}, status="failed")  # failed runs are left out
    d = on_gaussian - on_lognormal
    assert shift_deltas(runs, "tf") == pytest.approx(list(d))
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(len(d)))
    text = simulator_shift(tmp_path, {"variants": ["tf"], "name": "x"}, runs)
    row = next(line for line in text.splitlines() if line.startswith("| tf |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "4"
    assert cells[2] == f"{d.mean():.4g} +- {d.std(ddof=1):.4g}"
    assert cells[3] == f"[{low:.4g}, {high:.4g}]"
    assert cells[4] == f"{math.exp(d.mean()):.4g}"
    assert "fisher_ellipses.png" not in text and not list(tmp_path.iterdir())  # no F logged: no figure


def test_fisher_section_reports_the_exact_log_det_and_draws_the_mean_ellipses(tmp_path):
    exact = grf_fisher(torch.tensor([1.0, 0.0], dtype=torch.float64), 32).numpy()
    fishers = [0.3 * exact, 0.5 * exact]
    runs = {
        ("pi", s): record("pi", s, {**fisher_metrics(f), **fisher_metrics(exact, "test/F_exact")})
        for s, f in enumerate(fishers)
    }
    assert np.allclose(mean_fisher(runs, "pi"), 0.4 * exact)
    text = fisher_ellipses(tmp_path, {"variants": ["pi"], "name": "grf"}, runs, prefix="grf/")
    assert f"{np.linalg.slogdet(exact)[1]:.4g}." in text and "11.08" in text  # the closed form at N = 32
    assert "![Fisher ellipses](grf/fisher_ellipses.png)" in text
    assert (tmp_path / "fisher_ellipses.png").stat().st_size > 0
