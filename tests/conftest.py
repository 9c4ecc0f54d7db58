"""Every test runs in its own empty working directory with W&B disabled and no leftover distributed state."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("FRAMEWORK_RUN_DIR", raising=False)
    # one intra-op thread per pytest-xdist worker (the workers already use the cores), else up to two
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))
    yield
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
