"""Bring your own graph: torch_geometric Data / InMemoryDataset files and import paths as GraphSparsifyData's
dataset, one-line errors naming the field and the fix, no code run from a data file, and the runnable example."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data, HeteroData, InMemoryDataset

from framework.cli import main
from framework.registry import config_dir
from framework_plugins.graph_sparsify import GraphSparsifyData
from framework_plugins.graph_sparsify.user_graph import GraphInputError

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "bring_your_own_graph.py"
MARKER = "pwned.txt"


def small_graph(n: int = 40) -> Data:
    """Two cliques joined by one edge, with 4 features, 2 classes and a 10 / 10 / 20 mask split."""
    half = n // 2
    u, v = torch.triu_indices(half, half, 1)
    one_way = torch.cat([torch.stack([u, v]), torch.stack([u + half, v + half]), torch.tensor([[0], [half]])], 1)
    y = (torch.arange(n) >= half).long()
    position = torch.randperm(n, generator=torch.Generator().manual_seed(0)).argsort()
    return Data(
        x=torch.randn(n, 4, generator=torch.Generator().manual_seed(1)) + y[:, None],
        y=y,
        edge_index=torch.cat([one_way, one_way.flip(0)], 1),
        train_mask=position < 10,
        val_mask=(position >= 10) & (position < 20),
        test_mask=position >= 20,
    )


def setup_from(path: Path, **kwargs: object) -> GraphSparsifyData:
    dm = GraphSparsifyData(dataset=str(path), sparsifier="none", **kwargs)
    dm.setup()
    return dm


def test_a_saved_data_file_with_masks_gives_its_graph_and_its_own_splits(tmp_path):
    data = small_graph()
    torch.save(data, tmp_path / "g.pt")
    dm = setup_from(tmp_path / "g.pt", split="masks")
    for name in ("train", "val", "test"):
        assert torch.equal(dm.splits[name][0], data[f"{name}_mask"].nonzero().view(-1))
    assert torch.equal(dm.graph["x"], data.x) and torch.equal(dm.graph["y"], data.y)
    got = {tuple(e) for e in dm.graph["dense_index"].T.tolist()}
    assert got == {tuple(e) for e in data.edge_index.T.tolist()} and len(got) == data.num_edges
    assert dm.certificate.eps == pytest.approx(0.0, abs=1e-8)  # H = G
    random = setup_from(tmp_path / "g.pt")  # split random (the default): the seeded fractions instead
    assert len(random.splits["train"][0]) == int(0.6 * data.num_nodes)


def test_edges_are_made_undirected_self_loops_dropped_and_weights_kept(tmp_path):
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 3, 2]])  # one direction only, plus a self-loop at 2
    weights = torch.tensor([1.0, 2.0, 3.0, 5.0])
    data = Data(x=torch.randn(4, 2), y=torch.tensor([0, 0, 1, 1]), edge_index=edge_index, edge_weight=weights)
    torch.save(data, tmp_path / "directed.pt")
    dm = setup_from(tmp_path / "directed.pt")
    dense = torch.zeros(4, 4)
    dense[tuple(dm.graph["dense_index"])] = dm.graph["dense_weight"]
    expected = torch.tensor([[0, 1, 0, 0], [1, 0, 2, 0], [0, 2, 0, 3], [0, 0, 3, 0]], dtype=torch.float32)
    assert torch.equal(dense, expected)


def test_in_memory_dataset_files_and_dicts_of_tensors_load_and_many_graphs_are_refused(tmp_path):
    data = small_graph()
    InMemoryDataset.save([data], str(tmp_path / "one.pt"))
    assert torch.equal(
        setup_from(tmp_path / "one.pt", split="masks").splits["val"][0], data.val_mask.nonzero().view(-1)
    )
    torch.save({"x": data.x, "y": data.y, "edge_index": data.edge_index}, tmp_path / "dict.pt")
    assert torch.equal(setup_from(tmp_path / "dict.pt").graph["y"], data.y)
    InMemoryDataset.save([data, data], str(tmp_path / "two.pt"))
    with pytest.raises(GraphInputError, match=r"holds 2 graphs.*torch\.save\(dataset\[i\], path\)"):
        setup_from(tmp_path / "two.pt")


def test_an_import_path_calls_the_dataset_class_with_dataset_kwargs():
    kwargs = {"avg_num_nodes": 60, "num_channels": 5, "num_classes": 3, "task": "node"}
    dm = GraphSparsifyData(dataset="torch_geometric.datasets.FakeDataset", dataset_kwargs=kwargs, sparsifier="none")
    dm.setup()
    assert dm.graph["x"].shape[1] == 5 and int(dm.graph["y"].max()) < 3
    with pytest.raises(GraphInputError, match=r"dataset='torch_geometric\.datasets\.Nope' cannot be imported"):
        GraphSparsifyData(dataset="torch_geometric.datasets.Nope").setup()
    with pytest.raises(GraphInputError, match=r"rejected data\.init_args\.dataset_kwargs=\{'bogus': 1\}"):
        GraphSparsifyData(dataset="torch_geometric.datasets.KarateClub", dataset_kwargs={"bogus": 1}).setup()
    karate = GraphSparsifyData(dataset="torch_geometric.datasets.KarateClub", sparsifier="none")  # PyG ships its data
    karate.setup()
    assert karate.graph["x"].shape == (34, 34) and len(karate.graph["dense_index"][0]) == 156


class _RunsCode:
    """Unpickling this would write the marker file (what a crafted data file would do)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.path}",))


def test_a_data_file_carrying_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / MARKER
    torch.save({**small_graph().to_dict(), "payload": _RunsCode(str(marker))}, tmp_path / "crafted.pt")
    with pytest.raises(GraphInputError, match=r"holds a reference to \S*system; it is not loaded"):
        setup_from(tmp_path / "crafted.pt")
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(GraphInputError, match="is not a file written by torch.save"):
        setup_from(tmp_path / "junk.pt")


def _without(name: str) -> Data:
    data = small_graph()
    del data[name]
    return data


def _with(**fields: object) -> Data:
    data = small_graph()
    for key, value in fields.items():
        data[key] = value
    return data


N = 40
BAD_GRAPHS = {
    "no_x": (_without("x"), "random", r"x is missing; need x of shape \(num_nodes, num_features\)"),
    "int_x": (_with(x=torch.ones(N, 4, dtype=torch.long)), "random", r"x has shape \(40, 4\) and dtype torch\.int64"),
    "nan_x": (_with(x=torch.full((N, 4), float("nan"))), "random", r"x has non-finite entries"),
    "no_y": (_without("y"), "random", r"y is missing; need y of shape \(40,\) with integer class ids"),
    "float_y": (_with(y=torch.zeros(N)), "random", r"y has shape \(40,\) and dtype torch\.float32"),
    "column_y": (_with(y=torch.zeros(N, 1, dtype=torch.long)), "random", r"data\.y = data\.y\.long\(\)\.view\(-1\)"),
    "negative_y": (_with(y=torch.full((N,), -1)), "random", r"y has label -1; class ids must be >= 0"),
    "no_edges": (_without("edge_index"), "random", r"edge_index is missing; need edge_index of shape \(2, num_edges\)"),
    "float_edges": (_with(edge_index=torch.zeros(2, 3)), "random", r"edge_index has shape \(2, 3\) and dtype"),
    "edge_out_of_range": (
        _with(edge_index=torch.tensor([[0], [N]])),
        "random",
        r"edge_index names node 40 .* 40 nodes",
    ),
    "bad_weight": (_with(edge_weight=torch.tensor([1.0])), "random", r"edge_weight has shape \(1,\)"),
    "no_train_mask": (_without("train_mask"), "masks", r"train_mask is missing; split 'masks' needs train_mask"),
    "2d_mask": (
        _with(val_mask=torch.ones(N, 3, dtype=torch.bool)),
        "masks",
        r"data\.val_mask = data\.val_mask\[:, 0\]",
    ),
    "int_mask": (_with(train_mask=torch.ones(N, dtype=torch.long)), "masks", r"train_mask has shape .* bool tensor"),
    "overlap": (_with(val_mask=torch.ones(N, dtype=torch.bool)), "masks", r"overlap; they must be disjoint"),
}


@pytest.mark.parametrize("case", list(BAD_GRAPHS))
def test_a_malformed_graph_is_one_line_naming_the_field_and_the_fix(case, tmp_path):
    data, split, message = BAD_GRAPHS[case]
    torch.save(data, tmp_path / "g.pt")
    with pytest.raises(GraphInputError, match=message) as err:
        setup_from(tmp_path / "g.pt", split=split)
    assert "\n" not in str(err.value) and f"data.init_args.dataset='{tmp_path / 'g.pt'}'" in str(err.value)


def test_a_heterogeneous_graph_and_arguments_that_do_not_fit_the_dataset_are_refused(tmp_path):
    hetero = HeteroData()
    hetero["paper"].x = torch.randn(3, 2)
    hetero["paper", "cites", "paper"].edge_index = torch.tensor([[0], [1]])
    torch.save(hetero, tmp_path / "hetero.pt")
    with pytest.raises(GraphInputError, match=r"is a HeteroData; .* data\.to_homogeneous\(\)"):
        setup_from(tmp_path / "hetero.pt")
    with pytest.raises(ValueError, match=r"dataset_kwargs=\{'root': 'x'\} is only for a dataset given by import path"):
        GraphSparsifyData(dataset="sbm", dataset_kwargs={"root": "x"})
    with pytest.raises(ValueError, match=r"split='masks' needs a graph with train_mask"):
        GraphSparsifyData(dataset="sbm", split="masks")
    with pytest.raises(ValueError, match=r"dataset='not a graph' is neither a built-in dataset"):
        GraphSparsifyData(dataset="not a graph")


def test_a_rewritten_graph_file_is_read_again(tmp_path):
    data = small_graph()
    torch.save(data, tmp_path / "g.pt")
    first = setup_from(tmp_path / "g.pt").graph["x"]
    torch.save(_with(x=data.x + 1.0), tmp_path / "g.pt")
    os.utime(tmp_path / "g.pt", ns=(1, 1))  # a different modification time, even on a coarse clock
    assert torch.equal(setup_from(tmp_path / "g.pt").graph["x"], first + 1.0)


def test_the_template_config_runs_on_a_saved_graph_and_cli_errors_are_one_line(tmp_path, capsys):
    data = small_graph()
    data.x = torch.cat([data.x, torch.zeros(N, 4)], 1)  # the template's in_channels: 8
    torch.save(data, tmp_path / "g.pt")
    config = config_dir("graph_sparsify") / "real_data" / "pyg_graph.yaml"
    cli = main(["fit", "--config", str(config), f"--data.init_args.dataset={tmp_path / 'g.pt'}"]
               + ["--trainer.fast_dev_run=true", f"--run_dir={tmp_path / 'run'}"])  # fmt: skip
    assert np.isfinite(float(cli.trainer.callback_metrics["train/loss"]))
    torch.save(_without("train_mask"), tmp_path / "no_mask.pt")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), f"--data.init_args.dataset={tmp_path / 'no_mask.pt'}"]
             + ["--trainer.fast_dev_run=true", f"--run_dir={tmp_path / 'run2'}"])  # fmt: skip
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("framework: error: data.init_args.dataset=") and "train_mask is missing" in err[-1]


def test_the_bring_your_own_graph_example_trains_on_its_saved_graph(tmp_path):
    spec = importlib.util.spec_from_file_location("bring_your_own_graph", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    metrics = example.run(tmp_path)
    assert (tmp_path / "my_graph.pt").is_file() and (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert metrics["test/acc"] > 0.8  # 3 well-separated blocks: a working pipeline classifies them
    assert 0 < metrics["test/kept_fraction"] < 1 and np.isfinite(metrics["test/eps_hat"])
