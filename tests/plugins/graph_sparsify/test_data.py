"""Graph datasets: simulators, local-file loaders on small generated files, clear missing-file errors, splits and
sparsifier budgets of the DataModule."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

from framework.cli import main
from framework.experiments.spec import RunSpec, load_experiment, override_arg, run_args
from framework.experiments.worker import EXPERIMENT_ENV, execute_run
from framework.registry import config_dir
from framework.testing.conformance import check_print_config
from framework_plugins.graph_sparsify import GraphSparsifyData, datasets
from framework_plugins.graph_sparsify.graph import components


def write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_sbm_block_densities_match_probabilities():
    g = datasets.sbm(400, 4, 0.3, 0.02, 8, 1.0, seed=0)
    a = g.adjacency.toarray()
    same = g.y.numpy()[:, None] == g.y.numpy()[None]
    np.fill_diagonal(same, False)
    assert a[same].mean() == pytest.approx(0.3, abs=0.02)
    assert a[g.y.numpy()[:, None] != g.y.numpy()[None]].mean() == pytest.approx(0.02, abs=0.005)
    assert (a == a.T).all() and np.diag(a).sum() == 0


def test_random_geometric_graph_edges_respect_the_radius():
    g = datasets.random_geometric(300, 0.15, 4, 8, seed=1)
    w = g.adjacency.data
    assert np.all(w > np.exp(-1.0)) and np.all(w <= 1.0)  # d < radius  <=>  exp(-d^2 / r^2) > e^-1
    assert set(g.y.tolist()) == {0, 1, 2, 3}


def test_idx_round_trip_and_fashion_mnist_loader(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (80, 28, 28)), rng.integers(0, 10, 80)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    g = datasets.fashion_mnist_knn(str(tmp_path), num_nodes=50, k=5, pca_dim=10, seed=0)
    assert g.x.shape == (50, 10) and g.adjacency.shape == (50, 50)
    assert set(g.y.tolist()) <= set(labels.tolist())


def test_missing_files_name_the_file_and_the_place(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        datasets.fashion_mnist_knn(str(tmp_path), 10, 3, 5, 0)
    with pytest.raises(FileNotFoundError, match=r"ind\.cora\.x.*kimiyoung/planetoid"):
        datasets.cora(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="paul15"):
        GraphSparsifyData(dataset="paul15", path=str(tmp_path / "paul15.h5ad")).setup()


def write_planetoid(raw, n_labelled: int = 20, n_all: int = 530, n_test: int = 20, dim: int = 16) -> None:
    """A tiny Planetoid 'cora' in the raw format, pickled at protocol 2 as the Python 2 originals are (CSR features,
    one-hot labels, a defaultdict of adjacency lists with self-loops and duplicates, as Cora has)."""
    rng = np.random.default_rng(0)
    raw.mkdir(parents=True)
    onehot = lambda n: np.eye(7)[rng.integers(0, 7, n)]  # noqa: E731
    objects = {
        "x": sp.csr_matrix(rng.random((n_labelled, dim))),
        "tx": sp.csr_matrix(rng.random((n_test, dim))),
        "allx": sp.csr_matrix(rng.random((n_all, dim))),
        "y": onehot(n_labelled),
        "ty": onehot(n_test),
        "ally": onehot(n_all),
    }
    n = n_all + n_test
    edges = rng.integers(0, n, (3 * n, 2))
    graph = defaultdict(list)
    for u, v in [*edges, (3, 3), (4, 5), (4, 5)]:
        graph[int(u)].append(int(v))
    objects["graph"] = graph
    for name, obj in objects.items():
        with open(raw / f"ind.cora.{name}", "wb") as f:
            pickle.dump(obj, f, protocol=2)
    (raw / "ind.cora.test.index").write_text("".join(f"{i}\n" for i in rng.permutation(range(n_all, n))))


def test_cora_loader_matches_torch_geometric_planetoid(tmp_path):
    """The restricted reader assembles the same graph as PyG's Planetoid (the peer, which unpickles freely)."""
    from torch_geometric.datasets import Planetoid

    write_planetoid(tmp_path / "Cora" / "raw")
    g = datasets.cora(str(tmp_path))
    (tmp_path / "peer").mkdir()
    (tmp_path / "peer" / "Cora").symlink_to(tmp_path / "Cora")
    peer = Planetoid(str(tmp_path / "peer"), "Cora")[0]
    assert g.x.shape == (550, 16) and g.adjacency.shape == (550, 550)
    np.testing.assert_array_equal(g.x.numpy(), peer.x.numpy())
    np.testing.assert_array_equal(g.y.numpy(), peer.y.numpy())
    edges = sp.csr_array((np.ones(peer.edge_index.shape[1]), peer.edge_index.numpy()), shape=(550, 550))
    np.testing.assert_array_equal(g.adjacency.toarray() > 0, (edges + edges.T).toarray() > 0)
    assert np.all(g.adjacency.data == 1.0) and g.adjacency.diagonal().sum() == 0


class _Exploit:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planetoid_file_carrying_code_is_refused_in_one_line(tmp_path, capsys):
    write_planetoid(tmp_path / "Cora" / "raw")
    marker = tmp_path / "pwned"
    (tmp_path / "Cora" / "raw" / "ind.cora.graph").write_bytes(pickle.dumps({0: _Exploit(marker)}, protocol=2))
    config = config_dir("graph_sparsify") / "real_data" / "cora.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), f"--data.init_args.root={tmp_path}", "--trainer.fast_dev_run=true"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 1 and not marker.exists()
    assert "ind.cora.graph was refused" in err[-1] and "system" in err[-1] and "Traceback" not in "\n".join(err)


def test_paul15_h5ad_loader(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    path = tmp_path / "paul15.h5ad"
    with h5py.File(path, "w") as f:
        f["X"] = rng.poisson(2.0, (60, 30)).astype(np.float32)
        clusters = f.create_group("obs").create_group("paul15_clusters")
        clusters["categories"] = np.array([b"1Ery", b"7MEP", b"14Mo"])
        clusters["codes"] = rng.integers(0, 3, 60).astype(np.int8)
    g = datasets.paul15_knn(str(path), k=5, pca_dim=8)
    assert g.x.shape == (60, 8) and set(g.y.tolist()) <= {0, 1, 2}
    with pytest.raises(ValueError, match="label_key"):
        datasets.paul15_knn(str(path), k=5, pca_dim=8, label_key="louvain")


def test_datamodule_splits_and_equal_budgets():
    er = GraphSparsifyData(
        dataset="rgg", num_nodes=500, radius=0.15, sparsifier="effective_resistance", samples_factor=1.0
    )
    er.setup()
    splits = [set(er.splits[s][0].tolist()) for s in ("train", "val", "test")]
    assert sum(map(len, splits)) == 500 and not (splits[0] & splits[1] or splits[0] & splits[2])
    assert 0 < er.sparsified.kept_fraction < 0.8 and er.certificate.eps > 0
    uni = GraphSparsifyData(dataset="rgg", num_nodes=500, radius=0.15, sparsifier="uniform", samples_factor=1.0)
    uni.setup()
    assert uni.sparsified.kept_edges == er.sparsified.kept_edges
    assert components(uni.sparsified.adjacency)[0] >= components(er.sparsified.adjacency)[0]


def test_datamodule_rejects_unknown_names():
    with pytest.raises(ValueError, match="dataset='cifar'"):
        GraphSparsifyData(dataset="cifar")
    with pytest.raises(ValueError, match="sparsifier='random'"):
        GraphSparsifyData(sparsifier="random")


def test_knn_prune_sparsifier_keeps_each_nodes_heaviest_edges():
    dm = GraphSparsifyData(dataset="rgg", num_nodes=300, radius=0.2, sparsifier="knn_prune", prune_k=3)
    dm.setup()
    h = dm.sparsified.adjacency
    degree_h = np.diff(h.indptr)
    assert np.all(degree_h >= 3) and dm.sparsified.kept_fraction < 0.5
    assert dm.certificate.lambda_max <= 1 + 1e-9  # H is a subgraph with unchanged weights: L_H <= L


@pytest.mark.parametrize("name", ["cora", "fashion_mnist", "paul15"])
def test_real_data_configs_parse_and_name_the_missing_file(name, capsys):
    """The real-data configs (outside the conformance suite: they need local files) resolve, and fitting without the
    files stops with the one-line error that names the file, not a traceback."""
    config = config_dir("graph_sparsify") / "real_data" / f"{name}.yaml"
    check_print_config(config, None)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--trainer.fast_dev_run=true"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "framework: error:" in err and {"cora": "ind.cora", "fashion_mnist": "idx", "paul15": ".h5ad"}[name] in err


@pytest.mark.parametrize("name", ["cora", "fashion_mnist"])
def test_real_data_experiment_runs_on_files_in_the_real_format(name, tmp_path, monkeypatch):
    """A real-data experiment file's full-size run arguments (not its stand-in smoke size), shrunk only in steps,
    graph size and sweep, fit and test on small generated files in the real formats, sweep records included."""
    for key in (EXPERIMENT_ENV, "WANDB_RUN_GROUP", "WANDB_TAGS"):
        monkeypatch.setenv(key, "")  # execute_run sets them; restored afterwards
    monkeypatch.setenv("WANDB_MODE", "disabled")
    if name == "cora":
        write_planetoid(tmp_path / "Cora" / "raw")
        shrink = {"data.init_args.root": str(tmp_path), "model.init_args.in_channels": 16}
    else:
        rng = np.random.default_rng(0)
        write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (80, 28, 28)))
        write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 80))
        shrink = {"data.init_args.root": str(tmp_path), "data.init_args.num_nodes": 60, "data.init_args.knn_k": 5}
        shrink |= {"data.init_args.pca_dim": 10, "model.init_args.in_channels": 10}
    sweep = {"class_path": "framework_plugins.graph_sparsify.SparsifierSweep", "init_args": {"samples_factors": [2.0]}}
    shrink |= {"trainer.max_epochs": 2, "trainer.check_val_every_n_epoch": 1, "trainer.callbacks": [sweep]}
    exp = load_experiment(config_dir("graph_sparsify") / "real_data" / "experiments" / f"{name}.yaml")
    args = run_args(exp, exp.variant("gpr"), 0) + [override_arg(k, v) for k, v in shrink.items()]
    record = execute_run(RunSpec(name, "gpr", 0, tuple(args), tmp_path / "run", "test"))
    assert record["status"] == "ok", record["error"]
    assert (
        record["metrics"]["test/sweep/q2/d4/layer0/bound_given_gap"]
        >= record["metrics"]["test/sweep/q2/d4/layer0/rel_error"]
    )
