"""correlation.py against scipy.stats and independent least-squares computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from framework_plugins.graph_sparsify.correlation import (
    correlation,
    partial_correlation,
    ranks,
    regression,
    within_slope,
)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.standard_normal(60)
    x = z + 0.7 * rng.standard_normal(60)
    y = 0.5 * x - z + 0.5 * rng.standard_normal(60)
    return x, y, z


def test_pearson_and_its_fisher_interval_match_scipy(data):
    x, y, _ = data
    ours, ref = correlation(x, y), stats.pearsonr(x, y)
    ci = ref.confidence_interval(0.95)
    assert ours.r == pytest.approx(ref.statistic, rel=1e-12)
    assert (ours.low, ours.high) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_spearman_with_ties_matches_scipy(data):
    x, y, _ = data
    x = np.round(x, 0)  # many ties
    assert correlation(x, y, "spearman").r == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)
    np.testing.assert_array_equal(ranks(x), stats.rankdata(x))


def test_regression_matches_linregress(data):
    x, y, _ = data
    ours, ref = regression(x, y), stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(x) - 2) * ref.stderr
    assert (ours.slope, ours.intercept) == pytest.approx((ref.slope, ref.intercept), rel=1e-12)
    assert (ours.low, ours.high) == pytest.approx((ref.slope - half, ref.slope + half), rel=1e-10)


def test_partial_correlation_is_the_closed_form_for_one_covariate(data):
    x, y, z = data
    r = lambda a, b: stats.pearsonr(a, b).statistic  # noqa: E731
    closed = (r(x, y) - r(x, z) * r(y, z)) / np.sqrt((1 - r(x, z) ** 2) * (1 - r(y, z) ** 2))
    ours = partial_correlation(x, y, z)
    assert ours.r == pytest.approx(closed, rel=1e-10)
    assert correlation(x, y).r < 0 < ours.r  # z confounds: the sign flips once it is removed


def test_within_slope_is_the_dummy_variable_regression(data):
    """b and its standard error from y ~ b x + one intercept per group, by lstsq on the full design matrix."""
    x, y, _ = data
    groups = np.repeat(np.arange(6), 10)
    y = y + 3.0 * groups  # group offsets the within slope must ignore
    ours = within_slope(x, y, groups)
    design = np.column_stack([x, np.eye(6)[groups]])
    coef, rss, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = len(x) - 6 - 1
    cov = rss[0] / dof * np.linalg.inv(design.T @ design)
    half = stats.t.ppf(0.975, dof) * np.sqrt(cov[0, 0])
    assert ours.slope == pytest.approx(coef[0], rel=1e-10)
    assert (ours.low, ours.high) == pytest.approx((coef[0] - half, coef[0] + half), rel=1e-8)


def test_degenerate_inputs_give_nan():
    assert np.isnan(regression(np.ones(5), np.arange(5.0)).slope)
    assert np.isnan(correlation(np.arange(3.0), np.arange(3.0)).low)  # n < 4: no interval
    assert np.isnan(within_slope(np.arange(4.0), np.arange(4.0), np.arange(4)).slope)  # one point per group
    with pytest.raises(ValueError, match="method='kendall'"):
        correlation(np.arange(5.0), np.arange(5.0), "kendall")
