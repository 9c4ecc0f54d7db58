"""TopoFisher persistence benchmark: diagrams (H0, H1) + persistence image + backward for a batch of 64 fields (open
boundary), ours (critical pairs from gudhi or cripser in threads, one gather) vs torch-topological's CubicalComplex
on the same batch, and the per-field cost of a plain gudhi call (the wrapper's overhead).

    python scripts/bench_topofisher.py [--sizes 64 128] [--batch 64] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from framework_plugins.topofisher.persistence import Diagram, cubical_diagrams, cubical_pairs
from framework_plugins.topofisher.simulators import GRF
from framework_plugins.topofisher.vectorizations import PersistenceImage


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def vectorize_loss(diagrams: list[Diagram], image: PersistenceImage) -> torch.Tensor:
    return sum(image(d).pow(2).sum() for d in diagrams)


def ours(fields: torch.Tensor, image: PersistenceImage, threads: int, backend: str = "gudhi") -> None:
    x = fields.clone().requires_grad_(True)
    vectorize_loss(cubical_diagrams(x, (0, 1), periodic=False, threads=threads, backend=backend), image).backward()


def gudhi_shim():
    """torch-topological 0.1.9 hands torch tensors to ``gudhi.CubicalComplex``, which gudhi >= 3.11 refuses; this
    shim converts them to numpy (the cost is the same copy gudhi used to make) and leaves everything else as is."""
    import types

    import gudhi

    def cubical(dimensions, top_dimensional_cells, **kwargs):
        cells = top_dimensional_cells.detach().cpu().numpy()
        return gudhi.CubicalComplex(dimensions=list(dimensions), top_dimensional_cells=cells, **kwargs)

    return types.SimpleNamespace(**{**vars(gudhi), "CubicalComplex": cubical})


def diagrams_only(fields: torch.Tensor) -> None:
    x = fields.clone().requires_grad_(True)
    sum(d.points.sum() for d in cubical_diagrams(x, (0, 1), periodic=False, threads=1)).backward()


def torch_topological(fields: torch.Tensor, image: PersistenceImage) -> None:
    from torch_topological.nn import CubicalComplex, cubical_complex

    cubical_complex.gudhi = gudhi_shim()
    x = fields.clone().requires_grad_(True)
    infos = CubicalComplex(dim=2)(x)  # list (per image) of lists (per dimension) of PersistenceInformation
    diagrams = []
    for dim in (0, 1):
        pts = [info[dim].diagram for info in infos]
        pts = [p[torch.isfinite(p).all(1)] for p in pts]
        size = max(len(p) for p in pts)
        points = torch.stack([torch.nn.functional.pad(p, (0, 0, 0, size - len(p))) for p in pts])
        mask = torch.stack([torch.arange(size) < len(p) for p in pts])
        diagrams.append(Diagram(points, mask))
    vectorize_loss(diagrams, image).backward()


def plain_gudhi(fields: torch.Tensor) -> None:
    for field in fields.numpy():
        cubical_pairs(field, periodic=False, dims=(0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = PersistenceImage(bandwidth=0.2, resolution=(16, 16), birth_range=(-4, 4), persistence_range=(0, 4))
    print(
        f"batch {args.batch}, H0 + H1 (open boundary: torch-topological has no periodic option), "
        f"PI 16x16 + backward, {args.threads} threads, best of {args.repeats}"
    )
    for n in args.sizes:
        fields = GRF(n=n, theta_fid=[1.0, 1.0]).simulate(torch.tensor([[1.0, 1.0]] * args.batch), range(args.batch))
        fields = fields.float()
        t_ours = best_of(lambda f=fields: ours(f, image, args.threads), args.repeats)
        t_ours1 = best_of(lambda f=fields: ours(f, image, 1), args.repeats)
        t_gudhi = best_of(lambda f=fields: plain_gudhi(f), args.repeats)
        t_wrap = best_of(lambda f=fields: diagrams_only(f), args.repeats)
        try:
            t_cripser = best_of(lambda f=fields: ours(f, image, args.threads, "cripser"), args.repeats)
        except ImportError:
            t_cripser = float("nan")  # pip install -e '.[cripser]'
        try:
            t_tt = best_of(lambda f=fields: torch_topological(f, image), args.repeats)
            ratio = f"gudhi backend {t_tt / t_ours:.2f}x, cripser backend {t_tt / t_cripser:.2f}x"
        except ImportError:
            t_tt, ratio = float("nan"), "n/a (pip install -e '.[bench]')"
        print(
            f"{n}x{n}: ours {t_ours * 1e3:.0f} ms/batch ({args.threads} threads), {t_ours1 * 1e3:.0f} ms (1 thread), "
            f"cripser backend {t_cripser * 1e3:.0f} ms ({args.threads} threads); "
            f"torch-topological {t_tt * 1e3:.0f} ms -> ours faster by {ratio}; plain gudhi "
            f"{t_gudhi / args.batch * 1e3:.2f} ms/field; our differentiable diagrams (gather + backward, 1 thread) "
            f"{t_wrap / args.batch * 1e3:.2f} ms/field (wrapper overhead x{t_wrap / t_gudhi:.2f})"
        )


if __name__ == "__main__":
    main()
