"""``framework experiment run``: tune (optionally), then fit and test every (variant, seed) of an experiment.

Output directory (default ``runs/experiments/<plugin>/<name>/``, ``<name>-smoke`` with ``--smoke``)::

    experiment.json        the parsed experiment (what ``report`` reads besides the results)
    results.jsonl          one line per finished run, appended as each ends (ok or failed, with its error)
    tune/<variant>/        Optuna study (study.db), best.yaml, the tuning result
    runs/<variant>/seed_<s>/   task.json, log.txt, result.json and run/ (the run directory of fit and test)

Re-running skips every run whose (variant, seed, config digest) already finished ok, and picks up results that
a killed runner never appended, so a crash or SIGKILL loses nothing finished; failed runs are retried.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.experiments.executors import make_executor
from framework.experiments.spec import (
    Experiment,
    ExperimentError,
    RunSpec,
    args_digest,
    load_experiment,
    override_arg,
    run_args,
)
from framework.experiments.worker import RESULT_FILE, write_json_atomically

RESULTS_FILE = "results.jsonl"
EXPERIMENT_FILE = "experiment.json"
DIGEST_FILE = "digest.txt"  # the arguments a tuning study was started for


def default_out(exp: Experiment) -> Path:
    return Path("runs") / "experiments" / exp.plugin / (f"{exp.name}-smoke" if exp.smoke else exp.name)


def read_results(out: Path) -> list[dict[str, Any]]:
    """Every record of ``out/results.jsonl`` in the order written (a torn last line from a kill is skipped)."""
    path = out / RESULTS_FILE
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def append_result(out: Path, record: dict[str, Any]) -> None:
    """Append one record as a line and flush it to disk before returning."""
    with (out / RESULTS_FILE).open("a") as fh:
        fh.write(json.dumps(record, allow_nan=True) + "\n")
        fh.flush()


def experiment_record(exp: Experiment) -> dict[str, Any]:
    """What the report needs to know about the experiment, saved next to the results."""
    return {
        "name": exp.name,
        "plugin": exp.plugin,
        "file": exp.file,
        "title": exp.title,
        "description": exp.description,
        "variants": [v.name for v in exp.variants],
        "reference": exp.reference,
        "metrics": exp.metrics,
        "curves": list(exp.curves),
        "paper": exp.paper,
        "seeds": list(exp.seeds),
        "seed_keys": list(exp.seed_keys),
        "seed_controls": exp.seed_controls,
        "tune": None if exp.tune is None else {**exp.tune.__dict__, "space": None},
        "spaces": {v.name: exp.space_for(v) for v in exp.variants} if exp.tune else {},
        "analysis": exp.analysis,
        "smoke": exp.smoke,
        "early_stopping": None if exp.early_stopping is None else dict(exp.early_stopping.__dict__),
    }


@dataclass
class Progress:
    total: int
    metrics: tuple[str, ...] = ()
    done: int = 0

    def line(self, task: dict[str, Any], result: dict[str, Any]) -> str:
        self.done += 1
        rec = task["record"]
        what = f"tune {rec['variant']}" if task["kind"] == "tune" else f"{rec['variant']} seed {rec['seed']}"
        detail = result.get("error") if result.get("status") != "ok" else ""
        if task["kind"] == "run" and result.get("status") == "ok":
            shown = [k for k in self.metrics if k in result["metrics"]]
            detail = "  ".join(f"{k}={result['metrics'][k]:.4g}" for k in shown)
        return f"[{self.done}/{self.total}] {what}: {result.get('status')} {detail}".rstrip()


def _reuse(path: Path, digest: str) -> dict[str, Any] | None:
    """A finished ok result at ``path`` for this digest, else None."""
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return result if result.get("status") == "ok" and result.get("digest") == digest else None


def _tune(exp: Experiment, out: Path, executor: Any) -> dict[str, Path]:
    """One study per variant (same trial budget and space size); returns variant -> best.yaml. Raises if any fails."""
    assert exp.tune is not None
    tasks, best = [], {}
    for variant in exp.variants:
        args = run_args(exp, variant, exp.tune.seed) + [override_arg(k, v) for k, v in exp.tune.overrides.items()]
        space = exp.space_for(variant)
        search = [space, exp.tune.metric, exp.tune.direction, exp.trials_for(variant)]
        digest = args_digest([*args, json.dumps(search + ([exp.tune.sampler] if exp.tune.sampler != "tpe" else []))])
        workdir = out / "tune" / variant.name
        done = _reuse(workdir / RESULT_FILE, digest)
        if done is not None:
            best[variant.name] = Path(done["best"])
            continue
        stamp = workdir / DIGEST_FILE
        if workdir.exists() and (not stamp.is_file() or stamp.read_text() != digest):
            shutil.rmtree(workdir)  # the study was for other arguments; its trials must not count
        workdir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
        tasks.append(
            {
                "kind": "tune",
                "args": args,
                "space": space,
                "metric": exp.tune.metric,
                "direction": exp.tune.direction,
                "trials": exp.trials_for(variant),
                "workdir": str(workdir),
                "study_name": f"{exp.name}-{variant.name}",
                "seed": exp.tune.seed,
                "objective": "last" if exp.early_stopping is None else "best",
                "sampler": exp.tune.sampler,
                "digest": digest,
                "result": str(workdir / RESULT_FILE),
                "log": str(workdir / "log.txt"),
                "record": {"variant": variant.name},
            }
        )
    failures = []
    progress = Progress(len(tasks))

    def on_result(task: dict[str, Any], result: dict[str, Any]) -> None:
        print(progress.line(task, result), flush=True)
        if result.get("status") == "ok":
            best[task["record"]["variant"]] = Path(result["best"])
        else:
            failures.append(f"{task['record']['variant']}: {result.get('error')}")

    if tasks:
        executor.run(tasks, on_result)
    if failures:
        raise ExperimentError(f"tuning failed for {len(failures)} variant(s): {'; '.join(failures)}")
    return best


def plan_runs(exp: Experiment, out: Path, best: dict[str, Path]) -> list[RunSpec]:
    """Every (variant, seed) of the experiment, seed by seed (an interrupted experiment leaves whole seeds, so the
    paired comparison of what finished is complete), variants in file order."""
    specs = []
    for seed in exp.seeds:
        for variant in exp.variants:
            args = run_args(exp, variant, seed, best.get(variant.name))
            specs.append(
                RunSpec(
                    experiment=exp.name,
                    variant=variant.name,
                    seed=seed,
                    args=tuple(args),
                    run_dir=out / "runs" / variant.name / f"seed_{seed}" / "run",
                    digest=args_digest(args),
                    curves=exp.curves,
                    test_checkpoint="last" if exp.early_stopping is None else "best",
                )
            )
    return specs


def run_experiment(
    path: str | Path,
    out: Path | None = None,
    smoke: bool = False,
    jobs: int = 1,
    executor: str = "local",
    slurm: dict[str, Any] | None = None,
) -> tuple[Path, int]:
    """Run an experiment file; return its output directory and the number of failed runs."""
    exp = load_experiment(path, smoke=smoke)
    missing = exp.missing_modules()
    if missing:
        raise ExperimentError(
            f"{exp.path}: requires={list(exp.requires)}: {', '.join(missing)} cannot be imported here; install it "
            f"(pip install {' '.join(missing)}, or the extra the plugin's README names) and run again"
        )
    out = (out or default_out(exp)).absolute()
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out / EXPERIMENT_FILE, experiment_record(exp))
    pool = make_executor(executor, jobs, out / "submitit", {**exp.slurm, **(slurm or {})})
    best = _tune(exp, out, pool) if exp.tune is not None else {}

    finished = {(r["variant"], r["seed"], r["digest"]) for r in read_results(out) if r.get("status") == "ok"}
    specs = plan_runs(exp, out, best)
    planned = {f"{spec.variant}/{spec.seed}": spec.digest for spec in specs}
    write_json_atomically(out / EXPERIMENT_FILE, {**experiment_record(exp), "planned": planned})
    tasks = []
    for spec in specs:
        if (spec.variant, spec.seed, spec.digest) in finished:
            continue
        slot = spec.run_dir.parent
        recovered = _reuse(slot / RESULT_FILE, spec.digest)
        if recovered is not None:  # finished, but the runner was killed before appending it
            append_result(out, recovered)
            continue
        (slot / RESULT_FILE).unlink(missing_ok=True)
        slot.mkdir(parents=True, exist_ok=True)
        record = {
            k: v for k, v in spec.to_json().items() if k in ("experiment", "variant", "seed", "digest", "run_dir")
        }
        tasks.append(
            {
                "kind": "run",
                "spec": spec.to_json(),
                "result": str(slot / RESULT_FILE),
                "log": str(slot / "log.txt"),
                "record": record,
            }
        )
    skipped = len(exp.variants) * len(exp.seeds) - len(tasks)
    print(f"experiment {exp.name}: {len(tasks)} runs to do, {skipped} already finished; results in {out}", flush=True)
    progress, failed = Progress(len(tasks), tuple(exp.metrics)), 0

    def on_result(task: dict[str, Any], result: dict[str, Any]) -> None:
        nonlocal failed
        append_result(out, result)
        failed += result.get("status") != "ok"
        print(progress.line(task, result), flush=True)

    if tasks:
        pool.run(tasks, on_result)
    return out, failed
