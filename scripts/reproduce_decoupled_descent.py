"""Reproduce the decoupled-descent experiments: DD (and damped DD) vs GD on the Gaussian mixture, high-dimensional
XOR, noisy digits and random-feature probing of digits, several seeds, through the real CLI and configs.

    python scripts/reproduce_decoupled_descent.py [--seeds 0 1 2] [--threads 1] [--out docs/results]

Fits ``configs/decoupled_descent/{gmm,xor,digits,probe_digits}.yaml`` with ``--model.init_args.method dd|gd``
(damped DD: SGD momentum = dampening = 0.5) and ``--seed_everything``/``--data.init_args.seed`` per seed, reads
each run's per-step history (raw / corrected train error of W^t, test error of W^t on fresh data, state-evolution
prediction) and writes ``decoupled_descent.md`` with the tables and ``decoupled_descent_<task>.png`` to ``--out``.
On the Gaussian mixture the test error of W^t is also computed exactly, Phi(-m / sqrt(Delta q)), m = v.w/d,
q = ||w||^2/d, and m, q are compared with the state evolution.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from framework.cli import main as framework
from framework.registry import config_dir
from framework_plugins.decoupled_descent.simulators import signal_directions

TASKS = ("gmm", "xor", "digits", "probe_digits")
VARIANTS = {
    "DD": ["--model.init_args.method=dd"],
    "DD damped": [
        "--model.init_args.method=dd",
        "--model.init_args.optimizer.init_args.momentum=0.5",
        "--model.init_args.optimizer.init_args.dampening=0.5",
    ],
    "GD": ["--model.init_args.method=gd"],
}
DAMPED_TASKS = ("gmm", "xor")
COLORS = {"raw train": "C0", "test (fresh)": "C1", "corrected train": "C2", "state evolution": "C3"}
EXTRA = {"gmm": ["--data.init_args.n_val=20000"]}  # test error of every iterate to +-0.003 (2000 in the config)
REFERENCE = {
    "m": 2.377,
    "q": 12.50,
    "test_error": 0.2507,
    "sim_m": 2.346,
    "sim_q": 12.39,
    "sim_test": 0.2529,
    "sim_corrected": 0.2521,
}


def fit(task: str, variant: str, seed: int, workdir: Path) -> dict:
    """Fit one config; return its history and (Gaussian mixture) exact m, q, test error and SE values at the end."""
    run_dir = workdir / f"{task}_{variant.replace(' ', '_')}_{seed}"
    cli = framework(
        [
            "fit",
            "--config",
            str(config_dir("decoupled_descent") / f"{task}.yaml"),
            f"--run_dir={run_dir}",
            f"--seed_everything={seed}",
            f"--data.init_args.seed={seed}",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            *VARIANTS[variant],
            *EXTRA.get(task, []),
        ]
    )
    model, data = cli.model, cli.datamodule
    out = {"history": {k: dict(v) for k, v in model.history.items()}, "steps": cli.trainer.global_step}
    if task == "gmm":
        v = signal_directions(data.dim, 1, data.snr_value, seed)[0]
        w = model.net.first.weight[0].detach().double()
        m, q = (v @ w).item() / len(v), (w @ w).item() / len(v)
        out.update(m=m, q=q, exact_test=0.5 * math.erfc(m / math.sqrt(2 * data.noise_var * q)))
        if model.se is not None:
            t = out["steps"]
            out.update(
                se_m=model.se["m"][t].item(),
                se_q=model.se["q"][t].item(),
                se_test=model.se["test_error"][t].item(),
                se_loss=model.se["test_loss"][t].item(),
            )
    return out


def summary(run: dict, variant: str) -> dict[str, float]:
    """Train-test gaps along the trajectory t = 1..T-1 (DD: corrected; GD: raw) and the test errors."""
    h = run["history"]
    train = h["raw_error"] if variant == "GD" else h["corrected_error"]
    steps = [t for t in sorted(train) if t >= 1 and t in h["test_error"]]
    gaps = [abs(train[t] - h["test_error"][t]) for t in steps]
    last = steps[-1]
    return {
        "final_gap": gaps[-1],
        "max_gap": max(gaps),
        "final_test": h["test_error"][last],
        "best_test": min(h["test_error"][t] for t in steps),
        "raw_gap": h["test_error"][last] - h["raw_error"][last],
    }


def fmt(values: list[float], digits: int = 3) -> str:
    mean = statistics.mean(values)
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def figure(task: str, runs: dict[str, dict], out: Path) -> None:
    variants = [v for v in VARIANTS if v in runs]
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.2), sharey=True)
    for ax, variant in zip(axes, variants, strict=True):
        h = runs[variant]["history"]
        curves = {"raw train": h["raw_error"], "test (fresh)": h["test_error"]}
        if variant != "GD":
            curves["corrected train"] = h["corrected_error"]
        if h["se_error"]:
            curves["state evolution"] = h["se_error"]
        for label, curve in curves.items():
            steps = sorted(curve)
            ax.plot(
                steps,
                [curve[s] for s in steps],
                label=label,
                color=COLORS[label],
                ls="--" if label == "state evolution" else "-",
            )
        ax.set(title=f"{task}: {variant} (seed 0)", xlabel="step t")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("0-1 error")
    fig.savefig(out / f"decoupled_descent_{task}.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    results: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            variants = [v for v in VARIANTS if v != "DD damped" or task in DAMPED_TASKS]
            results[task] = {v: [fit(task, v, seed, Path(tmp)) for seed in args.seeds] for v in variants}
            figure(task, {v: runs[0] for v, runs in results[task].items()}, args.out)
    elapsed = time.time() - start
    lines = [
        "# Decoupled descent: measured results",
        "",
        "Produced by `python scripts/reproduce_decoupled_descent.py "
        f"--seeds {' '.join(map(str, args.seeds))}` ({elapsed / 60:.1f} min, {args.threads} thread(s), shared "
        "2-core CPU). DD is **this project's Onsager-corrected GD (reconstruction)**, not the paper's unpublished "
        "update; the paper's numbers are not public, so there is no paper column.",
        "",
        "## Train-test gap along the trajectory and test error (mean ± sd over seeds)",
        "",
        "Gap = |train error − test error| of the same iterate W^t (DD: corrected train error from P = A − ΔM; GD: the "
        "usual train error from A); test error on fresh data (val split; 20000 draws for gmm). `max gap` is over "
        "t = 1..T−1. "
        "`raw gap` = test − raw train error (the bias DD removes).",
        "",
        "| task | method | gap at T−1 | max gap over t | raw gap at T−1 | final test error | best test error over t |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, variants in results.items():
        for variant, runs in variants.items():
            s = [summary(r, variant) for r in runs]
            lines.append(
                f"| {task} | {variant} | {fmt([x['final_gap'] for x in s])} | {fmt([x['max_gap'] for x in s])} | "
                f"{fmt([x['raw_gap'] for x in s])} | {fmt([x['final_test'] for x in s])} | "
                f"{fmt([x['best_test'] for x in s])} |"
            )
    if "gmm" in results:
        lines += [
            "",
            "## State evolution vs simulation (Gaussian mixture, n = 8000, d = 4000, t = 40, mean ± sd over seeds)",
            "",
            "Simulated test error is exact for each iterate: Φ(−m/√(Δq)). SE with 4·10⁵ particles, one SE seed; "
            "its own Monte-Carlo spread at t = 40 is ≈ 0.6% in m and 1.4% in q (measured over 4 SE seeds).",
            "",
            "| method | quantity | SE prediction | simulation (this code) | reference note: SE / simulation |",
            "|---|---|---|---|---|",
        ]
        for variant in ("DD", "DD damped"):
            runs = [r for r in results["gmm"].get(variant, []) if "se_m" in r]
            if not runs:
                continue
            ref = variant == "DD"
            rows = [
                ("m", "se_m", "m", f"{REFERENCE['m']} / {REFERENCE['sim_m']}"),
                ("q", "se_q", "q", f"{REFERENCE['q']} / {REFERENCE['sim_q']}"),
                ("test error", "se_test", "exact_test", f"{REFERENCE['test_error']} / {REFERENCE['sim_test']}"),
            ]
            for name, se_key, sim_key, reference in rows:
                lines.append(
                    f"| {variant} | {name} | {fmt([r[se_key] for r in runs])} | "
                    f"{fmt([r[sim_key] for r in runs])} | {reference if ref else '—'} |"
                )
            corrected = [r["history"]["corrected_error"][r["steps"] - 1] for r in runs]
            lines.append(
                f"| {variant} | corrected train error (t = 39) | — | {fmt(corrected)} | "
                f"{'— / ' + str(REFERENCE['sim_corrected']) if ref else '—'} |"
            )
    lines += [
        "",
        "Figures (seed 0): " + ", ".join(f"`decoupled_descent_{t}.png`" for t in results) + "; per-seed "
        "summaries: `decoupled_descent.json`.",
        "",
    ]
    per_seed = {
        task: {v: [summary(r, v) for r in runs] for v, runs in variants.items()} for task, variants in results.items()
    }
    (args.out / "decoupled_descent.json").write_text(json.dumps({"seeds": args.seeds, "summary": per_seed}, indent=1))
    (args.out / "decoupled_descent.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
