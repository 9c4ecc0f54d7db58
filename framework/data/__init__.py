"""Data tools shared by plugins: reproducible loaders and local-file checks."""

from framework.data.files import require_file
from framework.data.grouped_splits import assert_groups_disjoint, grouped_split
from framework.data.loaders import EpochSeededSampler, MemoizedDataset, make_loader
from framework.data.splits import TensorSplitsDataModule

__all__ = [
    "EpochSeededSampler",
    "MemoizedDataset",
    "TensorSplitsDataModule",
    "assert_groups_disjoint",
    "grouped_split",
    "make_loader",
    "require_file",
]
