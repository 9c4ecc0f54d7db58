"""Anchor and label construction on hand-built participants, and the leakage guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework_plugins.gap_transformer.anchors import build_anchors, label_visit
from framework_plugins.gap_transformer.schema import FEATURES, clean_cohort
from framework_plugins.gap_transformer.synthetic import simulate_cohort


def _participant(rid: int, months: list[float], cdrsb: list[float], dx: list[str]) -> pd.DataFrame:
    rows = pd.DataFrame(
        {
            "RID": rid,
            "VISCODE": [f"m{int(m):02d}" for m in months],
            "DX": dx,
            "AGE": 70.0,
            "Years_bl": np.array(months) / 12,
            "PTGENDER": "Female",
            "PTEDUCAT": 16,
            "APOE4": 1,
            "CDRSB": cdrsb,
        }
    )
    for column in FEATURES:
        if column != "CDRSB":
            rows[column] = np.arange(len(rows), dtype=float) + 10 * rid
    return rows


def _anchors(*participants: pd.DataFrame):
    return build_anchors(clean_cohort(pd.concat(participants, ignore_index=True)), max_visits=4)


def test_window_edges_18_and_30_months_are_inclusive():
    a = _anchors(
        _participant(1, [0, 18], [1.0, 2.5], ["MCI", "MCI"]), _participant(2, [0, 30], [1.0, 4.0], ["MCI"] * 2)
    )
    np.testing.assert_allclose(a.y, [1.5, 3.0])


def test_visits_just_outside_the_window_give_no_anchor_and_are_reported():
    a = _anchors(
        _participant(1, [0, 17.9, 30.1], [1.0, 2.0, 3.0], ["MCI"] * 3),
        _participant(2, [0, 24], [1.0, 2.0], ["MCI", "MCI"]),
    )
    assert a.rid.tolist() == [2]
    assert a.report["no_visit_in_window"] == [1] and a.report["participants_with_anchors"] == 1


def test_closest_to_24_months_wins_and_ties_go_to_the_earlier_visit():
    times, cdr = np.array([0, 20, 27]) / 12, np.array([1.0, 2.0, 3.0])
    assert label_visit(times, cdr, 0) == 2  # |27 - 24| = 3 < |20 - 24| = 4
    times = np.array([0, 18, 30]) / 12
    assert label_visit(times, cdr, 0) == 1  # 18 and 30 are both 6 months away: the earlier one


def test_missing_cdrsb_at_the_closest_visit_falls_back_to_the_next_closest():
    a = _anchors(_participant(1, [0, 24, 29], [1.0, np.nan, 3.5], ["MCI", "MCI", "MCI"]))
    assert a.y.tolist() == [2.5] and a.label_years == pytest.approx([29 / 12], abs=1e-6)


def test_only_mci_visits_with_cdrsb_are_anchors():
    a = _anchors(
        _participant(1, [0, 6, 12, 30, 36], [0.0, np.nan, 2.0, 3.0, 4.0], ["CN", "MCI", "MCI", "MCI", "Dementia"])
    )
    # visit 0 is CN, visit 6 has no CDR-SB; visit 12 (MCI) -> 30 (18 months) or 36 (24 months): 36
    assert a.years.tolist() == [1.0] and a.y.tolist() == [2.0]


def test_a_cohort_without_anchors_raises():
    with pytest.raises(ValueError, match="no usable anchor"):
        _anchors(_participant(2, [0, 24], [3.0, 5.0], ["Dementia", "Dementia"]))


def test_history_is_the_last_max_visits_up_to_the_anchor_in_time_order():
    a = _anchors(_participant(1, [0, 6, 12, 18, 24, 36, 48], [1, 1, 1.5, 2, 2, 3, 4], ["MCI"] * 7))
    last = np.flatnonzero(a.years == 2.0)[0]  # anchor at m24, label m48
    np.testing.assert_allclose(a.times[last], (np.array([6, 12, 18, 24]) - 24) / 12)
    assert a.visit_valid[last].all()
    first = np.flatnonzero(a.years == 0.0)[0]
    assert a.visit_valid[first].tolist() == [True, False, False, False]
    assert np.isnan(a.values[first, 1:]).all()


def test_leakage_guard_changing_rows_after_an_anchor_never_changes_its_inputs():
    clean = clean_cohort(simulate_cohort(60, seed=3))
    base = build_anchors(clean)
    rng = np.random.default_rng(0)
    for k in rng.choice(len(base), size=15, replace=False):
        rid, t = base.rid[k], base.years[k]
        changed = clean.copy()
        after = (changed["RID"] == rid) & (changed["YEARS"] > t)
        for column in FEATURES:
            changed.loc[after, column] = rng.normal(size=after.sum()) * 100
        changed.loc[after, "DX"] = "Dementia"
        new_visit = changed[changed["RID"] == rid].iloc[[-1]].assign(YEARS=t + 0.01)
        changed = pd.concat([changed, new_visit]).sort_values(["RID", "YEARS"], kind="stable").reset_index(drop=True)
        new = build_anchors(changed)
        j = np.flatnonzero((new.rid == rid) & (new.years == t))
        assert j.size <= 1
        if j.size == 0:  # the anchor lost its label visit (outcome changed), which is allowed; inputs are what count
            continue
        j = j[0]
        for name in ("values", "times", "visit_valid", "static", "last_observed"):
            np.testing.assert_array_equal(getattr(new, name)[j], getattr(base, name)[k], err_msg=name)
