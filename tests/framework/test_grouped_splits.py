"""Participant-level splits: no group in two folds, fractions counted in groups, seeds change the split."""

from __future__ import annotations

import numpy as np
import pytest

from framework.data import assert_groups_disjoint, grouped_split


def _groups() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.repeat(np.arange(200), rng.integers(1, 7, size=200))  # unequal rows per group


@pytest.mark.parametrize("seed", range(5))
def test_no_group_in_two_folds_and_rows_partitioned(seed):
    groups = _groups()
    splits = grouped_split(groups, 0.1, 0.2, seed)
    sets = {k: set(groups[v]) for k, v in splits.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert sum(len(v) for v in splits.values()) == len(groups)
    assert len(sets["test"]) == 40 and len(sets["val"]) == 20  # fractions are of groups, not rows


def test_seeds_give_different_splits_and_same_seed_the_same():
    groups = _groups()
    a, b, c = grouped_split(groups, 0.1, 0.2, 0), grouped_split(groups, 0.1, 0.2, 0), grouped_split(groups, 0.1, 0.2, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_assertion_names_a_shared_group():
    groups = np.array([0, 0, 1, 1, 2])
    with pytest.raises(AssertionError, match="group 0 is in both the 'train' and 'test' folds"):
        assert_groups_disjoint(groups, {"train": np.array([0, 2, 4]), "test": np.array([1, 3])})


@pytest.mark.parametrize(("val", "test", "field"), [(0.5, 0.5, "leaves no training"), (0.1, 1.2, "test_fraction")])
def test_bad_fractions_name_the_field(val, test, field):
    with pytest.raises(ValueError, match=field):
        grouped_split(_groups(), val, test, 0)
