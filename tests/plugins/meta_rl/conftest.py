"""Meta-RL tests run many tiny float64 ops: one thread avoids oversubscription on a shared 2-core machine."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread(isolated_run):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
