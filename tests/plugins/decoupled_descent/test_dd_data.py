"""Data: simulated laws, the idx / CIFAR-10 readers against files written here, probing features, Delta estimate."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from framework.data import UnsafePickleError
from framework.optim.decoupled_descent import estimate_noise_var
from framework_plugins.decoupled_descent.datamodule import DecoupledDescentData
from framework_plugins.decoupled_descent.real_data import cifar10, mnist
from framework_plugins.decoupled_descent.simulators import gaussian_mixture, signal_directions, xor_mixture


def test_gaussian_mixture_has_the_stated_moments():
    d = 400
    v = signal_directions(d, 1, 2.0, 0)[0]
    assert (v @ v).item() / d == pytest.approx(2.0, rel=1e-12)
    x, y = gaussian_mixture(20_000, v, 0.5, 1)
    margin = (y[:, None] * x) @ v / d  # = snr / sqrt(d) + noise
    assert margin.mean().item() * d**0.5 == pytest.approx(2.0, rel=0.02)
    assert estimate_noise_var(x, y) == pytest.approx(0.5, rel=0.01)


def test_xor_has_four_clusters_and_no_linear_signal():
    d = 300
    mus = signal_directions(d, 2, 6.0, 0)
    assert abs((mus[0] @ mus[1]).item()) < 1e-9
    x, y = xor_mixture(20_000, mus, 1.0, 1)
    assert (y[:, None] * x).mean(0).norm().item() < 0.2  # class means are 0: no linear classifier works
    proj = x @ mus.T / d**0.5  # = s snr e_c + N(0, snr I_2): |proj_c| is the larger one for cluster c
    accuracy = ((proj[:, 0].abs() > proj[:, 1].abs()) == (y > 0)).double().mean().item()
    a, b = torch.randn(2, 1_000_000, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 6.0**0.5
    assert accuracy == pytest.approx(((6.0 + a).abs() > b.abs()).double().mean().item(), abs=0.01)


def test_datamodule_splits_carry_indices_and_full_batch():
    dm = DecoupledDescentData(task="gmm", dim=50, n_train=30, n_val=20, n_test=10, seed=3)
    dm.setup("fit")
    x, y, index = dm.splits["train"]
    assert x.shape == (30, 50) and torch.equal(index, torch.arange(30)) and set(y.tolist()) <= {-1.0, 1.0}
    assert dm.batch_size == 30 and dm.snr == 1.0 and dm.noise_var == 1.0
    assert len(next(iter(dm.train_dataloader()))[0]) == 30


def test_digits_and_probing_estimate_delta():
    dm = DecoupledDescentData(task="digits", dim=64, n_train=500, n_val=200, n_test=200, pixel_noise=1.0)
    dm.setup("fit")
    assert dm.snr is None and 1.0 < dm.noise_var < 2.5  # unit-variance pixels plus unit noise, minus class means
    probe = DecoupledDescentData(task="probe_digits", dim=300, n_train=500, n_val=200, n_test=200)
    probe.setup("fit")
    x = probe.splits["train"][0].double()
    assert x.shape == (500, 300) and (x - x.mean(0)).pow(2).mean().item() == pytest.approx(1.0, rel=1e-5)


def test_bad_configuration_names_the_field():
    with pytest.raises(ValueError, match="task"):
        DecoupledDescentData(task="cifar")
    with pytest.raises(ValueError, match="dim"):
        DecoupledDescentData(task="digits", dim=100)
    with pytest.raises(ValueError, match="exceeds"):
        DecoupledDescentData(task="digits", dim=64, n_train=1700, n_val=100, n_test=100).setup("fit")


def test_missing_local_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        DecoupledDescentData(task="mnist", dim=784, path=str(tmp_path)).setup("fit")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        cifar10(tmp_path)


def test_idx_and_cifar_readers_parse_files_written_here(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), rng.integers(0, 10, 7, dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        bytes([0, 0, 8, 3]) + b"".join(int(s).to_bytes(4, "big") for s in images.shape) + images.tobytes()
    )
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (7).to_bytes(4, "big") + labels.tobytes())
    x, c = mnist(tmp_path)
    np.testing.assert_array_equal(x.numpy(), images.reshape(7, -1) / 255.0)
    np.testing.assert_array_equal(c.numpy(), labels)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [i, 0, 9]}
        with open(tmp_path / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch, f)
    x, c = cifar10(tmp_path)
    assert x.shape == (15, 3072) and c.tolist()[:3] == [1, 0, 9] and x.min() >= 0 and x.max() <= 1


def test_cifar_batches_carrying_code_and_swapped_mnist_files_are_refused(tmp_path):
    """CIFAR-10 batches go through the restricted unpickler (the marker file is never created); an MNIST labels file
    in place of the images file is named as such."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for i in range(1, 6):
        batch = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0] if i != 3 else [Exploit()]}
        (tmp_path / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    with pytest.raises(UnsafePickleError, match="data_batch_3 was refused"):
        cifar10(tmp_path)
    assert not marker.exists()
    labels = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    (tmp_path / "train-images-idx3-ubyte").write_bytes(labels)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte is a labels file"):
        mnist(tmp_path)
