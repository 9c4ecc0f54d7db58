"""The report section of the decoupled-descent experiments, on hand-made run records with known answers."""

from __future__ import annotations

from scipy import stats

from framework_plugins.decoupled_descent.analysis import by_iterate, mean_curve, se_rows, tracking_report


def record(variant: str, seed: int, metrics: dict[str, float], curves: dict | None = None) -> dict:
    return {"variant": variant, "seed": seed, "status": "ok", "metrics": metrics, "curves": curves or {}}


def test_train_curves_move_back_one_step_to_their_iterate():
    assert by_iterate("train/corrected_error", [[1, 0.4], [2, 0.3]]) == {0: 0.4, 1: 0.3}
    assert by_iterate("val/error", [[1, 0.4], [2, 0.3]]) == {1: 0.4, 2: 0.3}
    assert mean_curve([{0: 1.0, 1: 2.0, 2: 5.0}, {1: 4.0, 2: 7.0}]) == {1: 3.0, 2: 6.0}
    assert mean_curve([]) == {}


def test_se_rows_pair_each_seed_and_keep_the_note_to_the_full_gmm_experiment():
    se = {"test/se_m": 2.0, "test/se_q": 12.0, "test/se_error": 0.25}
    sims = [(2.1, 12.5, 0.26, 0.27), (1.9, 12.1, 0.24, 0.22), (2.3, 12.3, 0.255, 0.25)]
    runs = {
        ("dd", s): record(
            "dd", s, {**se, "test/m": m, "test/q": q, "test/exact_error": e, "test/corrected_train_error": c}
        )
        for s, (m, q, e, c) in enumerate(sims)
    }
    runs |= {("gd", s): record("gd", s, {"test/m": 1.0, "test/q": 1.0, "test/exact_error": 0.3}) for s in range(3)}
    exp = {"name": "gmm", "variants": ["dd", "gd"], "smoke": False}
    rows = se_rows(exp, runs)
    assert [r[:2] for r in rows] == [["dd", "m"], ["dd", "q"], ["dd", "test error"], ["dd", "corrected train error"]]
    diff = [m - 2.0 for m, *_ in sims]  # simulation - SE per seed
    mean, half = sum(diff) / 3, stats.t.ppf(0.975, 2) * stats.tstd(diff) / 3**0.5
    assert rows[0][4] == f"{mean:.4g} [{mean - half:.4g}, {mean + half:.4g}]" and rows[0][5] == "3"
    assert rows[0][6] == "2.377 / 2.346" and rows[3][6] == "- / 0.2521"
    assert rows[3][3] == f"{sum(c for *_, c in sims) / 3:.4g} +- {stats.tstd([c for *_, c in sims]):.4g}"
    assert all(r[6] == "-" for r in se_rows({**exp, "smoke": True}, runs))
    assert all(r[6] == "-" for r in se_rows({**exp, "name": "gmm_control"}, runs))


def test_tracking_report_writes_the_figure_and_links_it(tmp_path):
    curves = {"val/error": [[1, 0.3], [2, 0.25]], "train/corrected_error": [[1, 0.5], [2, 0.31]]}
    curves["train/raw_error"] = [[1, 0.5], [2, 0.1]]
    runs = {("dd", 0): record("dd", 0, {}, curves), ("gd", 0): record("gd", 0, {}, {"val/error": [[1, 0.3]]})}
    text = tracking_report(tmp_path, {"name": "xor", "variants": ["dd", "gd"], "smoke": False}, runs, "res/")
    assert (tmp_path / "tracking.png").stat().st_size > 0 and "![tracking](res/tracking.png)" in text
    assert "State evolution" not in text
    assert tracking_report(tmp_path / "none", {"name": "xor", "variants": ["dd"]}, {}, "") == ""
