from __future__ import annotations

import io
import random

import numpy as np
import torch

from framework.callbacks import RNGStateCallback


def test_rng_state_round_trips_through_a_weights_only_checkpoint():
    cb = RNGStateCallback()
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    buffer = io.BytesIO()
    torch.save(cb.state_dict(), buffer)
    expected = (torch.rand(2), np.random.rand(2), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    buffer.seek(0)
    cb.load_state_dict(torch.load(buffer, weights_only=True))
    got = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]
