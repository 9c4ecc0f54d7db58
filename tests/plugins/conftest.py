"""Plugin tests run many small ops (message passing, float64 enumeration, tiny MLPs): one torch intra-op thread and
one BLAS thread are faster there than two, and do not oversubscribe a shared 2-core machine (measured: scatter-based
message passing 3.3 s vs 0.07 s per step with 2 vs 1 threads under load)."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_thread(isolated_run):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)
