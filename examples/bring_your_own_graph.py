"""Bring your own graph to the graph_sparsify plugin: save a torch_geometric ``Data`` with ``torch.save`` and name
the file as ``data.init_args.dataset``.

    python examples/bring_your_own_graph.py [--out DIR]    # ~15 s on 2 CPU cores

The graph here is a 3-block stochastic block model made with PyG's own utilities, with Planetoid-style boolean
``train_mask`` / ``val_mask`` / ``test_mask`` (used with ``split: masks``). Any node-classification ``Data`` works:
``x`` float (num_nodes, num_features), ``y`` integer (num_nodes,), ``edge_index`` (2, num_edges), optionally
``edge_weight`` (num_edges,). The file is read with ``torch.load(weights_only=True)``: it cannot run code. The same
run from the shell (``model.init_args.in_channels`` / ``num_classes`` must match the graph):

    framework fit --config configs/graph_sparsify/real_data/pyg_graph.yaml --data.init_args.dataset DIR/my_graph.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch_geometric.data import Data
from torch_geometric.utils import stochastic_blockmodel_graph

from framework.cli import main as framework

NODES_PER_BLOCK, FEATURES = 60, 8


def make_graph(seed: int = 0) -> Data:
    """A 3-block SBM (p_in 0.25, p_out 0.02) with noisy block-indicator features and a 20 / 20 / 60 % mask split."""
    torch.manual_seed(seed)
    probs = [[0.25, 0.02, 0.02], [0.02, 0.25, 0.02], [0.02, 0.02, 0.25]]
    blocks = len(probs)
    edge_index = stochastic_blockmodel_graph([NODES_PER_BLOCK] * blocks, probs)
    y = torch.arange(blocks * NODES_PER_BLOCK) // NODES_PER_BLOCK
    x = torch.randn(len(y), FEATURES) + 1.5 * torch.nn.functional.one_hot(y, FEATURES).float()
    position = torch.randperm(len(y)).argsort()  # each node's place in a random order
    n_train = n_val = len(y) // 5
    return Data(
        x=x,
        y=y,
        edge_index=edge_index,
        train_mask=position < n_train,
        val_mask=(position >= n_train) & (position < n_train + n_val),
        test_mask=position >= n_train + n_val,
    )


def run(out: Path) -> dict[str, float]:
    """Save the graph under ``out``, fit the twin GNNs on it and on its sparsifier, test the last checkpoint; returns
    the test metrics."""
    out.mkdir(parents=True, exist_ok=True)
    data = make_graph()
    torch.save(data, out / "my_graph.pt")
    args = [
        "--model=TwinSparsifiedGNN",
        f"--model.init_args.in_channels={data.num_node_features}",
        f"--model.init_args.num_classes={int(data.y.max()) + 1}",
        "--model.init_args.K=2",
        "--model.init_args.optimizer.class_path=torch.optim.Adam",
        "--model.init_args.optimizer.init_args.lr=0.02",
        "--data=GraphSparsifyData",
        f"--data.init_args.dataset={out / 'my_graph.pt'}",
        "--data.init_args.split=masks",
        "--data.init_args.sparsifier=effective_resistance",
        "--data.init_args.samples_factor=2.0",
        "--data.init_args.batch_size=36",
        "--trainer.max_epochs=10",
        "--trainer.enable_progress_bar=false",
        f"--run_dir={out / 'run'}",
    ]
    framework(["fit", *args])
    cli = framework(["test", *args, "--ckpt_path=last"])
    return {key: float(value) for key, value in cli.trainer.callback_metrics.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/bring_your_own_graph"), help="output folder")
    for name, value in sorted(run(parser.parse_args().out).items()):
        print(f"{name:40s} {value:.4f}")
