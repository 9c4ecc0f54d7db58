"""Data tools shared by plugins: reproducible loaders and local-file checks."""

from framework.data.files import require_file
from framework.data.loaders import EpochSeededSampler, make_loader

__all__ = ["EpochSeededSampler", "make_loader", "require_file"]
