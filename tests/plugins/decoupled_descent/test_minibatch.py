"""Mini-batch decoupled descent against its definition: the corrected field of a training sample equals its field
under the same run without that sample (retrained, the cavity), and the full batch is the full-batch memory."""

from __future__ import annotations

import torch

from framework.optim.decoupled_descent import OnsagerMemory
from framework.optim.decoupled_step import full_batch_step
from framework.optim.readout import ReadoutNetwork
from framework_plugins.decoupled_descent.minibatch import MiniBatchOnsagerMemory
from framework_plugins.decoupled_descent.simulators import gaussian_mixture, signal_directions


def run(x, y, batches, lr=0.4, momentum=0.0):
    """DD over the given batches (lists of row ids of x); returns the final network and memory."""
    net = ReadoutNetwork(x.shape[1]).double()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=0.05, momentum=momentum, dampening=0.2)
    memory = MiniBatchOnsagerMemory(1, 1.0)
    memory.allocate(len(x))
    for rows in batches:
        full_batch_step(net, optimizer, x[rows], y[rows], rows, memory)
    return net, memory


def test_the_corrected_field_is_the_field_of_the_run_without_that_sample():
    d, n, b, epochs = 400, 400, 100, 5
    v = signal_directions(d, 1, 1.0, 0)[0]
    x, y = gaussian_mixture(n, v, 1.0, 1, torch.float64)
    gen = torch.Generator().manual_seed(2)
    batches = [
        perm[k : k + b] for _ in range(epochs) for perm in [torch.randperm(n, generator=gen)] for k in range(0, n, b)
    ]
    for momentum in (0.0, 0.5):
        net, memory = run(x, y, batches, momentum=momentum)
        raw = net.preactivations(x).detach()[:, 0]
        corrected = memory.correct(net.preactivations(x), torch.arange(n)).detach()[:, 0]
        cavity_gap, raw_gap = [], []
        for i in range(0, n, 20):  # retrain without sample i on the same batches minus i
            keep = torch.arange(n) != i
            renumber = torch.cumsum(keep, 0) - 1
            without = [renumber[rows[rows != i]] for rows in batches]
            cavity_net, _ = run(x[keep], y[keep], without, momentum=momentum)
            cavity = cavity_net.preactivations(x[i : i + 1]).detach()[0, 0]  # x_i . w_{-i} / sqrt(d)
            cavity_gap.append(abs(corrected[i] - cavity).item())
            raw_gap.append(abs(raw[i] - cavity).item())
        mean_raw, mean_cavity = sum(raw_gap) / len(raw_gap), sum(cavity_gap) / len(cavity_gap)
        assert mean_raw > 0.5  # the data-reuse bias of the raw field is of order one ...
        assert mean_cavity < 0.1 * mean_raw, (momentum, mean_cavity, mean_raw)  # ... and the memory removes it


def test_with_every_sample_in_the_batch_it_is_the_full_batch_memory():
    gen = torch.Generator().manual_seed(0)
    full, mini = OnsagerMemory(2, 0.7), MiniBatchOnsagerMemory(2, 0.7)
    for memory in (full, mini):
        memory.allocate(6)
    sgd = {"lr": 0.3, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.05}
    for _ in range(3):
        index, grad, c = (
            torch.randperm(6, generator=gen),
            torch.randn(6, 2, generator=gen),
            torch.randn(2, 2, generator=gen),
        )
        full.step(index, grad, c, sgd)
        mini.step(index, grad, c, sgd)
    torch.testing.assert_close(mini.memory, full.memory, rtol=0, atol=0)
    torch.testing.assert_close(mini.velocity, full.velocity, rtol=0, atol=0)
    mini.step(torch.tensor([4, 1]), torch.ones(2, 2), torch.zeros(2, 2), {**sgd, "momentum": 0.0, "weight_decay": 0.0})
    torch.testing.assert_close(
        mini.memory - full.memory,
        torch.tensor([[0.0, 0]] + [[-0.3, -0.3]] + [[0.0, 0]] * 2 + [[-0.3, -0.3]] + [[0.0, 0]]).double(),
    )
    try:
        mini.step(torch.tensor([1, 1]), torch.ones(2, 2), torch.zeros(2, 2), sgd)
    except ValueError as err:
        assert "at most once" in str(err)
    else:
        raise AssertionError("a repeated sample was accepted")


def test_the_module_trains_on_mini_batches_without_the_state_evolution(tmp_path):
    import lightning.pytorch as pl

    from framework_plugins.decoupled_descent import DecoupledDescentClassifier, DecoupledDescentData

    data = DecoupledDescentData(task="gmm", dim=50, n_train=120, n_val=50, n_test=50, batch_size=40)
    model = DecoupledDescentClassifier(n_features=50, se_particles=1000)
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 6 and model.se is None  # 3 batches per epoch; the SE is full-batch only
    assert (model.memory.memory != 0).all()  # every sample's memory moved
