"""The matrix Onsager correction: its vectorized response against a per-sample loop written from the recursion,
its isotropic limit (the scalar rule), and the tracking gap it closes on anisotropic features where the scalar
rule fails."""

from __future__ import annotations

import math

import torch

from framework.optim.decoupled_descent import OnsagerMemory
from framework.optim.decoupled_step import full_batch_step
from framework.optim.readout import ReadoutNetwork, classification_error
from framework_plugins.decoupled_descent.linear_response import (
    LinearResponseMemory,
    linear_response_step,
    response_drive,
)


def test_the_drive_equals_the_per_sample_recursion_written_out():
    gen = torch.Generator().manual_seed(0)
    n, k, d = 7, 2, 5
    r, x, g, h = (
        torch.randn(*shape, generator=gen, dtype=torch.float64) for shape in ((n, k, d), (n, d), (n, k), (n, k, k))
    )
    expected = torch.zeros(n, k, d, dtype=torch.float64)
    for i in range(n):
        expected[i] = torch.outer(g[i], x[i]) / math.sqrt(d)
        for j in range(n):
            if j != i:
                expected[i] += torch.outer(h[j] @ (r[i] @ x[j]) / math.sqrt(d), x[j]) / math.sqrt(d)
    torch.testing.assert_close(response_drive(r, x, g, h), expected)


def anisotropic_mixture(n: int, d: int, decades: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x = y v / sqrt(d) + diag(s)^{1/2} z, s log-uniform over 2 ``decades`` decades (mean 1), ||v||^2/d = 2.25."""
    gen = torch.Generator().manual_seed(seed)
    spectrum = torch.logspace(-decades, decades, d, dtype=torch.float64)
    v = torch.randn(d, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    v = 1.5 * math.sqrt(d) * v / v.norm()
    y = torch.randint(0, 2, (n,), generator=gen).double() * 2 - 1
    x = (
        y[:, None] * v / math.sqrt(d)
        + torch.randn(n, d, generator=gen, dtype=torch.float64) * (spectrum / spectrum.mean()).sqrt()
    )
    return x.float(), y.float()


def tracking_gaps(x, y, xt, yt, onsager: str, steps: int, lr: float) -> list[float]:
    """|corrected train error - test error| of W^t, t = 0..steps-1, for scalar (Delta = 1) or matrix DD."""
    net = ReadoutNetwork(x.shape[1])
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=0.05)
    index = torch.arange(len(x))
    memory = OnsagerMemory(1, 1.0) if onsager == "scalar" else LinearResponseMemory(1)
    memory.allocate(*((len(x),) if onsager == "scalar" else (len(x), x.shape[1])))
    gaps = []
    for _ in range(steps):
        test = classification_error(net(xt), yt).mean().item()
        if onsager == "scalar":
            stats = full_batch_step(net, optimizer, x, y, index, memory)
        else:
            stats = linear_response_step(net, optimizer, x, y, index, memory)
        gaps.append(abs(stats["corrected_error"].item() - test))
    return gaps


def test_isotropic_features_give_the_scalar_correction():
    x, y = anisotropic_mixture(300, 600, 0.0, seed=1)  # 0 decades: isotropic, Delta = 1
    net, index = ReadoutNetwork(600), torch.arange(300)
    scalar, matrix = OnsagerMemory(1, 1.0), LinearResponseMemory(1)
    scalar.allocate(300)
    matrix.allocate(300, 600)
    for memory in (scalar, matrix):
        net.first.weight.data.zero_()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.3, weight_decay=0.05)
        for _ in range(5):
            (full_batch_step if memory is scalar else linear_response_step)(net, optimizer, x, y, index, memory)
    c_scalar, c_matrix = scalar.memory[:, 0], matrix.correction[:, 0]  # Delta M and R_i x_i / sqrt(d)
    assert c_scalar.abs().mean() > 0.5  # a correction of order one ...
    assert (c_matrix - c_scalar).abs().mean() < 0.1 * c_scalar.abs().mean()  # ... equal to O(1/sqrt(d))


def test_the_matrix_correction_tracks_where_the_scalar_one_fails():
    d, n = 300, 300
    x, y = anisotropic_mixture(n, d, 2.0, seed=0)  # feature variances over four decades
    xt, yt = anisotropic_mixture(20000, d, 2.0, seed=1)
    scalar = tracking_gaps(x, y, xt, yt, "scalar", 30, 0.5)
    matrix = tracking_gaps(x, y, xt, yt, "matrix", 30, 0.5)
    assert max(scalar[10:]) > 0.07  # the scalar rule overestimates the test error by 7+ points ...
    assert max(matrix[1:]) < 0.04 and sum(matrix) < 0.4 * sum(scalar)  # ... the matrix rule tracks


def test_the_module_option_runs_the_same_steps_and_checkpoints_the_responses(tmp_path):
    import lightning.pytorch as pl

    from framework_plugins.decoupled_descent import DecoupledDescentClassifier, DecoupledDescentData

    data = DecoupledDescentData(task="gmm", dim=60, n_train=80, n_val=50, n_test=50)
    sgd = lambda params: torch.optim.SGD(params, lr=0.4, weight_decay=0.05)  # noqa: E731
    model = DecoupledDescentClassifier(n_features=60, onsager="matrix", optimizer=sgd)
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=data)
    x, y, index = data.splits["train"]
    net, memory = ReadoutNetwork(60), LinearResponseMemory(1)
    memory.allocate(80, 60)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.4, weight_decay=0.05)
    for _ in range(3):
        linear_response_step(net, optimizer, x, y, index, memory)
    torch.testing.assert_close(model.memory.correction, memory.correction)
    assert memory.correction.abs().mean() > 0.1 and model.se is None  # no state evolution for this rule
    fresh = DecoupledDescentClassifier(n_features=60, onsager="matrix")  # unallocated: the state dict sizes it
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh.memory.response, model.memory.response)
