"""The report section's paired questions and binned errors against hand computations on made-up runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from framework_plugins.gap_transformer.analysis import (
    binned_mse,
    gap_report,
    gap_report_no_gap_effect,
    initial_slopes,
    question_rows,
    slope_table,
)


def _runs() -> dict[tuple[str, int], dict]:
    mse = {"gap_transformer": [2.0, 2.5, 3.0], "no_gap_penalty": [2.1, 2.4, 3.3]}
    runs = {}
    for variant, values in mse.items():
        for seed, value in enumerate(values):
            metrics = {"test/mse": value}
            if variant == "gap_transformer":
                metrics |= {"test/gap_slope_l0h0": 0.1 * (seed + 1), "test/gap_slope_l0h1": 1.0}
            runs[(variant, seed)] = {"status": "ok", "metrics": metrics, "run_dir": "/nonexistent"}
    return runs


def test_question_rows_are_paired_per_seed():
    exp = {"variants": ["gap_transformer", "no_gap_penalty"]}
    (row,) = question_rows(exp, _runs())
    d = np.array([2.0 - 2.1, 2.5 - 2.4, 3.0 - 3.3])
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t_{0.975, 2}
    assert f"{d.mean():+.3f}" in row and f"[{d.mean() - half:+.3f}, {d.mean() + half:+.3f}]" in row
    assert row.endswith("| 2/3 |")


def test_binned_mse_averages_the_per_seed_mse_of_each_bin():
    table = pd.DataFrame(
        {
            "variant": ["a"] * 4,
            "seed": [0, 0, 1, 1],
            "gap": [0.5, 3.0, 0.5, 0.6],
            "observed": [0.0, 0.0, 0.0, 0.0],
            "prediction": [1.0, 2.0, 3.0, 1.0],
        }
    )
    stats = binned_mse(table, "gap", (0.0, 1.0, math.inf))
    assert stats.loc[("a", 0), "mse"] == (1.0 + (9.0 + 1.0) / 2) / 2  # seed 0: 1; seed 1: 5
    assert stats.loc[("a", 0), "n"] == 1.5 and stats.loc[("a", 1), "mse"] == 4.0


def test_slopes_and_the_section_render_without_run_directories(tmp_path):
    slopes = slope_table({}, _runs())
    assert sorted(slopes.slope.round(3)) == [0.1, 0.2, 0.3, 1.0, 1.0, 1.0]
    text = gap_report(tmp_path, {"variants": ["gap_transformer", "no_gap_penalty"]}, _runs(), "x/")
    assert "does the learned gap penalty help?" in text and "![gap_slopes](x/gap_slopes.png)" in text
    assert (tmp_path / "gap_slopes.png").is_file()


def test_initial_slopes_are_the_documented_geometric_spread():
    np.testing.assert_allclose(initial_slopes(2), [0.1, 1.0], rtol=1e-6)
    np.testing.assert_allclose(initial_slopes(3), [0.1, math.sqrt(0.1), 1.0], rtol=1e-6)


def test_slope_table_prints_initial_values_and_the_decay_rate(tmp_path):
    runs = {(("learned_penalty" if v == "gap_transformer" else v), s): r for (v, s), r in _runs().items()}
    exp = {"variants": ["learned_penalty", "no_gap_penalty"]}
    text = gap_report(tmp_path, exp, runs, "x/")
    assert "does a gap penalty trained at a scaled learning rate help?" in text
    assert "1 / tau is 0.667 per year" in text  # the simulator's tau = 1.5 years
    assert "| learned_penalty | 0 | 0 | 0.100 | 0.200 | 0.100 | 0.300 |" in text  # initial, mean, min, max
    assert "1 / tau is 0 per year" in gap_report_no_gap_effect(tmp_path, exp, runs, "x/")
