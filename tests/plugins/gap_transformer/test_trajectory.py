"""The conditional trajectory LME: its BLUP prediction equals the conditional mean of the joint normal (an
independent numpy implementation), its REML fit recovers a known model, and its inputs (history and statics) come
only from rows at or before the anchor, also when the raw file changes later rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework_plugins.gap_transformer.anchors import build_anchors
from framework_plugins.gap_transformer.schema import STATIC, clean_cohort
from framework_plugins.gap_transformer.synthetic import simulate_cohort
from framework_plugins.gap_transformer.trajectory import TrajectoryLME, anchor_histories, fit_trajectory_lme


def _model(seed: int = 0) -> TrajectoryLME:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2, 2))
    return TrajectoryLME(
        covariates=("APOE4", "AGE"),
        beta=rng.normal(size=6),
        cov_re=a @ a.T + 0.1 * np.eye(2),
        sigma2=0.4,
        center=np.array([0.5, 73.0]),
        scale=np.array([0.6, 7.0]),
    )


def _conditional_mean(model: TrajectoryLME, times: np.ndarray, x: np.ndarray, y: np.ndarray, t_new: float) -> float:
    """E[y_new | y] for the joint normal of (y, y_new): mu_new + S_no S_oo^-1 (y - mu_o), written from the model's
    marginal covariance cov(y_s, y_u) = [1, s] D [1, u]^T + sigma^2 [s = u] (y_new gets its own fresh noise)."""
    all_t = np.r_[times, t_new]
    z = np.column_stack([np.ones(len(all_t)), all_t])
    cov = z @ model.cov_re @ z.T + model.sigma2 * np.eye(len(all_t))
    xs = (x - model.center) / model.scale
    mean = np.array([model.beta @ np.r_[1.0, t, xs, xs * t] for t in all_t])
    k = len(times)
    return float(mean[k] + cov[k, :k] @ np.linalg.solve(cov[:k, :k], y - mean[:k]))


@pytest.mark.parametrize("n_visits", [1, 2, 5])
def test_blup_prediction_equals_the_conditional_normal_mean(n_visits):
    model = _model(n_visits)
    rng = np.random.default_rng(10 + n_visits)
    times = np.sort(rng.uniform(0, 4, n_visits))
    x, y = np.array([1.0, 70.0]), rng.normal(2, 1, n_visits)
    got = model.predict_change([(times, y)], np.array([times[-1]]), x[None], horizon=2.0)[0]
    expected = _conditional_mean(model, times, x, y, times[-1] + 2.0) - y[-1]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_reml_fit_recovers_a_known_random_intercept_and_slope_model():
    rng = np.random.default_rng(0)
    rows = []
    d = np.array([[0.8, 0.1], [0.1, 0.3]])
    for rid in range(400):
        apoe = rng.integers(0, 3)
        b = rng.multivariate_normal([0, 0], d)
        for t in np.sort(rng.uniform(0, 5, 5)):
            y = 1.0 + 0.5 * t + 0.3 * apoe * t + b[0] + b[1] * t + rng.normal(0, 0.5)
            rows.append({"RID": rid, "YEARS": t, "CDRSB": y, "APOE4": float(apoe)})
    fit = fit_trajectory_lme(pd.DataFrame(rows), ("APOE4",))
    slope_per_allele = fit.beta[3] / fit.scale[0]  # the x t coefficient back in raw units
    assert abs(slope_per_allele - 0.3) < 0.08
    np.testing.assert_allclose(fit.cov_re, d, atol=0.15)
    assert abs(fit.sigma2 - 0.25) < 0.04


def test_histories_and_statics_use_only_rows_at_or_before_the_anchor():
    """Rewrite every static column and every score after an anchor in the raw file (and blank APOE4 before it):
    the anchor's history, its trajectory-LME statics and its network statics do not change, except that APOE4 is
    now unknown at the anchor (a later row must not fill it in)."""
    raw = simulate_cohort(40, seed=7)
    anchors = build_anchors(clean_cohort(raw))
    rng = np.random.default_rng(0)
    covariates = tuple(STATIC)
    for k in rng.choice(len(anchors), size=10, replace=False):
        rid, t = anchors.rid[k], anchors.years[k]
        changed = raw.copy()
        later = (changed["RID"] == rid) & (changed["Years_bl"] > t + 1e-9)
        changed.loc[later, ["AGE", "PTEDUCAT", "CDRSB"]] = [99.0, 1.0, 17.0]
        changed.loc[later, "PTGENDER"] = "Female" if raw.loc[later, "PTGENDER"].iloc[0] == "Male" else "Male"
        changed.loc[later, "APOE4"] = 2.0
        changed.loc[(changed["RID"] == rid) & ~later, "APOE4"] = np.nan
        base_clean, new_clean = clean_cohort(raw), clean_cohort(changed)
        base_hist, base_static = anchor_histories(base_clean, anchors.rid[[k]], anchors.years[[k]], covariates)
        new_hist, new_static = anchor_histories(new_clean, anchors.rid[[k]], anchors.years[[k]], covariates)
        for a, b in zip(base_hist[0], new_hist[0], strict=True):
            np.testing.assert_array_equal(a, b)
        apoe = covariates.index("APOE4")
        assert np.isnan(new_static[0, apoe])
        np.testing.assert_array_equal(np.delete(new_static[0], apoe), np.delete(base_static[0], apoe))
        new_anchors = build_anchors(new_clean)
        j = np.flatnonzero((new_anchors.rid == rid) & (new_anchors.years == t))
        if j.size:  # the anchor may lose its label (later CDR-SB changed): only its inputs matter
            assert np.isnan(new_anchors.static[j[0], apoe])
            np.testing.assert_array_equal(np.delete(new_anchors.static[j[0]], apoe), np.delete(anchors.static[k], apoe))
