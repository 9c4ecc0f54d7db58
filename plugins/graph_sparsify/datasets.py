"""Node-classification graphs: built-in simulators (stochastic block model, random geometric graph), kNN graphs
over scikit-learn digits, and local-file loaders for FashionMNIST (IDX), Cora (Planetoid raw files) and Paul15
(.h5ad). Each returns a :class:`NodeGraph`; nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from framework.data import load_data_pickle, read_idx_images_and_labels, require_file
from framework_plugins.graph_sparsify.graph import adjacency, from_edges, knn_graph

PLANETOID_RAW = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
# what Planetoid's pickles name besides numpy arrays (Python 2 spellings too): scipy CSR features, adjacency lists
PLANETOID_GLOBALS = {(module, "csr_matrix") for module in ("scipy.sparse.csr", "scipy.sparse._csr")} | {
    ("collections", "defaultdict"),
    ("builtins", "list"),
    ("__builtin__", "list"),
}


@dataclass
class NodeGraph:
    """Features ``x`` (n, d) float32, labels ``y`` (n,) int64, symmetric weighted ``adjacency`` (n, n) CSR."""

    x: torch.Tensor
    y: torch.Tensor
    adjacency: sp.csr_array


def pca(features: np.ndarray, dim: int) -> np.ndarray:
    """Project centred rows onto the top ``dim`` principal directions (SVD); keeps all dims if d <= dim."""
    centred = features - features.mean(0)
    if centred.shape[1] <= dim:
        return centred
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:dim].T


def _labelled(x: np.ndarray, y: np.ndarray, a: sp.csr_array) -> NodeGraph:
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return NodeGraph(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long), a)


def sbm(
    num_nodes: int, num_blocks: int, p_in: float, p_out: float, feature_dim: int, feature_noise: float, seed: int
) -> NodeGraph:
    """Stochastic block model: ``num_blocks`` equal blocks, edge probability p_in inside and p_out across (unit
    weights); features = a random block mean in R^feature_dim + N(0, feature_noise^2) noise."""
    if not 0 <= p_out <= p_in <= 1:
        raise ValueError(f"need 0 <= p_out={p_out} <= p_in={p_in} <= 1.")
    rng = np.random.default_rng(seed)
    y = np.arange(num_nodes) * num_blocks // num_nodes
    u, v = np.triu_indices(num_nodes, k=1)
    prob = np.where(y[u] == y[v], p_in, p_out)
    keep = rng.random(len(u)) < prob
    a = from_edges(u[keep], v[keep], np.ones(int(keep.sum())), num_nodes)
    means = rng.standard_normal((num_blocks, feature_dim))
    x = means[y] + feature_noise * rng.standard_normal((num_nodes, feature_dim))
    return _labelled(x, y, a)


def random_geometric(num_nodes: int, radius: float, num_classes: int, feature_dim: int, seed: int) -> NodeGraph:
    """Random geometric graph on the unit square: edge if ||p_i - p_j|| < radius, weight exp(-d^2 / radius^2);
    label = angular sector (of ``num_classes``) around the centre; features = noisy one-hot sector code
    (noise std 2) padded with noise to ``feature_dim``."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    pos = rng.random((num_nodes, 2))
    pairs = cKDTree(pos).query_pairs(radius, output_type="ndarray")
    d2 = np.sum((pos[pairs[:, 0]] - pos[pairs[:, 1]]) ** 2, 1)
    a = from_edges(pairs[:, 0], pairs[:, 1], np.exp(-d2 / radius**2), num_nodes)
    angle = np.arctan2(pos[:, 1] - 0.5, pos[:, 0] - 0.5) + np.pi
    y = np.minimum((angle / (2 * np.pi) * num_classes).astype(np.int64), num_classes - 1)
    x = 2.0 * rng.standard_normal((num_nodes, max(feature_dim, num_classes)))
    x[np.arange(num_nodes), y] += 1.0
    return _labelled(x, y, a)


def digits_knn(k: int) -> NodeGraph:
    """kNN graph (self-tuning weights) over scikit-learn's 1,797 8x8 digits (shipped); features = 64 pixels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data.astype(np.float64)
    return _labelled(x, data.target, knn_graph(x, k))


def _find(root: Path, names: tuple[str, ...], what: str, how: str) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    return require_file(root / names[0], what, how)


def fashion_mnist_knn(root: str, num_nodes: int, k: int, pca_dim: int, seed: int) -> NodeGraph:
    """kNN graph over ``num_nodes`` seeded-random FashionMNIST training images, PCA-reduced to ``pca_dim``.
    Files: ``<root>/train-images-idx3-ubyte[.gz]`` and ``<root>/train-labels-idx1-ubyte[.gz]``."""
    how = "download the FashionMNIST IDX files from github.com/zalandoresearch/fashion-mnist (data/fashion)"
    base = Path(root)
    images, labels = read_idx_images_and_labels(
        _find(base, ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"), "FashionMNIST", how),
        _find(base, ("train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte"), "FashionMNIST", how),
    )
    pick = np.sort(np.random.default_rng(seed).permutation(len(images))[: min(num_nodes, len(images))])
    x = pca(images[pick].reshape(len(pick), -1).astype(np.float64) / 255.0, pca_dim)
    return _labelled(x, labels[pick].astype(np.int64), knn_graph(x, k))


def _planetoid_object(path: Path) -> object:
    return load_data_pickle(path, PLANETOID_GLOBALS, encoding="latin1")


def _dense(matrix: object, path: Path) -> np.ndarray:
    array = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path} holds {type(matrix).__name__} {array.shape}, expected a 2-D numeric matrix.")
    return array.astype(np.float64)


def cora(root: str) -> NodeGraph:
    """Cora citation graph (2,708 nodes, 5,278 undirected unit-weight edges, 1,433 bag-of-words features,
    7 classes) from the Planetoid raw files ``<root>/Cora/raw/ind.cora.*``, assembled as
    ``torch_geometric.datasets.Planetoid`` does: features = rows of ``allx`` then ``tx``, labels = argmax of
    ``ally`` then ``ty``, the test rows moved to the node ids in ``test.index``; edges from the ``graph``
    adjacency lists without self-loops, symmetrised with unit weights. The pickled files are read with
    :func:`framework.data.load_data_pickle` (numpy / scipy CSR / adjacency lists only, so a crafted file cannot run
    code); PyG's own reader would unpickle anything."""
    how = "download the 8 files ind.cora.{x,tx,allx,y,ty,ally,graph,test.index} from github.com/kimiyoung/planetoid"
    raw = Path(root) / "Cora" / "raw"
    files = {
        name: require_file(raw / f"ind.cora.{name}", f"Planetoid raw file ind.cora.{name}", how)
        for name in PLANETOID_RAW
    }
    tx, allx = (_dense(_planetoid_object(files[n]), files[n]) for n in ("tx", "allx"))
    ty, ally = (_dense(_planetoid_object(files[n]), files[n]) for n in ("ty", "ally"))
    graph = _planetoid_object(files["graph"])
    test_index = np.loadtxt(files["test.index"], dtype=np.int64, ndmin=1)
    x, y = np.vstack([allx, tx]), np.vstack([ally, ty]).argmax(1)
    n = len(x)
    if len(tx) != len(test_index) or len(ty) != len(tx) or len(ally) != len(allx):
        raise ValueError(
            f"Planetoid files in {raw} disagree: {len(allx)} allx / {len(ally)} ally rows, {len(tx)} tx / "
            f"{len(ty)} ty rows and {len(test_index)} test indices."
        )
    if not isinstance(graph, dict) or test_index.min() < 0 or test_index.max() >= n:
        raise ValueError(f"{files['graph']} or {files['test.index']} do not describe a graph on {n} nodes.")
    order = np.sort(test_index)
    x[test_index], y[test_index] = x[order], y[order]
    rows = np.fromiter((u for u, nbrs in graph.items() for _ in nbrs), np.int64)
    cols = np.fromiter((v for nbrs in graph.values() for v in nbrs), np.int64)
    if rows.size and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= n):
        raise ValueError(f"{files['graph']} names nodes outside 0..{n - 1}.")
    keep = rows != cols
    directed = sp.csr_array((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(n, n))
    a = adjacency(sp.csr_array(((directed + directed.T) > 0).astype(np.float64)))  # unit weights, symmetric
    return NodeGraph(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long), a)


def _h5ad_matrix(node: object) -> np.ndarray:
    import h5py

    if isinstance(node, h5py.Dataset):
        return node[()].astype(np.float64)
    shape = tuple(node.attrs.get("shape", node.attrs.get("h5sparse_shape")))
    fmt = str(node.attrs.get("encoding-type", node.attrs.get("h5sparse_format", "csr_matrix")))
    make = sp.csc_array if "csc" in fmt else sp.csr_array
    return make((node["data"][()], node["indices"][()], node["indptr"][()]), shape=shape).toarray().astype(float)


def _h5ad_labels(obs: object, key: str) -> np.ndarray:
    import h5py

    if isinstance(obs, h5py.Dataset):  # legacy compound-dtype obs with "__categories"
        codes = obs[key][()]
        return codes.astype(np.int64)
    if key not in obs:
        raise ValueError(f"label_key={key!r}: obs has no such column (it has {sorted(obs.keys())}).")
    node = obs[key]
    if isinstance(node, h5py.Group):  # categorical: codes + categories
        return node["codes"][()].astype(np.int64)
    return np.unique(node[()], return_inverse=True)[1].astype(np.int64)


def paul15_knn(path: str, k: int, pca_dim: int, label_key: str = "paul15_clusters") -> NodeGraph:
    """kNN graph over cells of Paul15 (2,730 myeloid progenitors x 3,451 genes, 19 clusters) read from a local
    ``.h5ad`` (h5py only): log1p counts, PCA to ``pca_dim``, labels = categorical ``obs[label_key]``."""
    how = "save scanpy.datasets.paul15() with adata.write_h5ad(...) on a machine with network access"
    file = require_file(path, "Paul15 .h5ad", how)  # a missing file is reported before a missing reader
    try:
        import h5py
    except ImportError as err:
        raise ImportError("reading .h5ad needs h5py: pip install 'framework[graph]' (or pip install h5py).") from err
    with h5py.File(file, "r") as f:
        x = _h5ad_matrix(f["X"])
        y = _h5ad_labels(f["obs"], label_key)
    x = pca(np.log1p(np.maximum(x, 0)), pca_dim)
    return _labelled(x, y, knn_graph(x, k))
