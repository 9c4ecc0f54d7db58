"""Every test runs in its own empty working directory with W&B disabled, no leftover distributed state, and the
same random draws whichever tests ran before it on its pytest-xdist worker (the split changes between runs)."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_run(request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("FRAMEWORK_RUN_DIR", raising=False)
    # one intra-op thread per pytest-xdist worker (the workers already use the cores), else up to two
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))
    torch.manual_seed(0)
    module_generator = getattr(request.module, "GEN", None)  # a test module's shared generator restarts per test
    if isinstance(module_generator, torch.Generator):
        module_generator.manual_seed(0)
    yield
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
