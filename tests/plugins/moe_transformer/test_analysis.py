"""Steps to the reference's final loss: interpolation between validations and per-seed speed-ups, by hand."""

from __future__ import annotations

import pytest

from framework_plugins.moe_transformer.analysis import speedups, steps_to_reach, steps_to_target


def test_steps_to_reach_interpolates_linearly_between_validations():
    curve = [[100, 3.0], [0, 5.0], [200, 2.0]]  # unsorted on purpose
    assert steps_to_reach(curve, 2.5) == pytest.approx(150.0)  # 3.0 at 100, 2.0 at 200
    assert steps_to_reach(curve, 4.0) == pytest.approx(50.0)
    assert steps_to_reach(curve, 5.5) == 0.0
    assert steps_to_reach(curve, 1.0) is None


def _record(curve):
    return {"status": "ok", "curves": {"val/loss": curve}}


def test_speedups_are_reference_steps_over_variant_steps_per_seed():
    runs = {
        ("adamw", 0): _record([[0, 5.0], [100, 3.0], [200, 2.0]]),  # target 2.0, reached at 200
        ("muon", 0): _record([[0, 5.0], [100, 2.5], [200, 1.5]]),  # 2.0 at 150
        ("adamw", 1): _record([[0, 5.0], [100, 4.0], [200, 3.0]]),  # target 3.0 at 200
        ("muon", 1): _record([[0, 5.0], [100, 3.5], [200, 3.2]]),  # never
    }
    table = speedups(runs, "adamw")
    assert table["adamw"] == {0: 1.0, 1: 1.0}
    assert table["muon"][0] == pytest.approx(200 / 150) and table["muon"][1] is None
    text = steps_to_target(None, {"reference": "adamw"}, runs, "")
    row = next(line for line in text.splitlines() if line.startswith("| muon"))
    assert f"{200 / 150:.2f}x" in row and "1 of 2" in row
