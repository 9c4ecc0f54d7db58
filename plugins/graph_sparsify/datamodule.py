"""A node-classification graph G, its sparsifier H and the measured eps; batches are node indices (full-graph
propagation, loss on the batch's nodes)."""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from framework.data import TensorSplitsDataModule
from framework_plugins.graph_sparsify import datasets, user_graph
from framework_plugins.graph_sparsify.graph import (
    EpsCertificate,
    Sparsified,
    effective_resistance_sparsify,
    knn_prune,
    resistances,
    spectral_eps,
    uniform_sparsify,
)

DATASETS = ("sbm", "rgg", "digits", "fashion_mnist", "cora", "paul15")
# the names of DATASETS; any other string is a user's graph (a .pt file or an import path, see user_graph.py)
DatasetName = Literal["sbm", "rgg", "digits", "fashion_mnist", "cora", "paul15"]
SPARSIFIERS = ("effective_resistance", "uniform", "knn_prune", "none")


def edges(a: sp.csr_array) -> tuple[torch.Tensor, torch.Tensor]:
    """(edge_index (2, nnz) int64, edge_weight (nnz,) float32) listing both directions of every edge."""
    coo = a.tocoo()
    return torch.as_tensor(np.stack([coo.row, coo.col]), dtype=torch.long), torch.as_tensor(coo.data).float()


class GraphSparsifyData(TensorSplitsDataModule):
    """Graph G from ``dataset``, sparsifier H by ``sparsifier``, seeded train/val/test node split.

    After ``setup``: ``self.graph`` = {x (n, d), y (n,), dense_index, dense_weight, sparse_index, sparse_weight},
    ``self.certificate`` (measured eps of H vs G), ``self.sparsified``, ``self.adjacency`` (G, scipy CSR) and splits
    of node indices; :meth:`sparsifier_draw` draws further sparsifiers of G.

    Your own graph (a torch_geometric ``Data`` or one-graph ``InMemoryDataset``): ``dataset`` = a ``.pt`` file or an
    import path, checked by :func:`framework_plugins.graph_sparsify.user_graph.node_graph` (x float (n, d), y
    integer (n,), edge_index (2, m), optional edge_weight (m,); made undirected, self-loops dropped).

    Args:
        dataset: a built-in graph, ``sbm`` | ``rgg`` | ``digits`` (kNN over sklearn digits) | ``fashion_mnist`` |
            ``cora`` | ``paul15`` (the last three from local files under ``root`` / at ``path``); or your own
            graph: a file ``*.pt`` (``torch.save(data, path)`` of a torch_geometric Data, a dict of tensors, or
            ``InMemoryDataset.save`` of one graph; read with weights_only=True, never running code) or the import
            path ``package.module.Name`` of a PyG dataset class or of a function returning a Data, called with
            ``dataset_kwargs``.
        dataset_kwargs: keyword arguments of the class or function that ``dataset`` names by import path (e.g.
            ``{avg_num_nodes: 500, num_channels: 16, num_classes: 4, task: node}`` for
            ``torch_geometric.datasets.FakeDataset``); null = none. Only with an import path.
        split: ``random`` (seeded split by ``train_fraction`` / ``val_fraction``) or ``masks`` (the graph's own
            bool ``train_mask`` and ``val_mask``, and ``test_mask`` or else the remaining nodes; your own graphs
            only).
        sparsifier: ``effective_resistance`` (Spielman-Srivastava) | ``uniform`` (same edge budget as
            effective_resistance would keep, or ``keep_fraction``) | ``knn_prune`` (``prune_k``) | ``none`` (H = G).
        eps: target eps, q = oversampling n ln n / eps^2. Overridden by ``keep_fraction`` (the edge budget; q by
            bisection so that the expected number of distinct edges matches) and then by ``samples_factor``
            (q = samples_factor n ln n), in that order of precedence.
        scheme: effective-resistance sampling ``replacement`` (SS08: q draws) or ``independent`` (each edge kept
            with probability min(1, q p_e)); see
            :func:`framework_plugins.graph_sparsify.graph.effective_resistance_sparsify`.
        keep_fraction: edge budget of H as a fraction of G's edges, in (0, 1]; overrides ``eps`` (see there);
            null = no budget.
        samples_factor: q = samples_factor n ln n effective-resistance samples; overrides ``eps`` when
            ``keep_fraction`` is null; null = use ``eps``.
        oversampling: C in q = C n ln n / eps^2 (4 is Laplacians.jl's constant; 1 gives about 1.2x the target eps).
        resistance: ``exact`` | ``approx`` (JL with ``jl_k`` solves) | ``auto`` (exact up to 3,000 nodes).
        jl_k: random projections (Laplacian solves) of the approximate resistances.
        prune_k: ``knn_prune`` keeps edge (u, v) if it is among the prune_k heaviest edges of u or of v (>= 1).
        num_nodes: nodes of sbm / rgg, and images sampled for fashion_mnist.
        num_blocks: sbm: equal-size blocks (= classes); rgg: angular sectors (= classes).
        p_in: sbm: edge probability inside a block (p_out <= p_in <= 1).
        p_out: sbm: edge probability across blocks (0 <= p_out <= p_in).
        feature_dim: sbm / rgg: node feature dimension (rgg: raised to ``num_blocks`` if smaller).
        feature_noise: sbm: std of the Gaussian noise added to each node's block-mean feature vector.
        radius: rgg: connection radius in the unit square (edge weight exp(-d^2 / radius^2)).
        knn_k: neighbours per node of the kNN graphs (digits, fashion_mnist, paul15).
        pca_dim: fashion_mnist / paul15: PCA dimension of the features the kNN graph is built on.
        root: directory of the FashionMNIST IDX files or of ``Cora/raw``.
        path: the Paul15 ``.h5ad`` file.
        train_fraction: fraction of nodes in the seeded random train split (> 0; with val_fraction, sum < 1).
        val_fraction: fraction of nodes in the validation split (> 0); the rest is test.
        batch_size: nodes per step (the loss is taken on them; propagation uses the whole graph).
        seed: seeds the graph, the sparsifier and the node split.
    """

    def __init__(
        self,
        dataset: DatasetName | str = "sbm",
        dataset_kwargs: dict[str, Any] | None = None,
        split: Literal["random", "masks"] = "random",
        sparsifier: Literal["effective_resistance", "uniform", "knn_prune", "none"] = "effective_resistance",
        eps: float = 0.5,
        keep_fraction: float | None = None,
        samples_factor: float | None = None,
        oversampling: float = 4.0,
        scheme: Literal["replacement", "independent"] = "replacement",
        resistance: Literal["exact", "approx", "auto"] = "auto",
        jl_k: int = 64,
        prune_k: int = 10,
        num_nodes: int = 400,
        num_blocks: int = 4,
        p_in: float = 0.3,
        p_out: float = 0.02,
        feature_dim: int = 16,
        feature_noise: float = 2.0,
        radius: float = 0.1,
        knn_k: int = 30,
        pca_dim: int = 50,
        root: str = "data",
        path: str = "data/paul15.h5ad",
        train_fraction: float = 0.6,
        val_fraction: float = 0.2,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        source = "builtin" if dataset in DATASETS else user_graph.graph_source(dataset)
        if dataset_kwargs is not None and source != "import":
            raise ValueError(
                f"data.init_args.dataset_kwargs={dataset_kwargs!r} is only for a dataset given by import path, not "
                f"for {dataset!r}; remove it."
            )
        if split == "masks" and source == "builtin":
            raise ValueError(
                f"data.init_args.split='masks' needs a graph with train_mask / val_mask; the built-in {dataset!r} "
                "has none: use split random."
            )
        if sparsifier not in SPARSIFIERS:
            raise ValueError(f"data.init_args.sparsifier={sparsifier!r} is unknown; choose one of {SPARSIFIERS}.")
        if keep_fraction is not None and not 0 < keep_fraction <= 1:
            raise ValueError(f"data.init_args.keep_fraction={keep_fraction} must be in (0, 1].")
        if not (train_fraction > 0 and val_fraction > 0 and train_fraction + val_fraction < 1):
            raise ValueError(f"train_fraction={train_fraction}, val_fraction={val_fraction}: need both > 0, sum < 1.")
        self.save_hyperparameters()
        self.graph: dict[str, torch.Tensor] = {}
        self.certificate: EpsCertificate | None = None
        self.sparsified: Sparsified | None = None
        self.adjacency: sp.csr_array | None = None
        self._resistances: np.ndarray | None = None

    def build(self) -> tuple[datasets.NodeGraph, dict[str, torch.Tensor]]:
        """G with features and labels from the configured dataset, and the node indices of the graph's own
        train / val / test masks with ``split: masks`` (else ``{}``)."""
        hp = self.hparams
        if hp.dataset not in DATASETS:
            if user_graph.graph_source(hp.dataset) == "file":
                data = user_graph.read_graph_file(hp.dataset)
            else:
                data = user_graph.import_graph(hp.dataset, hp.dataset_kwargs)
            return user_graph.node_graph(data, hp.dataset, masks=hp.split == "masks")
        return self.build_builtin(), {}

    def build_builtin(self) -> datasets.NodeGraph:
        """G with features and labels, from the built-in dataset ``dataset`` names."""
        hp = self.hparams
        if hp.dataset == "sbm":
            return datasets.sbm(
                hp.num_nodes, hp.num_blocks, hp.p_in, hp.p_out, hp.feature_dim, hp.feature_noise, hp.seed
            )
        if hp.dataset == "rgg":
            return datasets.random_geometric(hp.num_nodes, hp.radius, hp.num_blocks, hp.feature_dim, hp.seed)
        if hp.dataset == "digits":
            return datasets.digits_knn(hp.knn_k)
        if hp.dataset == "fashion_mnist":
            return datasets.fashion_mnist_knn(hp.root, hp.num_nodes, hp.knn_k, hp.pca_dim, hp.seed)
        if hp.dataset == "cora":
            return datasets.cora(hp.root)
        return datasets.paul15_knn(hp.path, hp.knn_k, hp.pca_dim)

    def sparsifier_draw(self, samples_factor: float, draw: int) -> Sparsified:
        """A fresh effective-resistance sparsifier of G (after ``setup``) with q = samples_factor n ln n draws
        (``scheme``), seeded by (``seed``, ``draw``, samples_factor): independent of the H that ``sparsifier``
        built and of every other draw. The resistances (``resistance``, ``jl_k``) are computed once."""
        hp, a = self.hparams, self.adjacency
        if a is None:
            raise RuntimeError("sparsifier_draw needs setup() first (G is built there).")
        if self._resistances is None:
            self._resistances = resistances(a, hp.resistance, hp.jl_k, hp.seed)
        n = a.shape[0]
        seed = int(np.random.SeedSequence([hp.seed, draw, round(samples_factor * 1000)]).generate_state(1)[0])
        q = int(np.ceil(samples_factor * n * np.log(n)))
        return effective_resistance_sparsify(a, q=q, seed=seed, r=self._resistances, scheme=hp.scheme)

    def sparsify(self, a: sp.csr_array) -> Sparsified:
        """H from G's adjacency by the configured sparsifier (budgets as documented in the class)."""
        hp = self.hparams
        if hp.sparsifier == "none":
            return Sparsified(a, a, 0, a.nnz // 2, 1.0)
        if hp.sparsifier == "knn_prune":
            return knn_prune(a, hp.prune_k)
        m = a.nnz // 2
        budget = None if hp.keep_fraction is None else max(1, round(hp.keep_fraction * m))
        if hp.sparsifier == "uniform" and budget is not None:
            return uniform_sparsify(a, budget, hp.seed)
        r = resistances(a, hp.resistance, hp.jl_k, hp.seed)
        n = a.shape[0]
        kwargs: dict[str, float | int] = {"eps": hp.eps}
        if budget is not None:
            kwargs = {"budget": budget}
        elif hp.samples_factor is not None:
            kwargs = {"q": int(np.ceil(hp.samples_factor * n * np.log(n)))}
        er = effective_resistance_sparsify(
            a, seed=hp.seed, oversampling=hp.oversampling, r=r, scheme=hp.scheme, **kwargs
        )
        return er if hp.sparsifier == "effective_resistance" else uniform_sparsify(a, er.kept_edges, hp.seed)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        dataset = self.hparams.dataset
        stamp = os.stat(dataset).st_mtime_ns if os.path.isfile(dataset) else None  # a rewritten file is re-read
        key = repr((sorted(self.hparams.items()), stamp))
        self.graph, self.sparsified, self.certificate, given, self.adjacency = _prepare(self, key)
        if given:
            self.splits = {name: (nodes,) for name, nodes in given.items()}
            return
        n = len(self.graph["y"])
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.hparams.seed))
        n_train, n_val = int(self.hparams.train_fraction * n), int(self.hparams.val_fraction * n)
        self.splits = {
            "train": (order[:n_train],),
            "val": (order[n_train : n_train + n_val],),
            "test": (order[n_train + n_val :],),
        }


Prepared = tuple[dict[str, torch.Tensor], Sparsified, EpsCertificate, dict[str, torch.Tensor], sp.csr_array]
_CACHE: dict[str, Prepared] = {}


def _prepare(dm: GraphSparsifyData, key: str) -> Prepared:
    """Build G, H, the certificate, the graph's own splits and G's adjacency once per process and configuration (fit,
    test and predict of one config, as in the conformance suite, reuse them; the tensors are never modified in
    place). Keeps the last 2 entries."""
    if key not in _CACHE:
        g, given = dm.build()
        sparsified = dm.sparsify(g.adjacency)
        certificate = spectral_eps(g.adjacency, sparsified.adjacency, seed=dm.hparams.seed)
        dense_index, dense_weight = edges(g.adjacency)
        sparse_index, sparse_weight = edges(sparsified.adjacency)
        graph = {
            "x": g.x,
            "y": g.y,
            "dense_index": dense_index,
            "dense_weight": dense_weight,
            "sparse_index": sparse_index,
            "sparse_weight": sparse_weight,
        }
        while len(_CACHE) >= 2:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (graph, sparsified, certificate, given, g.adjacency)
    return _CACHE[key]
