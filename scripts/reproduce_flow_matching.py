"""Reproduce the flow-matching results: exact Euler W2 vs N for several d, and trained models vs closed forms.

    python scripts/reproduce_flow_matching.py [--seeds 0 1 2] [--out docs/results]

Writes ``flow_matching.md`` (tables) and ``flow_matching_w2_vs_n.png`` (figure) to ``--out``.
Part 1 uses only closed forms (no training); part 2 trains the ``quick`` (2-D GMM) and
``anisotropic_gaussian_d16`` configs with the real CLI, once per seed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from framework.cli import main as framework
from framework.registry import config_dir
from framework_plugins.flow_matching.analytic import euler_w2_gaussian, euler_w2_mixture_1d
from framework_plugins.flow_matching.targets import analytic_target

STEPS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
MIXTURE = {"weights": [0.3, 0.7], "means": [-2.0, 1.5], "stds": [0.5, 0.8]}
TRAINED = ("quick", "anisotropic_gaussian_d16")


def slope(ns: list[int], errors: list[float]) -> float:
    """Least-squares slope of log(error) against log(N)."""
    return float(np.polyfit(np.log(ns), np.log(errors), 1)[0])


def exact_tables() -> tuple[list[str], dict[str, list[float]]]:
    """Rows of the closed-form table and the curves for the figure."""
    aniso = analytic_target("anisotropic_gaussian", dim=16, seed=0).eigvals[0].numpy()
    mix_1d = [euler_w2_mixture_1d(n_steps=n, **MIXTURE) for n in STEPS]
    curves: dict[str, list[float]] = {}
    for d in (1, 16, 256):
        curves[f"N(0, I), d={d}"] = [euler_w2_gaussian(np.ones(d), n) for n in STEPS]
    curves["anisotropic Gaussian, d=16"] = [euler_w2_gaussian(aniso, n) for n in STEPS]
    for d in (1, 16, 256):
        curves[f"product mixture, d={d}"] = [np.sqrt(d) * w for w in mix_1d]
    rows = []
    for name, w2 in curves.items():
        d = int(name.rsplit("d=", 1)[1])
        tail = [(n, e) for n, e in zip(STEPS, w2, strict=True) if n >= 16]
        cells = " | ".join(f"{n * e / np.sqrt(d):.3f}" for n, e in zip(STEPS, w2, strict=True))
        rows.append(f"| {name} | {cells} | {slope(*zip(*tail, strict=True)):.3f} |")
    return rows, curves


def train_and_test(config: str, seed: int, workdir: Path) -> dict[str, float]:
    """Fit then test one config with one seed through the CLI; return the test metrics."""
    path = config_dir("flow_matching") / f"{config}.yaml"
    run_dir = workdir / f"{config}_seed{seed}"
    common = [
        "--config",
        str(path),
        f"--run_dir={run_dir}",
        f"--seed_everything={seed}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    framework(["fit", *common])
    cli = framework(["test", *common, "--ckpt_path=last"])
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}


def trained_rows(seeds: list[int], workdir: Path) -> list[str]:
    """One table row per config: median (min-max) over seeds of the headline metrics."""
    rows = []
    for config in TRAINED:
        runs = [train_and_test(config, seed, workdir) for seed in seeds]

        def cell(key: str, runs: list[dict[str, float]] = runs) -> str:
            values = [r[key] for r in runs if key in r]
            return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})" if values else "-"

        ns = [8, 16, 32, 64]
        slopes = [slope(ns, [r[f"test/euler_error_N{n}"] for n in ns]) for r in runs]
        rows.append(
            f"| {config} | {cell('test/w2')} | {cell('test/w2_gaussian_baseline')} | {cell('test/energy')} | "
            f"{cell('test/energy_gaussian_baseline')} | {cell('test/velocity_rel_mse')} | "
            f"{cell('test/euler_error_N8')} | {cell('test/euler_error_N64')} | {statistics.median(slopes):.3f} |"
        )
    return rows


def figure(curves: dict[str, list[float]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, w2 in curves.items():
        d = int(name.rsplit("d=", 1)[1])
        ax.loglog(STEPS, np.array(w2) / np.sqrt(d), "o-", ms=3, label=name)
    ax.loglog(STEPS, [1.3 / n for n in STEPS], "k--", lw=0.8, label="1.3 / N")
    ax.set(xlabel="Euler steps N", ylabel="W2 / sqrt(d)", title="Exact Euler W2 of the true velocity field")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    args.out.mkdir(parents=True, exist_ok=True)
    exact, curves = exact_tables()
    figure(curves, args.out / "flow_matching_w2_vs_n.png")
    with tempfile.TemporaryDirectory() as workdir:
        trained = trained_rows(args.seeds, Path(workdir))
    header = " | ".join(f"N={n}" for n in STEPS)
    text = (
        f"""# Flow matching: results

Produced by `python scripts/reproduce_flow_matching.py --seeds {" ".join(map(str, args.seeds))}`
(2-core CPU, torch 2.13.0). Figure: `flow_matching_w2_vs_n.png`.

## 1. Exact Euler error of the true velocity field (closed forms, no training)

N * W2(Euler_N law, target) / sqrt(d), and the log-log slope of W2 in N over N in [16, 256].
Gaussian rows use the eigenvalue product formula; mixture rows use Gauss-Legendre quadrature of the 1-D quantile
coupling (pi = (0.3, 0.7), m = (-2, 1.5), s = (0.5, 0.8)) and the product structure W2 = sqrt(d) W2_1D.

| target | {header} | slope |
|---|{"---|" * len(STEPS)}---|
"""
        + "\n".join(exact)
        + f"""

The paper's rate W2 <= C sqrt(d) / N holds with slope -1 and a d-free constant: N W2 / sqrt(d) settles at
1.279 for N(0, I) and 2.30 for the product mixture, identical for d = 1, 16, 256. N = 1 gives W2 = sqrt(tr Sigma)
(Euler's first step lands on the mean).

## 2. Trained models (median over seeds {args.seeds}, min-max in brackets)

`w2`/`energy`: exact-assignment W2 and energy distance between 1000 samples (64 Euler steps) and 1000 held-out
points; `baseline`: a Gaussian with the held-out mean and covariance. `vel. rel. MSE`: E||v_theta - u||^2 / E||u||^2
against the closed-form field. `Euler err N`: RMS distance between N-step Euler and 256-step Heun trajectories of the
*learned* field from the same noise; `slope`: its log-log slope over N in [8, 64].

| config | w2 | w2 baseline | energy | energy baseline | vel. rel. MSE | Euler err N=8 | Euler err N=64 | slope |
|---|---|---|---|---|---|---|---|---|
"""
        + "\n".join(trained)
        + """

On the 2-D mixture the learned model beats the moment-matched Gaussian by every distance. On the 16-d Gaussian the
moment-matched Gaussian *is* the target family, so it is the floor, and the finite-sample W2 between two 1000-point
clouds in 16-d (about 2.7) hides the model error; the velocity error is the informative number there. The learned
fields show the same first-order Euler rate as the exact ones (slope close to -1).
"""
    )
    (args.out / "flow_matching.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
