"""The report sections of the meta_rl experiments: the exactness table (closed form) and the wall-time table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from framework_plugins.meta_rl.analysis import (
    GRADIENT_CASES,
    exactness_and_wall_time,
    wall_time,
)


def _cells(line: str) -> list[str]:
    """The cells of a markdown table row; ``\\|`` inside a cell is not a separator."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


@pytest.fixture(scope="module")
def report() -> str:
    exp = {"variants": ["sgmrl", "maml", "untrained"]}
    runs = {
        ("sgmrl", 0): {"status": "ok", "wall_s": 10.0},
        ("sgmrl", 1): {"status": "ok", "wall_s": 14.0},
        ("maml", 0): {"status": "ok", "wall_s": 8.0},
        ("maml", 1): {"status": "failed", "wall_s": 1.0},
    }
    state = torch.random.get_rng_state()
    text = exactness_and_wall_time(Path("."), exp, runs, "")
    assert torch.equal(torch.random.get_rng_state(), state)  # the analysis leaves the global RNG alone
    return text


def _table(text: str, header_start: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return rows


def test_exactness_table_sgmrl_is_exact_and_maml_fomaml_are_biased(report):
    rows = _table(report, "| case | check |")
    assert all(len(r) == 4 for r in rows)  # the escaped |D_in| does not split a cell
    by_check: dict[str, list[tuple[float, float]]] = {}
    for case, check, error, scale in rows:
        if check.startswith("E["):
            value = 0.0 if error == "< 1e-13" else float(error)  # rounding level is printed as a bound
            by_check.setdefault(check, []).append((value, float(scale)))
    assert len(by_check["E[sgmrl] vs grad V"]) == len(GRADIENT_CASES)
    assert all(err < 1e-12 and scale > 1e-2 for err, scale in by_check["E[sgmrl] vs grad V"])
    for biased in ("E[maml] vs grad V", "E[fomaml] vs grad V"):
        assert all(err > 1e-2 * scale for err, scale in by_check[biased]), biased
    ((dice, dice_scale),) = by_check["E[dice Hessian] vs hess J"]
    ((reinforce, _),) = by_check["E[reinforce Hessian] vs hess J"]
    assert dice < 1e-12 < dice_scale and reinforce > 0.1 * dice_scale
    gains = [float(r[2]) for r in rows if r[1].startswith("V(theta) - J(theta)")]
    assert len(gains) == len(GRADIENT_CASES) and all(g > 0 for g in gains)  # alpha = 0.5 is a small enough step


def test_wall_time_table_is_the_mean_over_ok_runs(report):
    rows = {r[0]: r[1:] for r in _table(report, "| variant | runs |")}
    assert rows == {"sgmrl": ["2", "12.0"], "maml": ["1", "8.0"], "untrained": ["0", "nan"]}
    assert wall_time(Path("."), {"variants": ["maml"]}, {("maml", 3): {"status": "ok", "wall_s": 2.5}}, "").endswith(
        "| maml | 1 | 2.5 |\n"
    )
