"""Reproduce TopoFisher's experiments at CPU scale and write docs/results/topofisher.md (+ figures).

For each simulator (GRF N = 32, noisy spiral, toy lognormal lensing; GRF N = 64 with --full) it reports the held-out
ln|F| of fixed summaries compressed by MOPED (fitted on separate training simulations), of the learned TopoFisher
pipeline and of an IMNN (lensing), next to the exact ln|F| where it is known and the paper's numbers, with the
information ratio exp(ln|F| - ln|F_ref|). The simulator-shift experiment trains on lognormal maps and evaluates on
Gaussian maps with the same C_l (and the reverse), a stand-in for the paper's lognormal -> LPT transfer.

    python scripts/reproduce_topofisher.py [--full] [--threads 2] [--epochs N] [--sections grf spiral lensing]

Each learned model trains for its config's ``max_epochs`` unless --epochs is given.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from pathlib import Path

import torch

from framework.cli import main as cli_main
from framework.registry import config_dir
from framework_plugins.topofisher.evaluation import bootstrap_log_det, fixed_summary_fisher
from framework_plugins.topofisher.filtrations import DistanceToMeasure
from framework_plugins.topofisher.fisher import fisher_from_summaries
from framework_plugins.topofisher.fisher import log_det as fisher_log_det
from framework_plugins.topofisher.plots import ellipse
from framework_plugins.topofisher.simulators import GRF, LognormalLensing, NoisySpiral
from framework_plugins.topofisher.summaries import PeakCounts, PowerSpectrum, TopologicalSummary
from framework_plugins.topofisher.vectorizations import PersistenceImage

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "results"
PAPER = {
    "grf64": {"TopoFisher (cubical + PersLay)": 12.63, "fixed persistence image": 11.53, "exact": 13.89},
    "spiral": {"TopoFisher (TDA + MLP)": 18.99, "DTM": 17.18, "implied total": 24.3},
    "lensing": {
        "TopoFisher, lognormal": 21.51,
        "TopoFisher, lognormal -> LPT": 19.24,
        "IMNN, lognormal": 22.35,
        "IMNN, lognormal -> LPT": 8.92,
    },
}


def train(config: str, run_dir: Path, epochs: int | None, *overrides: str):
    """fit + test a config through the framework CLI (``epochs`` overrides its max_epochs); returns (cli, test
    metrics)."""
    args = [
        f"--run_dir={run_dir}",
        "--trainer.enable_progress_bar=false",
        "--trainer.logger=CSVLogger",
        *([f"--trainer.max_epochs={epochs}"] if epochs else []),
        *overrides,
    ]
    cli = cli_main(["fit", "--config", str(config_dir("topofisher") / config), *args])
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    return cli, {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}


@torch.no_grad()
def heldout_on(cli, simulator) -> tuple[float, float, torch.Tensor]:
    """(ln|F|, bootstrap SE, F) of the trained pipeline on ``simulator``'s simulations at the test seeds."""
    model = cli.model.eval()
    sims = simulator.seed_matched(cli.datamodule.split_seeds("test")).to(model.device)
    t = torch.cat([model(sims[i : i + 32]) for i in range(0, len(sims), 32)]).double()
    fisher = fisher_from_summaries(t, simulator.dtheta)[0]
    return fisher_log_det(fisher).item(), bootstrap_log_det(t, simulator.dtheta).item(), fisher


def fixed(summary, simulator, n: int) -> tuple[float, float, torch.Tensor]:
    fisher, se = fixed_summary_fisher(summary, simulator, n_train=n, n_test=n)
    return fisher_log_det(fisher).item(), se.item(), fisher


def row(name: str, value: float, se: float, reference: float | None, paper: str = "") -> str:
    ratio = f"{math.exp(value - reference):.3f}" if reference is not None else "-"
    return f"| {name} | {value:.2f} ± {se:.2f} | {ratio} | {paper} |"


def ellipse_figure(path: Path, title: str, fishers: dict[str, torch.Tensor]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, fisher in fishers.items():
        label = f"{name} ({fisher_log_det(fisher).item():.2f})"
        ax.plot(*ellipse(fisher).T, "k--" if name == "exact" else "-", label=label)
    ax.set_title(title)
    ax.set_xlabel(r"$\delta\theta_1$")
    ax.set_ylabel(r"$\delta\theta_2$")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def grf_section(
    n: int, epochs: int | None, n_fixed: int, work: Path, configs: list[str], paper: dict | None
) -> list[str]:
    sim = GRF(n=n)
    exact = sim.exact_fisher()
    ref = fisher_log_det(exact).item()
    paper = paper or {}
    ps, ps_se, f_ps = fixed(PowerSpectrum(n, 8), sim, n_fixed)
    pi_summary = TopologicalSummary(PersistenceImage(0.2, (8, 8), (-3, 2), (0, 3)), complex="periodic_cubical")
    pi, pi_se, f_pi = fixed(pi_summary, sim, n_fixed)
    rows = [
        row("power spectrum (8 log bins) + MOPED", ps, ps_se, ref),
        row(
            "fixed persistence image (H0+H1, 8x8) + MOPED",
            pi,
            pi_se,
            ref,
            str(paper.get("fixed persistence image", "")),
        ),
    ]
    notes, ellipses = [], {"exact": exact, "power spectrum": f_ps, "fixed PI": f_pi}
    for config in configs:
        start = time.time()
        cli, metrics = train(config, work / config.removesuffix(".yaml"), epochs)
        minutes = (time.time() - start) / 60
        learned, learned_se, ellipses[f"TopoFisher {config}"] = heldout_on(cli, sim)
        filtration = cli.model.summary.filtration
        if hasattr(filtration, "log_scale"):
            name = f"learned smoothing ({filtration.log_scale.exp().item():.2f} px after training)"
        else:
            name = "raw field"
        rows.append(
            row(
                f"TopoFisher `{config}`: {name} + cubical + PersLay + MLP",
                learned,
                learned_se,
                ref,
                str(paper.get("TopoFisher (cubical + PersLay)", "")),
            )
        )
        notes.append(
            f"`{config}`: {cli.trainer.current_epoch} epochs of {cli.datamodule.sizes['train']} training "
            f"seeds, fit + test in {minutes:.1f} min; test/log_det_F_split (MOPED on half the test seeds, F "
            f"on the other half) = {metrics['test/log_det_F_split']:.2f}."
        )
        copy_figures(cli, config.removesuffix(".yaml").replace("grf_n", "grf"))
    name = f"topofisher_grf{n}_ellipses.png"
    ellipse_figure(DOCS / name, f"GRF N = {n}", ellipses)
    return [
        f"### GRF N = {n} (exact ln|F| = {ref:.2f})",
        "",
        "| summary | held-out ln\\|F\\| ± SE | exp(Δ ln\\|F\\|) vs exact | paper (N = 64) |",
        "|---|---|---|---|",
        *rows,
        row("exact", ref, 0.0, ref, str(paper.get("exact", ""))),
        "",
        *notes,
        "",
        f"![GRF N={n} Fisher ellipses]({name})",
        "",
    ]


def copy_figures(cli, tag: str) -> None:
    figures = Path(cli.trainer.default_root_dir) / "figures"
    for png in figures.glob("*.png"):
        shutil.copy(png, DOCS / f"topofisher_{tag}_{png.name}")


def spiral_section(epochs: int | None, n_fixed: int, work: Path) -> list[str]:
    sim = NoisySpiral()
    exact = sim.exact_fisher()
    ref = fisher_log_det(exact).item()
    dtm_pi = TopologicalSummary(
        PersistenceImage(0.3, (8, 8), (0, 4), (0, 4)), complex="cubical", filtration=DistanceToMeasure(32, 11.0, 8)
    )
    pi, pi_se, _ = fixed(dtm_pi, sim, n_fixed)
    cli, metrics = train("spiral.yaml", work / "spiral", epochs)
    learned, learned_se, _ = heldout_on(cli, sim)
    copy_figures(cli, "spiral")
    return [
        f"### Noisy spiral, 240 points, (mu, w) = (0.6, 0.1) (exact ln|F| = {ref:.2f})",
        "",
        "| summary | held-out ln\\|F\\| ± SE | exp(Δ ln\\|F\\|) vs exact | paper |",
        "|---|---|---|---|",
        row("DTM (k = 8, 32x32 grid) + cubical + fixed PI + MOPED", pi, pi_se, ref, f"DTM {PAPER['spiral']['DTM']}"),
        row(
            "TopoFisher: DTM + cubical + PersLay + MLP",
            learned,
            learned_se,
            ref,
            f"TDA-MLP {PAPER['spiral']['TopoFisher (TDA + MLP)']}",
        ),
        row("exact (numerical integration)", ref, 0.0, ref, f"implied {PAPER['spiral']['implied total']}"),
        "",
        f"test/log_det_F_split = {metrics['test/log_det_F_split']:.2f}.",
        "",
    ]


def lensing_section(epochs: int | None, n_fixed: int, work: Path) -> list[str]:
    logn, gauss = LognormalLensing(n=32), LognormalLensing(n=32, kind="gaussian")
    ps, ps_se, _ = fixed(PowerSpectrum(32, 8), logn, n_fixed)
    peaks, peaks_se, _ = fixed(PeakCounts(10, (-0.03, 0.06)), logn, n_fixed)
    ps_g, ps_g_se, _ = fixed(PowerSpectrum(32, 8), gauss, n_fixed)
    tf, _ = train("lensing.yaml", work / "lensing", epochs)
    tf_g, _ = train(
        "lensing.yaml", work / "lensing_gaussian", epochs, "--data.init_args.simulator.init_args.kind=gaussian"
    )
    imnn, _ = train("imnn_lensing.yaml", work / "imnn_lensing", epochs)
    copy_figures(tf, "lensing")
    results = {
        name: (heldout_on(cli, logn), heldout_on(cli, gauss))
        for name, cli in (
            ("TopoFisher (trained on lognormal)", tf),
            ("TopoFisher (trained on Gaussian)", tf_g),
            ("IMNN (trained on lognormal)", imnn),
        )
    }
    lines = [
        "### Toy lognormal lensing maps, 32 x 32 over 5 deg, one bin, shape noise (no exact F)",
        "",
        "Fixed summaries (MOPED fitted on training simulations of the same simulator):",
        "",
        "| summary | lognormal maps ln\\|F\\| ± SE | Gaussian maps ln\\|F\\| ± SE |",
        "|---|---|---|",
        f"| power spectrum (8 bins) + MOPED | {ps:.2f} ± {ps_se:.2f} | {ps_g:.2f} ± {ps_g_se:.2f} |",
        f"| peak counts (10 bins) + MOPED | {peaks:.2f} ± {peaks_se:.2f} | - |",
        "",
        "Learned summaries, evaluated on held-out lognormal and Gaussian maps (same seeds, same C_l):",
        "",
        "| model | on lognormal | on Gaussian | exp(Δ) of the shift |",
        "|---|---|---|---|",
    ]
    for name, ((a, a_se, _), (b, b_se, _)) in results.items():
        shift = math.exp(b - a) if "lognormal" in name else math.exp(a - b)
        lines.append(f"| {name} | {a:.2f} ± {a_se:.2f} | {b:.2f} ± {b_se:.2f} | {shift:.3f} |")
    p = PAPER["lensing"]
    lines += [
        "",
        f"Paper (512² maps, 5 bins, physical C_l; not comparable in absolute value): TopoFisher "
        f"{p['TopoFisher, lognormal']} on lognormal, {p['TopoFisher, lognormal -> LPT']} transferred to LPT; "
        f"IMNN {p['IMNN, lognormal']} -> {p['IMNN, lognormal -> LPT']}.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full",
        action="store_true",
        help="add the paper-size GRF N = 64 run; fixed summaries on 2000 + 2000 seeds (else 400)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="override every config's max_epochs")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "reproduce_topofisher")
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["grf", "spiral", "lensing"],
        help="subset to run (writes docs/results/topofisher_<sections>.md)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("WANDB_MODE", "disabled")
    epochs = args.epochs
    n_fixed = 2000 if args.full else 400
    DOCS.mkdir(parents=True, exist_ok=True)
    start = time.time()
    lines = [
        "# TopoFisher: measured results",
        "",
        f"`python scripts/reproduce_topofisher.py{' --full' if args.full else ''}` "
        f"({f'{epochs} epochs' if epochs else 'each config its own max_epochs'} per learned model, {n_fixed} + "
        f"{n_fixed} simulations per fixed summary; 2-core CPU). All ln|F| are "
        "held-out standard estimates (Hartlap-corrected) from simulations the summary was not fitted on; ± is "
        "a bootstrap SE over seeds. exp(Δ ln|F|) is the information ratio (the paper's '%' is a ratio of "
        "log-determinants, which depends on units).",
        "",
    ]
    if "grf" in args.sections:
        lines += grf_section(32, epochs, n_fixed, args.work, ["grf_n32.yaml", "grf_n32_smoothing.yaml"], None)
        if args.full:
            lines += grf_section(64, epochs, n_fixed, args.work, ["grf_n64.yaml"], PAPER["grf64"])
    if "spiral" in args.sections:
        lines += spiral_section(epochs, n_fixed, args.work)
    if "lensing" in args.sections:
        lines += lensing_section(epochs, n_fixed, args.work)
    figures = sorted(p.name for p in DOCS.glob("topofisher_*.png") if p.stat().st_mtime >= start)
    lines += [
        "### Figures of the trained models (first test simulation; filtration = input vs filtered)",
        "",
        *[f"![{name}]({name})" for name in figures if not name.endswith("_ellipses.png")],
        "",
        f"Total wall time: {(time.time() - start) / 60:.1f} min.",
        "",
    ]
    subset = sorted(args.sections) != ["grf", "lensing", "spiral"]
    (DOCS / (f"topofisher_{'_'.join(args.sections)}.md" if subset else "topofisher.md")).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
