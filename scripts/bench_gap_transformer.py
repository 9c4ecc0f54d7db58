"""Training throughput (anchors/s) and peak memory of the four models on CPU, the number of (B, H, L, L) bias
tensors the gap attention allocates per layer, and GRU-D vs PyPOTS's BackboneGRUD (skipped if not installed).

    python scripts/bench_gap_transformer.py [--participants 400] [--steps 20] [--threads 1]

Each model trains ``--steps`` AdamW steps on batches of 64 anchors of the simulated cohort in a fresh subprocess;
peak memory is the increase of the process's max RSS over the state after building the data.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MODELS = ("LMEReference", "GapAwareTransformer", "GRUD", "STraTS")


def child(name: str, participants: int, steps: int, threads: int) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    import framework_plugins.gap_transformer as gt
    from framework_plugins.gap_transformer.datamodule import CohortBatch, CohortSpec, prepare_cohort

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    train = prepare_cohort(CohortSpec(n_participants=participants, lme_candidates=("APOE4",))).splits["train"]
    model = getattr(gt, name)()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = [CohortBatch(*(t[i : i + 64] for t in train)) for i in range(0, len(train[0]) - 63, 64)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, seen = time.perf_counter(), 0
    for step in range(steps):
        batch = batches[step % len(batches)]
        loss = F.mse_loss(model(batch), batch.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(batch.y)
    elapsed = time.perf_counter() - start
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return {"anchors_per_s": seen / elapsed, "peak_rss_increase_mb": peak}


def bias_tensors_per_layer() -> int:
    """Tensors of shape (B, H, L, L) allocated while one attention layer builds its bias."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from framework_plugins.gap_transformer.attention import attention_bias, time_distances

    b, h, n = 8, 4, 30
    times, valid = -torch.rand(b, n), torch.rand(b, n) > 0.2
    distances = time_distances(times)  # shared by all layers

    class Count(TorchDispatchMode):
        created = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and tuple(out.shape) == (b, h, n, n) and not func._schema.is_mutable:
                Count.created += 1
            return out

    with Count():
        attention_bias(distances, torch.rand(h), valid, torch.float32)
    return Count.created


def pypots_ratio(threads: int) -> str:
    try:
        from pypots.nn.modules.grud import BackboneGRUD  # noqa: F401
    except ImportError:
        return "skipped: pypots is not installed (pip install pypots)"
    import torch

    from framework_plugins.gap_transformer.grud import GRUDNet

    torch.set_num_threads(threads)
    b, v, f, hidden = 64, 10, 13, 64
    x, m, t = torch.randn(b, v, f), (torch.rand(b, v, f) > 0.5).float(), torch.cumsum(torch.rand(b, v), 1)
    ours = GRUDNet(f, 4, hidden)
    peer = BackboneGRUD(v, f, hidden)

    def timed(fn) -> float:
        for _ in range(3):
            fn()
        start = time.perf_counter()
        for _ in range(20):
            fn()
        return (time.perf_counter() - start) / 20

    from framework_plugins.gap_transformer.grud import grud_deltas

    deltas = grud_deltas(t, m)
    t_ours = timed(
        lambda: ours(x, m, t - t[:, -1:], torch.ones(b, v, dtype=torch.bool), torch.zeros(b, 4)).sum().backward()
    )
    t_peer = timed(lambda: peer(x, m, deltas, torch.zeros(f), x)[1].sum().backward())
    return (
        f"ours {t_ours * 1e3:.1f} ms/step, PyPOTS BackboneGRUD {t_peer * 1e3:.1f} ms/step, ratio {t_peer / t_ours:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=400)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.participants, args.steps, args.threads)))
        return
    print(f"| model | anchors/s (train, batch 64, {args.threads} thread) | peak RSS increase (MB) |")
    print("|---|---|---|")
    for name in MODELS:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            name,
            f"--participants={args.participants}",
            f"--steps={args.steps}",
            f"--threads={args.threads}",
        ]
        result = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        print(f"| {name} | {result['anchors_per_s']:.0f} | {result['peak_rss_increase_mb']:.1f} |")
    print(f"\n(B, H, L, L) tensors allocated per attention layer for the gap bias: {bias_tensors_per_layer()}")
    print(f"GRU-D vs PyPOTS: {pypots_ratio(args.threads)}")


if __name__ == "__main__":
    main()
