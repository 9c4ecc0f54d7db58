"""Reproduce the residual gap-aware transformer comparison: LME, gap-aware transformer, GRU-D and STraTS over five
participant-level split seeds.

    python scripts/reproduce_gap_transformer.py [--seeds 0 1 2 3 4] [--max-epochs N] [--csv ADNIMERGE.csv]
                                                [--out docs/results]

Trains ``configs/gap_transformer/{lme,gap_transformer,grud,strats}.yaml`` through the real CLI with
``--data.init_args.split_seed=<seed>`` (and ``--seed_everything=<seed>``), tests the last checkpoint and writes
``gap_transformer.md`` (mean +- SD over seeds of test MSE, MAE, Pearson r, and the relative changes vs the LME of
the same seed) and ``gap_transformer_predicted_vs_observed.png`` (seed 0) to ``--out``. With ``--csv`` the cohort
is the given ADNIMERGE/TADPOLE file instead of the simulator (``source: csv``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from framework.cli import main as framework
from framework.registry import config_dir

# run name -> (config, extra CLI arguments, table label)
RUNS = {
    "lme": ("lme", [], "LME (BIC-selected, population prediction) = the reference"),
    "lme_blup": ("lme", ["--data.init_args.lme_prediction=blup"], "LME, causal BLUP prediction"),
    "gap_transformer": ("gap_transformer", [], "Residual gap-aware transformer"),
    "grud": ("grud", [], "GRU-D"),
    "strats": ("strats", [], "STraTS (2 epochs forecasting pretraining)"),
}
BEATEN = ("< 13.1% (value not given)", "< 26.4% (value not given)")
PAPER = {
    "lme": ("0 (reference)", "0 (reference)"),
    "gap_transformer": ("13.1%", "26.4%"),
    "grud": BEATEN,
    "strats": BEATEN,
}


def train_and_test(run: str, seed: int, workdir: Path, extra: list[str]) -> tuple[dict[str, float], object, Path]:
    config, own, _ = RUNS[run]
    run_dir = workdir / f"{run}_{seed}"
    common = [
        "--config",
        str(config_dir("gap_transformer") / f"{config}.yaml"),
        f"--run_dir={run_dir}",
        f"--seed_everything={seed}",
        f"--data.init_args.split_seed={seed}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        *own,
        *extra,
    ]
    framework(["fit", *common])
    cli = framework(["test", *common, "--ckpt_path=last"])
    metrics = {k.removeprefix("test/"): float(v) for k, v in cli.trainer.callback_metrics.items()}
    return metrics, cli, run_dir


def fmt(values: list[float], percent: bool = False) -> str:
    scale = 100.0 if percent else 1.0
    mean = statistics.fmean(values) * scale
    sd = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.1f}% +- {sd:.1f}%" if percent else f"{mean:.3f} +- {sd:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-epochs", type=int, default=None, help="override every config's trainer.max_epochs")
    parser.add_argument("--csv", type=Path, default=None, help="a local ADNIMERGE.csv / TADPOLE_D1_D2.csv")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (small models: 1 is fastest)")
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    extra = [] if args.max_epochs is None else [f"--trainer.max_epochs={args.max_epochs}"]
    if args.csv is not None:
        extra += ["--data.init_args.source=csv", f"--data.init_args.path={args.csv.resolve()}"]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in RUNS}
    notes: list[str] = []
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for model in RUNS:
                metrics, cli, run_dir = train_and_test(model, seed, Path(tmp), extra)
                results[model].append(metrics)
                if model == "lme":
                    cohort = cli.datamodule.cohort
                    report = cohort.anchors.report
                    notes.append(
                        f"| {seed} | {report['participants']} | {report['rows']} | {report['anchors']} | "
                        f"{', '.join(f'{len(v)}' for v in cohort.index.values())} | "
                        f"{' + '.join(cohort.lme.covariates)} |"
                    )
                figure = run_dir / "figures" / "test_predicted_vs_observed.png"
                if seed == args.seeds[0] and model == "gap_transformer" and figure.is_file():
                    shutil.copy(figure, args.out / "gap_transformer_predicted_vs_observed.png")
    minutes = (time.time() - start) / 60
    data = "synthetic cohort (built-in simulator, 858 participants)" if args.csv is None else f"`{args.csv.name}`"
    lines = [
        "# Residual gap-aware transformer: measured results",
        "",
        f"Written by `scripts/reproduce_gap_transformer.py` ({minutes:.1f} min on a shared 2-core CPU, 1 torch "
        f"thread). Data: {data}. Participant-level split seeds {args.seeds} (70/10/20% of participants); "
        "each cell is mean +- SD over seeds; relative changes are computed per seed against that seed's LME.",
        "",
        "| model | test MSE | test MAE | test Pearson r | MSE reduction vs LME | correlation gain vs LME |",
        "|---|---|---|---|---|---|",
    ]
    lme = [{k: r[f"lme_{k}"] for k in ("mse", "mae", "pearson")} for r in results["gap_transformer"]]
    for model, (_, _, name) in RUNS.items():
        runs = results[model]
        reduction = [(b["mse"] - r["mse"]) / b["mse"] for r, b in zip(runs, lme, strict=True)]
        gain = [(r["pearson"] - b["pearson"]) / abs(b["pearson"]) for r, b in zip(runs, lme, strict=True)]
        lines.append(
            f"| {name} | {fmt([r['mse'] for r in runs])} | {fmt([r['mae'] for r in runs])} | "
            f"{fmt([r['pearson'] for r in runs])} | {fmt(reduction, True)} | {fmt(gain, True)} |"
        )
    lines += [
        "",
        "Paper (Tong et al., arXiv 2605.16319, abstract only; real ADNI, 858 participants, 2,600 anchors, 7,276 rows): "
        "the residual gap-aware transformer reduces MSE by 13.1% and raises the prediction-observation correlation "
        "by 26.4% relative to the BIC-selected LME, and beats GRU-D and STraTS (their numbers are not in the "
        "abstract).",
        "",
        "| paper | MSE reduction vs LME | correlation gain vs LME |",
        "|---|---|---|",
        *[f"| {RUNS[m][2]} | {' | '.join(PAPER[m])} |" for m in PAPER],
        "",
        "The reference of every relative change is the population-prediction LME of the same split (the residual "
        "transformer's `y_ref`); correlation gain is (r - r_LME) / |r_LME| (the absolute value keeps the sign "
        "meaningful when r_LME < 0).",
        "",
        "## Cohorts and selected LMEs",
        "",
        "| split seed | participants | rows | anchors | train / val / test anchors | LME fixed effects (BIC) |",
        "|---|---|---|---|---|---|",
        *notes,
        "",
        "![predicted vs observed](gap_transformer_predicted_vs_observed.png)",
        "",
    ]
    (args.out / "gap_transformer.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
