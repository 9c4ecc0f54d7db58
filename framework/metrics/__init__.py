"""Distribution distances between sample sets, shared by generative plugins."""

from framework.metrics.distances import (
    energy_distance,
    mmd_rbf,
    moment_matched_gaussian,
    sample_distances,
    sliced_w2,
    w2_empirical,
)

__all__ = [
    "energy_distance",
    "mmd_rbf",
    "moment_matched_gaussian",
    "sample_distances",
    "sliced_w2",
    "w2_empirical",
]
