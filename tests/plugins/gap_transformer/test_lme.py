"""BIC selection recovers the covariates of a known LME; the causal BLUP matches its closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework_plugins.gap_transformer.lme import LMEFit, select_lme


def _known_lme(n_groups: int = 120, per_group: int = 4, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group)
    table = pd.DataFrame(rng.normal(size=(len(groups), 5)), columns=["a", "b", "c", "d", "e"])
    b = rng.normal(0, 0.7, n_groups)[groups]
    y = 1.0 + 0.8 * table["a"] - 0.5 * table["c"] + b + rng.normal(0, 0.5, len(groups))
    return table, y.to_numpy(), groups


def test_bic_selection_picks_the_true_covariates():
    table, y, groups = _known_lme()
    fit = select_lme(table, y, groups, candidates=("a", "b", "c", "d", "e"))
    assert set(fit.covariates) == {"a", "c"}
    bics = [b for _, b in fit.bic_path]
    assert all(later < earlier for earlier, later in zip(bics, bics[1:], strict=False))
    slope = dict(zip(fit.covariates, fit.beta[1:] / fit.scale, strict=True))  # back to raw units
    assert abs(slope["a"] - 0.8) < 0.1 and abs(slope["c"] + 0.5) < 0.1
    assert abs(fit.sigma2_b - 0.49) < 0.2 and abs(fit.sigma2 - 0.25) < 0.06


def test_forced_covariates_stay_and_missing_values_are_imputed_by_the_training_mean():
    table, y, groups = _known_lme()
    table.loc[::7, "a"] = np.nan
    fit = select_lme(table, y, groups, candidates=("c",), forced=("e",))
    assert fit.covariates[0] == "e" and "c" in fit.covariates
    x = fit.design(table)
    np.testing.assert_allclose(x[::7, fit.covariates.index("e") + 1], (table["e"][::7] - fit.center[0]) / fit.scale[0])


def test_causal_blup_closed_form():
    fit = LMEFit(
        covariates=("x",), beta=np.array([1.0, 0.0]), center=np.zeros(1), scale=np.ones(1), sigma2_b=2.0, sigma2=1.0
    )
    table = pd.DataFrame({"x": np.zeros(4)})
    y = np.array([3.0, 5.0, 0.0, 9.0])
    rid = np.array([7, 7, 7, 8])
    years = np.array([0.0, 1.0, 2.5, 0.0])
    label_years = np.array([2.0, 3.0, 4.5, 2.0])
    out = fit.predict_blup(table, y, rid, years, label_years)
    # anchor 0 and 1: no outcome observed yet -> population 1.0; anchor 2 (t=2.5): anchor 0's outcome (t=2) is in,
    # residual 2.0, shrinkage 2 / (2 + 1/1) -> 1 + 4/3; participant 8: population.
    np.testing.assert_allclose(out, [1.0, 1.0, 1.0 + 2.0 * 2.0 / 3.0, 1.0])
