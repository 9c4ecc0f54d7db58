"""Optimizer step time: framework Muon vs torch.optim.Muon, and achieved GFLOP/s of the orthogonalization.

    python scripts/bench_muon.py [--repeats 3] [--layers 12] [--width 768]

Stacks: (1) GPT-small-like hidden matrices, ``layers`` x {qkv (3d x d), proj (d x d), fc (4d x d), mlp_proj
(d x 4d)}; (2) the MoE plugin's quick model (its experts given to torch.optim.Muon as separate 2-D matrices, since
torch.optim.Muon rejects 3-D tensors). Same NS steps (5), momentum, Nesterov and lr scaling on both sides; gradients
fixed. Reports the median step time over ``repeats`` steps after one warm-up step, the ratio torch / ours, and the
orthogonalization's GFLOP/s against a 2048 x 2048 matmul in the same dtype. On CUDA the same runs use the GPU.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from framework.optim import Muon
from framework.optim.orthogonalize import newton_schulz, newton_schulz_flops
from framework_plugins.moe_transformer import MoELanguageModel


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gpt_matrices(layers: int, width: int) -> list[tuple[int, int]]:
    d = width
    return [(3 * d, d), (d, d), (4 * d, d), (d, 4 * d)] * layers


def moe_matrices() -> list[tuple[int, int]]:
    shapes = []
    for name, p in MoELanguageModel().named_parameters():
        if p.ndim == 3:
            shapes += [tuple(p.shape[1:])] * p.shape[0]
        elif p.ndim == 2 and not any(k in name for k in ("embed", "lm_head")):
            shapes.append(tuple(p.shape))
    return shapes


def step_times(shapes: list[tuple[int, int]], device: torch.device, ns_dtype: str, repeats: int) -> tuple[float, float]:
    """Median seconds per step of (framework Muon, torch.optim.Muon) on params of these shapes."""
    gen = torch.Generator().manual_seed(0)
    params = [nn.Parameter(torch.randn(s, generator=gen).to(device)) for s in shapes]
    grads = [torch.randn(s, generator=gen).to(device) for s in shapes]
    ref_params = [nn.Parameter(p.detach().clone()) for p in params]
    for p, q, g in zip(params, ref_params, grads, strict=True):
        p.grad, q.grad = g.clone(), g.clone()
    ours = Muon([{"params": params, "param_names": [f"h{i}" for i in range(len(params))]}], lr=0.02, ns_dtype=ns_dtype)
    theirs = torch.optim.Muon(ref_params, lr=0.02, weight_decay=0.0)
    return timed(ours.step, repeats, device), timed(theirs.step, repeats, device)


def orthogonalization_gflops(
    shapes: list[tuple[int, int]], device: torch.device, dtype: torch.dtype, repeats: int
) -> float:
    """GFLOP/s of batched Newton-Schulz over these shapes, grouped by shape as the optimizer does."""
    groups: dict[tuple[int, int], int] = {}
    for s in shapes:
        groups[s] = groups.get(s, 0) + 1
    stacks = [torch.randn(n, *s, device=device) for s, n in groups.items()]
    flops = sum(n * newton_schulz_flops(*s) for s, n in groups.items())
    seconds = timed(lambda: [newton_schulz(x, dtype=dtype) for x in stacks], repeats, device)
    return flops / seconds / 1e9


def matmul_gflops(device: torch.device, dtype: torch.dtype, repeats: int, n: int = 2048) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ a, repeats, device) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=768)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}")
    stacks = {f"gpt {args.layers}x{args.width}": gpt_matrices(args.layers, args.width), "moe quick": moe_matrices()}
    dtypes = ["bfloat16"] if device.type == "cuda" else ["float32", "bfloat16"]
    header = ("stack", "ours dtype", "ours ms", "torch ms", "torch/ours", "NS GFLOP/s", "matmul", "%")
    widths = (-16, -11, 10, 10, 12, 12, 9, 6)
    print("".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for label, shapes in stacks.items():
        for ns_dtype in dtypes:
            ours, theirs = step_times(shapes, device, ns_dtype, args.repeats)
            dtype = getattr(torch, ns_dtype)
            ns = orthogonalization_gflops(shapes, device, dtype, args.repeats)
            mm = matmul_gflops(device, dtype, args.repeats)
            print(
                f"{label:<16}{ns_dtype:<11}{ours * 1e3:>10.1f}{theirs * 1e3:>10.1f}{theirs / ours:>12.2f}"
                f"{ns:>12.0f}{mm:>9.0f}{100 * ns / mm:>6.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
