"""Effective-resistance sparsification speed on a 2-core CPU.

    python scripts/bench_graph_sparsify.py [--nodes 100000] [--degree 20] [--jl-k 64] [--small 2000]

1. Large graphs with about nodes x degree / 2 = 1M edges: JL-approximate effective resistances (``jl_k`` block
   Jacobi-PCG solves, rtol 1e-3) + Spielman-Srivastava sampling (q = 2 n ln n), on an expander-like random graph
   (clusters of 1,000 nodes with random intra-cluster edges and a few inter-cluster ones) and on a 2-d random
   geometric graph (mesh-like, the hard case for CG). Each in a fresh subprocess; peak memory = max RSS of that
   process above its baseline after the graph exists. Target: < 60 s.
2. n = ``small`` (SBM): approximate vs exact resistances (grounded Cholesky) and numpy's pinv of L: time ratio and
   accuracy (median / 99th percentile relative error, Foster's sum). BLAS pinned to one thread in the solvers.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from framework_plugins.graph_sparsify.graph import (
    approx_resistances,
    components,
    edge_list,
    effective_resistance_sparsify,
    exact_resistances,
    foster_sum,
    from_edges,
    laplacian,
)


def clustered_random_graph(n: int, degree: int, seed: int = 0) -> sp.csr_array:
    """n nodes in clusters of 1,000; each node draws degree / 2 random partners, 90% inside its cluster."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n), degree // 2)
    inside = rng.random(len(u)) < 0.9
    v = np.where(inside, (u // 1000) * 1000 + rng.integers(0, 1000, len(u)), rng.integers(0, n, len(u)))
    v = np.minimum(v, n - 1)
    keep = u != v
    a = from_edges(u[keep], v[keep], np.ones(int(keep.sum())), n)
    a.data[:] = 1.0
    return a


def geometric_graph(n: int, degree: int, seed: int = 0) -> sp.csr_array:
    """2-d random geometric graph on the unit square with mean degree about ``degree``, weights exp(-d^2/r^2)."""
    from scipy.spatial import cKDTree

    pos = np.random.default_rng(seed).random((n, 2))
    r = math.sqrt(degree / (math.pi * n))
    pairs = cKDTree(pos).query_pairs(r, output_type="ndarray")
    d2 = np.sum((pos[pairs[:, 0]] - pos[pairs[:, 1]]) ** 2, 1)
    return from_edges(pairs[:, 0], pairs[:, 1], np.exp(-d2 / r**2), n)


def large(kind: str, n: int, degree: int, jl_k: int) -> dict:
    a = clustered_random_graph(n, degree) if kind == "clustered" else geometric_graph(n, degree)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    r = approx_resistances(a, k=jl_k, seed=0)
    t_er = time.perf_counter() - start
    h = effective_resistance_sparsify(a, q=math.ceil(2 * n * math.log(n)), seed=0, r=r)
    total = time.perf_counter() - start
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    fs, expected = foster_sum(a, r)
    return {
        "graph": kind,
        "n": n,
        "edges": a.nnz // 2,
        "components": components(a)[0],
        "jl_k": jl_k,
        "resistance_s": t_er,
        "total_s": total,
        "peak_mb": peak,
        "kept_fraction": h.kept_fraction,
        "foster_rel_err": abs(fs / expected - 1),
    }


def small(n: int, jl_k: int) -> dict:
    rng = np.random.default_rng(0)
    y = np.arange(n) * 4 // n
    u, v = np.triu_indices(n, k=1)
    keep = rng.random(len(u)) < np.where(y[u] == y[v], 0.2, 0.01)
    a = from_edges(u[keep], v[keep], rng.uniform(0.5, 2.0, int(keep.sum())), n)
    with threadpool_limits(1):
        t = time.perf_counter()
        exact = exact_resistances(a)
        t_exact = time.perf_counter() - t
        t = time.perf_counter()
        eu, ev, _ = edge_list(a)
        p = np.linalg.pinv(laplacian(a).toarray())
        pinv = p[eu, eu] + p[ev, ev] - 2 * p[eu, ev]
        t_pinv = time.perf_counter() - t
        t = time.perf_counter()
        approx = approx_resistances(a, k=jl_k, seed=0)
        t_approx = time.perf_counter() - t
    rel = np.abs(approx / exact - 1)
    return {
        "n": n,
        "edges": a.nnz // 2,
        "exact_s": t_exact,
        "pinv_s": t_pinv,
        "approx_s": t_approx,
        "exact_vs_pinv_max_rel": float(np.max(np.abs(exact / pinv - 1))),
        "median_rel_err": float(np.median(rel)),
        "p99_rel_err": float(np.quantile(rel, 0.99)),
        "foster_rel_err": abs(foster_sum(a, approx)[0] / (n - 1) - 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--degree", type=int, default=20)
    parser.add_argument("--jl-k", type=int, default=64)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--run", choices=["clustered", "geometric"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(large(args.run, args.nodes, args.degree, args.jl_k)))
        return
    for kind in ("clustered", "geometric"):
        cmd = [
            sys.executable,
            __file__,
            "--run",
            kind,
            "--nodes",
            str(args.nodes),
            "--degree",
            str(args.degree),
            "--jl-k",
            str(args.jl_k),
        ]
        res = json.loads(
            subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        )
        print(
            f"{kind:9s} n={res['n']} m={res['edges']} ({res['components']} comp.): JL k={res['jl_k']} resistances "
            f"{res['resistance_s']:.1f} s, + sampling {res['total_s']:.1f} s total (target < 60 s), peak "
            f"{res['peak_mb']:.0f} MB, kept {res['kept_fraction']:.2f}, "
            f"Foster rel. err {res['foster_rel_err']:.4f}"
        )
    res = small(args.small, args.jl_k)
    print(
        f"n={res['n']} m={res['edges']}: exact (grounded Cholesky) {res['exact_s']:.2f} s, numpy pinv "
        f"{res['pinv_s']:.2f} s, JL k={args.jl_k} {res['approx_s']:.2f} s -> exact/approx time ratio "
        f"{res['exact_s'] / res['approx_s']:.1f}x, pinv/approx {res['pinv_s'] / res['approx_s']:.1f}x; JL relative "
        f"error median {res['median_rel_err']:.3f}, p99 {res['p99_rel_err']:.3f} (theory ~0.93/sqrt(k) = "
        f"{0.93 / math.sqrt(args.jl_k):.3f}); Foster rel. err {res['foster_rel_err']:.4f}; exact vs pinv max rel "
        f"{res['exact_vs_pinv_max_rel']:.1e}"
    )


if __name__ == "__main__":
    main()
