"""One decoupled-descent (DD) iteration vs one plain gradient-descent (GD) iteration, logistic regression on the
Gaussian mixture, n = 8000, d = 4000 (target: DD / GD <= 1.2).

    python scripts/bench_decoupled_descent.py [--n 8000] [--d 4000] [--width 1] [--repeats 30] [--threads 1]
        [--dtype float32]

Both run :func:`framework.optim.decoupled_step.full_batch_step` (the LightningModule's step) in this
process with ``torch.optim.SGD``: GD is forward X W / sqrt(d), logistic loss, backward, SGD step; DD adds the
Onsager memory (gather of M, the per-sample Hessian by autograd, the K x K matrix C, the memory update).
Iterations alternate DD / GD so both see the same machine load; the time is the median over ``repeats`` after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from framework.optim.decoupled_descent import OnsagerMemory
from framework.optim.decoupled_step import full_batch_step
from framework.optim.readout import ReadoutNetwork
from framework_plugins.decoupled_descent.simulators import gaussian_mixture, signal_directions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--d", type=int, default=4000)
    parser.add_argument("--width", type=int, default=1, help="K units (K > 1 uses log cosh, readout +-1)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    x, y = gaussian_mixture(args.n, signal_directions(args.d, 1, 1.0, 0)[0], 1.0, 1, dtype)
    index = torch.arange(args.n)
    activation, readout = ("linear", None) if args.width == 1 else ("logcosh", [(-1.0) ** k for k in range(args.width)])
    runs = {}
    for method in ("dd", "gd"):
        net = ReadoutNetwork(args.d, args.width, activation, readout, init_scale=0.1).to(dtype)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, weight_decay=0.05)
        memory = OnsagerMemory(args.width, 1.0) if method == "dd" else None
        if memory is not None:
            memory.allocate(args.n)
        runs[method] = (net, opt, memory)
    times: dict[str, list[float]] = {"dd": [], "gd": []}
    for i in range(args.repeats + 2):
        for method, (net, opt, memory) in runs.items():
            start = time.perf_counter()
            full_batch_step(net, opt, x, y, index, memory)
            if i >= 2:  # warm-up
                times[method].append(time.perf_counter() - start)
    dd, gd = statistics.median(times["dd"]), statistics.median(times["gd"])
    print(
        f"one full-batch iteration, n={args.n}, d={args.d}, K={args.width}, {args.dtype}, torch {torch.__version__}, "
        f"{args.threads} thread(s), median of {args.repeats}"
    )
    print(f"{'method':<8}{'ms/iter':>10}")
    print(f"{'GD':<8}{1e3 * gd:>10.2f}")
    print(f"{'DD':<8}{1e3 * dd:>10.2f}")
    print(f"DD / GD = {dd / gd:.3f} (target <= 1.2)")


if __name__ == "__main__":
    main()
