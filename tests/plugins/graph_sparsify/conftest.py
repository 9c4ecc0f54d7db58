"""One BLAS and one torch intra-op thread for these tests: scatter-based message passing with 2 OpenMP threads on a
shared 2-core machine was measured 40x slower than with one (3.3 s vs 0.07 s per step)."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)
