"""Optimizer step time and orthogonality: framework Muon vs torch.optim.Muon, and achieved GFLOP/s.

    python scripts/bench_muon.py [--repeats 3] [--layers 12] [--width 768]

Stacks: (1) GPT-small-like hidden matrices, ``layers`` x {qkv (3d x d), proj (d x d), fc (4d x d), mlp_proj
(d x 4d)}; (2) the MoE plugin's quick model (its experts given to torch.optim.Muon as separate 2-D matrices, since
torch.optim.Muon rejects 3-D tensors). Same momentum, Nesterov and lr scaling on both sides; gradients fixed.
``torch.optim.Muon`` runs Jordan's quintic 5 times in bfloat16, one matrix at a time. Ours runs each variant
(coefficients x steps x method x dtype) on stacks of same-shaped blocks. Reports the median step time over
``repeats`` steps after a warm-up step, the ratio torch / ours, and two accuracies on real gradient spectra
(the gradient of 4 batches of the MoE plugin's byte data for a one-layer model of this width, whose qkv, proj,
expert-in and expert-out weights have exactly the GPT stack's shapes), against the exact polar factor U V^T (float64
SVD), over the directions whose singular value s_i >= 1e-3 ||G||_F (the Polar Express design range):

    sv err   max_i |u_i^T O v_i - 1|          (distance of the result's singular values from 1)
    polar    ||P (O - U V^T) P'||_F / ||U V^T P'||_F restricted to those directions (distance from U V^T)

The orthogonalization's GFLOP/s (from the step time) is set against a 2048 x 2048 matmul in the same dtype.

Regularized map (regularized Muon): the float32 Gram iteration Muon uses against float64 ``eigh`` (the previous
method), time per call on each stack grouped by shape (as the optimizer stacks them) with eps = 0.1 x each block's
RMS singular value, and its relative Frobenius error against ``eigh`` on the real gradients at reg_eps 0.1 and 0.01.
On CUDA the same runs use the GPU (bfloat16 for Newton-Schulz).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from framework.optim import Muon
from framework.optim.muon import _resolve_coefficients
from framework.optim.orthogonalize import gram_newton_schulz_flops, newton_schulz_flops, regularized_polar
from framework_plugins.moe_transformer import MoELanguageModel
from framework_plugins.moe_transformer.corpus import load_split, windows

SV_FLOOR = 1e-3
VARIANTS: dict[str, dict[str, Any]] = {  # label -> Muon keyword arguments
    "jordan x5": {"ns_coefficients": "jordan", "ns_steps": 5, "ns_method": "standard"},
    "polar_express x5": {"ns_coefficients": "polar_express", "ns_steps": 5, "ns_method": "auto"},
    "polar_express x4": {"ns_coefficients": "polar_express", "ns_steps": 4, "ns_method": "auto"},
}


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


def real_gradients(width: int) -> list[torch.Tensor]:
    """Gradients (4 batches of 16 x 64 bytes) of qkv (3d, d), proj (d, d), expert in (4d, d) and out (d, 4d) of a
    one-layer, one-expert MoE model of width d at initialisation (seed 0)."""
    torch.manual_seed(0)
    model = MoELanguageModel(
        block_size=64, d_model=width, n_layers=1, n_heads=max(1, width // 64), d_ff=4 * width, n_experts=1
    )
    data = windows(load_split("train", 200_000, None), 64)
    for i in range(4):
        batch = data[16 * i : 16 * (i + 1)]
        logits = model(batch[:, :-1])
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    block = "model.blocks.0."
    return [
        grads[block + "attn.qkv.weight"],
        grads[block + "attn.proj.weight"],
        grads[block + "moe.experts_in"][0],
        grads[block + "moe.experts_out"][0],
    ]


def direction(step: Callable[[nn.Parameter], torch.optim.Optimizer], g: torch.Tensor) -> torch.Tensor:
    """The orthogonalized direction an optimizer applies to G in one step (momentum 0, lr 1, lr_scale none)."""
    p = nn.Parameter(torch.zeros_like(g))
    p.grad = g.clone()
    step(p).step()
    return -p.detach()


def orthogonality(o: torch.Tensor, g: torch.Tensor) -> tuple[float, float]:
    """(sv err, polar) of O against G's exact polar factor over directions with s_i >= SV_FLOOR ||G||_F."""
    u, s, vh = torch.linalg.svd(g.double(), full_matrices=False)
    keep = s >= SV_FLOOR * s.norm()
    u, vh, o = u[:, keep], vh[keep], o.double()
    core = u.T @ o @ vh.T
    sv_err = (torch.diagonal(core) - 1).abs().max().item()
    polar = (core - torch.eye(core.shape[0], dtype=core.dtype)).norm() / core.shape[0] ** 0.5
    return sv_err, polar.item()


def accuracy(kwargs: dict[str, Any] | None, grads: list[torch.Tensor], ns_dtype: str) -> tuple[float, float]:
    """Worst (sv err, polar) over the real gradients: ours with ``kwargs``, or torch.optim.Muon (None)."""
    results = []
    for g in grads:
        if kwargs is None:
            opt = lambda p: torch.optim.Muon([p], lr=1.0, momentum=0.0, weight_decay=0.0, adjust_lr_fn="original")  # noqa: E731
            o = direction(opt, g) / max(1.0, g.shape[0] / g.shape[1]) ** 0.5
        else:
            opt = lambda p: Muon([p], lr=1.0, momentum=0.0, lr_scale="none", ns_dtype=ns_dtype, **kwargs)  # noqa: E731
            o = direction(opt, g)
        results.append(orthogonality(o, g))
    return max(r[0] for r in results), max(r[1] for r in results)


def step_times(
    shapes: list[tuple[int, int]], device: torch.device, kwargs: dict[str, Any], ns_dtype: str, repeats: int
) -> tuple[float, float]:
    """Median seconds per step of (framework Muon with ``kwargs``, torch.optim.Muon) on params of these shapes."""
    gen = torch.Generator().manual_seed(0)
    params = [nn.Parameter(torch.randn(s, generator=gen).to(device)) for s in shapes]
    grads = [torch.randn(s, generator=gen).to(device) for s in shapes]
    ref_params = [nn.Parameter(p.detach().clone()) for p in params]
    for p, q, g in zip(params, ref_params, grads, strict=True):
        p.grad, q.grad = g.clone(), g.clone()
    names = [f"h{i}" for i in range(len(params))]
    ours = Muon([{"params": params, "param_names": names}], lr=0.02, ns_dtype=ns_dtype, **kwargs)
    theirs = torch.optim.Muon(ref_params, lr=0.02, weight_decay=0.0)
    return timed(ours.step, repeats, device), timed(theirs.step, repeats, device)


def flops(shapes: list[tuple[int, int]], kwargs: dict[str, Any]) -> int:
    """FLOPs of our orthogonalization over the stack (the cheaper of standard and Gram per shape under ``auto``)."""
    steps = len(_resolve_coefficients(kwargs["ns_coefficients"], kwargs["ns_steps"]))
    total = 0
    for rows, cols in shapes:
        standard = newton_schulz_flops(rows, cols, steps)
        gram = gram_newton_schulz_flops(rows, cols, steps)
        total += {"standard": standard, "gram": gram, "auto": min(standard, gram)}[kwargs["ns_method"]]
    return total


def relative_eps(stack: torch.Tensor, reg_eps: float) -> torch.Tensor:
    return reg_eps * stack.double().norm(dim=(-2, -1)) / min(stack.shape[-2:]) ** 0.5


def regularized_times(shapes: list[tuple[int, int]], device: torch.device, repeats: int) -> tuple[float, float]:
    """Seconds per pass over the stacks of these shapes: (float32 Gram iteration, float64 eigh), reg_eps 0.1."""
    groups: dict[tuple[int, int], int] = {}
    for s in shapes:
        groups[s] = groups.get(s, 0) + 1
    stacks = [torch.randn(n, *s, device=device) for s, n in groups.items()]
    eps = [relative_eps(x, 0.1) for x in stacks]
    iterative = timed(lambda: [regularized_polar(x, e, dtype=torch.float32) for x, e in zip(stacks, eps)], repeats,
                      device)  # fmt: skip
    eigh = timed(lambda: [regularized_polar(x, e, method="eigh") for x, e in zip(stacks, eps)], repeats, device)
    return iterative, eigh


def regularized_error(grads: list[torch.Tensor], reg_eps: float) -> float:
    """Worst relative Frobenius error of the float32 Gram iteration against eigh on the real gradients."""
    errors = []
    for g in grads:
        eps = relative_eps(g, reg_eps)
        exact = regularized_polar(g.double(), eps, method="eigh")
        errors.append(((regularized_polar(g, eps, dtype=torch.float32).double() - exact).norm() / exact.norm()).item())
    return max(errors)


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
    grads = real_gradients(args.width)
    torch_err = accuracy(None, grads, "bfloat16")
    print(
        f"torch.optim.Muon (jordan x5, bfloat16): sv err {torch_err[0]:.3f}, polar {torch_err[1]:.3f} "
        f"(real gradients, d={args.width})"
    )
    stacks = {f"gpt {args.layers}x{args.width}": gpt_matrices(args.layers, args.width), "moe quick": moe_matrices()}
    dtypes = ["bfloat16"] if device.type == "cuda" else ["bfloat16", "float32"]
    header = ("stack", "ours", "dtype", "ours ms", "torch ms", "torch/ours", "sv err", "polar", "GFLOP/s", "% matmul")
    widths = (-14, -18, -10, 9, 9, 11, 8, 7, 9, 9)
    print("".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for ns_dtype in dtypes:
        dtype = getattr(torch, ns_dtype)
        peak = matmul_gflops(device, dtype, args.repeats)
        for label, kwargs in VARIANTS.items():
            err = accuracy(kwargs, grads, ns_dtype)
            for stack, shapes in stacks.items():
                if stack.startswith("gpt") and ns_dtype == "float32" and device.type == "cpu":
                    continue  # fp32 at GPT size takes minutes on CPU and is 2.4x slower than bf16 there
                ours, theirs = step_times(shapes, device, kwargs, ns_dtype, args.repeats)
                rate = flops(shapes, kwargs) / ours / 1e9
                print(
                    f"{stack:<14}{label:<18}{ns_dtype:<10}{ours * 1e3:>9.1f}{theirs * 1e3:>9.1f}{theirs / ours:>11.2f}"
                    f"{err[0]:>8.3f}{err[1]:>7.3f}{rate:>9.0f}{100 * rate / peak:>9.0f}",
                    flush=True,
                )
    errors = {r: regularized_error(grads, r) for r in (0.1, 0.01)}
    print(
        f"\nregularized map: float32 Gram iteration vs float64 eigh (error on real gradients: reg_eps 0.1 "
        f"{errors[0.1]:.1e}, reg_eps 0.01 {errors[0.01]:.1e})"
    )
    print(f"{'stack':<14}{'iterative ms':>13}{'eigh ms':>10}{'eigh/iterative':>16}")
    for stack, shapes in stacks.items():
        iterative, eigh = regularized_times(shapes, device, args.repeats)
        print(f"{stack:<14}{iterative * 1e3:>13.1f}{eigh * 1e3:>10.1f}{eigh / iterative:>16.2f}", flush=True)


if __name__ == "__main__":
    main()
