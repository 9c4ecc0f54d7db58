"""Drifting-field computation, 4,096 generated x 4,096 data points in 64-d on CPU: chunked vs one naive block.

    python scripts/bench_drifting.py [--n 4096] [--dim 64] [--chunk 512] [--repeats 3]

Each variant runs in its own subprocess so its peak memory (max RSS above the process's baseline after the inputs
exist) is measured cleanly; time is the median of ``repeats`` calls after a warm-up. Also checks that both give the
same field (max abs difference).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from framework_plugins.drifting.field import batch_field


def inputs(n: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, dim, generator=gen), torch.randn(n, dim, generator=gen) + 0.5


def measure(n: int, dim: int, chunk: int | None, repeats: int) -> dict[str, float]:
    x, y = inputs(n, dim)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    v = batch_field(x, y, x, "laplace", 1.0, neg_is_x=True, chunk_size=chunk)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        batch_field(x, y, x, "laplace", 1.0, neg_is_x=True, chunk_size=chunk)
        times.append(time.perf_counter() - start)
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return {
        "seconds": statistics.median(times),
        "peak_mb": peak_mb,
        "checksum": v.double().abs().sum().item(),
        "first": v[:4].tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variant", choices=["naive", "chunked"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        chunk = None if args.variant == "naive" else args.chunk
        print(json.dumps(measure(args.n, args.dim, chunk, args.repeats)))
        return
    results = {}
    for variant in ("naive", "chunked"):
        cmd = [
            sys.executable,
            __file__,
            f"--n={args.n}",
            f"--dim={args.dim}",
            f"--chunk={args.chunk}",
            f"--repeats={args.repeats}",
            f"--variant={variant}",
        ]
        results[variant] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    naive, chunked = results["naive"], results["chunked"]
    diff = max(
        abs(a - b) for ra, rb in zip(naive["first"], chunked["first"], strict=True) for a, b in zip(ra, rb, strict=True)
    )
    print(
        f"field of {args.n} generated x {args.n} data points, d={args.dim}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'variant':<22}{'seconds':>10}{'peak MB':>10}")
    print(f"{'naive (one block)':<22}{naive['seconds']:>10.3f}{naive['peak_mb']:>10.0f}")
    print(f"{f'chunked ({args.chunk} rows)':<22}{chunked['seconds']:>10.3f}{chunked['peak_mb']:>10.0f}")
    memory_ratio = naive["peak_mb"] / max(chunked["peak_mb"], 1)
    print(
        f"time chunked/naive = {chunked['seconds'] / naive['seconds']:.2f}, "
        f"memory naive/chunked = {memory_ratio:.1f}x, max |diff| = {diff:.2e}"
    )


if __name__ == "__main__":
    main()
