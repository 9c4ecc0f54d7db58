"""Data tools shared by plugins: reproducible loaders, local-file checks and safe readers of dataset files."""

from framework.data.files import require_file
from framework.data.grouped_splits import assert_groups_disjoint, grouped_split
from framework.data.idx import read_idx, read_idx_images_and_labels
from framework.data.loaders import EpochSeededSampler, MemoizedDataset, make_loader
from framework.data.safe_pickle import UnsafePickleError, load_data_pickle
from framework.data.splits import TensorSplitsDataModule

__all__ = [
    "EpochSeededSampler",
    "MemoizedDataset",
    "TensorSplitsDataModule",
    "UnsafePickleError",
    "assert_groups_disjoint",
    "grouped_split",
    "load_data_pickle",
    "make_loader",
    "read_idx",
    "read_idx_images_and_labels",
    "require_file",
]
