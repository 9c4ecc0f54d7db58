"""What the local executor's fork server imports once before it forks any run: the worker (torch, Lightning, the
CLI), W&B and every registered plugin, so that no run pays these imports again (about 1-3 s each). Nothing here runs
a tensor operation. A plugin that fails to import is left for its run, which reports the error with its log."""

from __future__ import annotations

import contextlib
from importlib import import_module
from importlib.metadata import entry_points

import framework.experiments.worker  # noqa: F401
from framework.registry import ENTRY_POINT_GROUP

for _entry_point in entry_points(group=ENTRY_POINT_GROUP):
    with contextlib.suppress(Exception):
        import_module(_entry_point.value)
with contextlib.suppress(ImportError):
    import wandb  # noqa: F401
