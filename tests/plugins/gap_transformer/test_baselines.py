"""History summaries match a hand computation; the least-squares baseline equals numpy's lstsq on them, ridge
shrinks it, and boosted trees fit through the same trainer path (fit on the training split at setup)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from framework_plugins.gap_transformer import ADNICohort, BoostedTrees, LeastSquares
from framework_plugins.gap_transformer.features import NEVER, feature_names, history_features
from framework_plugins.gap_transformer.schema import FEATURES


@pytest.fixture(scope="module")
def cohort() -> ADNICohort:
    data = ADNICohort(n_participants=120, max_visits=6, batch_size=32)
    data.setup("fit")
    return data


def test_history_features_by_hand():
    f = len(FEATURES)
    values, mask = torch.zeros(1, 4, f), torch.zeros(1, 4, f)
    times = torch.tensor([[-3.0, -1.5, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, False]])
    cdr, fdg = FEATURES.index("CDRSB"), FEATURES.index("FDG")
    values[0, :3, cdr] = torch.tensor([1.0, 2.0, 4.0])
    mask[0, :3, cdr] = 1
    values[0, 0, fdg], mask[0, 0, fdg] = -0.7, 1
    out = history_features(values, mask, times, valid, torch.tensor([[0.1, 1.0, -0.2, 2.0]]))[0].numpy()
    col = {name: out[j] for j, name in enumerate(feature_names())}
    assert col["last_CDRSB"] == 4.0 and col["age_CDRSB"] == 0.0
    assert np.isclose(col["last_FDG"], -0.7) and col["age_FDG"] == 3.0
    assert col["last_MMSE"] == 0.0 and col["age_MMSE"] == NEVER
    np.testing.assert_allclose(col["slope"], np.polyfit([-3.0, -1.5, 0.0], [1.0, 2.0, 4.0], 1)[0])
    assert col["gap"] == 1.5 and col["visits"] == 3 and col["APOE4"] == 2.0


def test_ols_equals_numpy_lstsq(cohort):
    model = LeastSquares(alpha=0.0)
    train, test = cohort.splits["train"], cohort.splits["test"]
    model.fit_estimator(train)
    x = history_features(train.values, train.mask, train.times, train.visit_valid, train.static).numpy()
    design = np.column_stack([np.ones(len(x)), x])
    coef = np.linalg.lstsq(design, train.y.double().numpy(), rcond=None)[0]
    xt = history_features(test.values, test.mask, test.times, test.visit_valid, test.static).numpy()
    expected = np.column_stack([np.ones(len(xt)), xt]) @ coef
    np.testing.assert_allclose(model(test).detach().double().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_ridge_shrinks_and_residual_targets_the_reference_gap(cohort):
    train, test = cohort.splits["train"], cohort.splits["test"]
    ols, ridge = LeastSquares(alpha=0.0), LeastSquares(alpha=1e6)
    ols.fit_estimator(train)
    ridge.fit_estimator(train)
    assert ridge(test).detach().std() < 0.05 * ols(test).detach().std()  # a huge penalty predicts ~ the mean
    residual = LeastSquares(alpha=1e6, residual=True)
    residual.fit_estimator(train)
    shift = (train.y - train.y_ref).mean()
    torch.testing.assert_close(residual(test).detach(), test.y_ref + shift, atol=0.05, rtol=0)


def test_boosted_trees_are_deterministic_and_fit_better_than_the_mean(cohort):
    train = cohort.splits["train"]
    a, b = BoostedTrees(n_estimators=50), BoostedTrees(n_estimators=50)
    a.fit_estimator(train)
    b.fit_estimator(train)
    torch.testing.assert_close(a(train), b(train))
    assert ((a(train) - train.y) ** 2).mean() < 0.8 * train.y.var()


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [(LeastSquares, {"alpha": -1.0}, "alpha"), (BoostedTrees, {"learning_rate": 0.0}, "learning_rate")],
)
def test_bad_hyperparameters_name_the_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)
