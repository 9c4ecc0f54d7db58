"""The ``framework experiment run|report`` and ``framework tune`` commands (argument parsing only)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from framework.experiments.executors import EXECUTORS


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=VALUE (e.g. slurm_partition=gpu)")
    return key, yaml.safe_load(value)


def experiment(argv: list[str]) -> int:
    """``framework experiment run FILE [...]`` or ``framework experiment report DIR [--page PAGE]``."""
    parser = argparse.ArgumentParser(prog="framework experiment", description="Run or report an experiment file.")
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="tune (if declared), then fit and test every (variant, seed)")
    run.add_argument("file", type=Path, help="configs/<plugin>/experiments/<name>.yaml")
    run.add_argument("--smoke", action="store_true", help="the file's smoke size: the whole experiment in < 1 min")
    run.add_argument("--out", type=Path, default=None, help="output dir (default runs/experiments/<plugin>/<name>)")
    run.add_argument("--jobs", type=int, default=1, help="runs at a time with the local executor (default 1)")
    run.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: a process per run on this machine; slurm: one SLURM job per run through submitit; "
        "submitit-local: submitit's local executor (the SLURM code path on this machine)",
    )
    run.add_argument(
        "--slurm",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="submitit parameter, e.g. slurm_partition=gpu, gpus_per_node=4, timeout_min=240",
    )
    run.add_argument("--no-report", action="store_true", help="do not write report.md at the end")
    report = sub.add_parser("report", help="report.md, summary.json and figures from DIR/results.jsonl")
    report.add_argument("dir", type=Path)
    report.add_argument("--page", type=Path, default=None, help="also write the report into this markdown page")
    args = parser.parse_args(argv)

    from framework.experiments.report import write_report  # matplotlib only where it is used
    from framework.experiments.runner import run_experiment

    if args.action == "report":
        print(f"wrote {write_report(args.dir, args.page)}")
        return 0
    out, failed = run_experiment(args.file, args.out, args.smoke, args.jobs, args.executor, dict(args.slurm))
    if not args.no_report:
        print(f"wrote {write_report(out)}")
    if failed:
        print(f"framework: {failed} run(s) failed; their errors are in {out / 'results.jsonl'} (re-run to retry them)")
    return 1 if failed else 0


def tune(argv: list[str]) -> int:
    """``framework tune CONFIG --space SPACE.yaml --trials N --metric val/<m> [overrides]``."""
    parser = argparse.ArgumentParser(
        prog="framework tune",
        description="Optuna search over a config on validation data; other arguments are passed to every fit.",
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--space", type=Path, required=True, help="YAML: dotted key -> {low, high[, log]} | {choices}")
    parser.add_argument("--trials", type=int, required=True, help="finished trials the study should have")
    parser.add_argument("--metric", required=True, help="a validation metric, e.g. val/loss")
    parser.add_argument("--direction", choices=("minimize", "maximize"), default="minimize")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite:///OUT/study.db)")
    parser.add_argument("--study-name", default=None, help="default: <config dir>-<config name>")
    parser.add_argument("--out", type=Path, default=None, help="default runs/tune/<config dir>/<config name>")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    args, overrides = parser.parse_known_args(argv)

    from framework.experiments.tune import load_space, run_study

    name = f"{args.config.parent.name}/{args.config.stem}"
    result = run_study(
        args=["--config", str(args.config), *overrides],
        space=load_space(args.space),
        metric=args.metric,
        trials=args.trials,
        workdir=args.out or Path("runs") / "tune" / name,
        direction=args.direction,
        storage=args.storage,
        study_name=args.study_name or name.replace("/", "-"),
        seed=args.seed,
    )
    print(
        f"best {args.metric} = {result['value']:.6g} with {result['params']} "
        f"({result['complete']} of {result['trials']} trials complete)\n"
        f"wrote {result['best']}: framework fit --config {args.config} --config {result['best']}"
    )
    return 0
