"""Small weighted test graphs (scipy CSR adjacency, float64)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp


def weighted_sbm(sizes: list[int], p_in: float, p_out: float, seed: int) -> sp.csr_array:
    """SBM with i.i.d. Uniform(0.5, 2) weights."""
    probs = [[p_in if i == j else p_out for j in range(len(sizes))] for i in range(len(sizes))]
    g = nx.stochastic_block_model(sizes, probs, seed=seed)
    rng = np.random.default_rng(seed)
    for u, v in g.edges:
        g[u][v]["weight"] = rng.uniform(0.5, 2.0)
    return sp.csr_array(nx.to_scipy_sparse_array(g, weight="weight", dtype=np.float64))


@pytest.fixture(scope="session")
def make_sbm():
    """The :func:`weighted_sbm` factory."""
    return weighted_sbm


@pytest.fixture(scope="session")
def dense_sbm() -> sp.csr_array:
    """300 nodes, 3 blocks, p 0.3 / 0.03, weighted (about 5k edges)."""
    return weighted_sbm([100, 100, 100], 0.3, 0.03, seed=0)


@pytest.fixture(scope="session")
def disconnected() -> sp.csr_array:
    """Two weighted SBM components (60 and 40 nodes) plus two isolated nodes."""
    a, b = weighted_sbm([30, 30], 0.4, 0.05, 1), weighted_sbm([40], 0.3, 0.0, 2)
    return sp.csr_array(sp.block_diag([a, b, sp.csr_array((2, 2))], format="csr"))


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Solver code is single-threaded by design; on a shared 2-core machine, idle BLAS threads spinning in the
    dense reference computations (eigh, pinv) cost 10-40x. Pin BLAS to one thread for these tests."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
