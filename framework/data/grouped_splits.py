"""Group-level (e.g. participant-level) train / val / test splits: no group ever appears in two folds."""

from __future__ import annotations

import numpy as np


def grouped_split(groups: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of a train / val / test split in which every group (participant) lies in exactly one fold.

    ``test_fraction`` of the *groups* go to test (``GroupShuffleSplit(test_size=test_fraction, random_state=seed)``),
    then ``val_fraction`` of all groups are carved out of the remaining ones the same way (``random_state=seed+1``).

    Args:
        groups: (n_rows,) group label of each row (any hashable dtype).
        val_fraction, test_fraction: fractions of groups, each in [0, 1) with sum < 1.
        seed: split seed (the participant-level "seed" of a repeated evaluation).

    Returns:
        {"train", "val", "test"} -> sorted int64 row indices; checked by :func:`assert_groups_disjoint`.
    """
    groups = np.asarray(groups)
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name}={value} must be in [0, 1); set it to a fraction of participants such as 0.2.")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training groups; make it < 1."
        )
    n_groups = len(np.unique(groups))
    if n_groups < 3:
        raise ValueError(f"grouped_split needs at least 3 distinct groups, got {n_groups}.")
    rows = np.arange(len(groups))
    rest, test = _split(rows, groups, test_fraction, seed)
    inner = val_fraction / (1.0 - test_fraction)
    train, val = _split(rest, groups, inner, seed + 1)
    splits = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    assert_groups_disjoint(groups, splits)
    return splits


def _split(rows: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows) with ``fraction`` of the groups of ``rows`` held out."""
    from sklearn.model_selection import GroupShuffleSplit  # lazy: keeps `import framework` light

    if fraction == 0.0:
        return rows, rows[:0]
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    keep, held = next(splitter.split(rows, groups=groups[rows]))
    return rows[keep], rows[held]


def assert_groups_disjoint(groups: np.ndarray, splits: dict[str, np.ndarray]) -> None:
    """Raise ``AssertionError`` naming the folds and a shared group if any group has rows in two folds, or if the
    folds do not partition the rows."""
    groups = np.asarray(groups)
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = np.intersect1d(groups[splits[a]], groups[splits[b]])
            assert shared.size == 0, f"group {shared[0]} is in both the {a!r} and {b!r} folds"
    covered = np.sort(np.concatenate([np.asarray(v) for v in splits.values()]))
    assert np.array_equal(covered, np.arange(len(groups))), "the folds do not partition the rows"
