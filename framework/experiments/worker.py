"""One task of an experiment, in its own process: a run (``framework fit`` then ``framework test``) or a tuning study.

:func:`execute` runs the task and writes its result JSON atomically to the path the task names; the local executor
calls it through :func:`execute_logged` in a forked process, ``submitit`` inside the cluster job, and
``python -m framework.experiments.worker TASK.json`` by hand (to rerun one task while debugging it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from framework.callbacks import read_history
from framework.cli import EXPERIMENT_ENV, FrameworkCLI
from framework.experiments.spec import RunSpec
from framework.provenance import environment

RESULT_FILE = "result.json"
QUIET = ("--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false")


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` via a temp file + rename, so a reader never sees half a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True))
    os.replace(tmp, path)


def one_line(err: BaseException) -> str:
    if isinstance(err, SystemExit):
        return f"exited with status {err.code} (argument error; the run's log.txt has the message)"
    return f"{type(err).__name__}: {err}".splitlines()[0]


def selected_checkpoint(trainer: pl.Trainer) -> tuple[str, dict[str, Any]]:
    """The best validation checkpoint of a finished fit (its checkpoint callback monitors the early-stopping metric),
    and what the record keeps of it: the monitored value, its step, and the step training stopped at."""
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "")
    if not path:
        monitor = getattr(callback, "monitor", None)
        raise RuntimeError(
            f"early stopping: no best checkpoint (checkpoint.monitor={monitor!r} was never logged at a validation); "
            "log that metric in validation_step or change early_stopping.metric"
        )
    match = re.search(r"step=(\d+)", Path(path).name)
    return path, {
        "selected": {
            "metric": callback.monitor,
            "value": float(callback.best_model_score),
            "step": int(match.group(1)) if match else None,
            "stopped_step": int(trainer.global_step),
        }
    }


def execute_run(spec: RunSpec) -> dict[str, Any]:
    """Fit then test one (variant, seed) through :class:`FrameworkCLI` in this process; return its record.

    The run directory is started afresh (a leftover from an interrupted attempt is removed). The record holds the
    test metrics, the final validation metrics (prefixed ``val/``), the kept validation curves, status ``ok`` or
    ``failed`` with a one-line error, and the wall time. W&B groups the run by experiment and tags it with the
    variant and seed (``WANDB_RUN_GROUP`` / ``WANDB_TAGS``); every logger's config records them.
    """
    os.environ[EXPERIMENT_ENV] = json.dumps({"experiment": spec.experiment, "variant": spec.variant, "seed": spec.seed})
    os.environ["WANDB_RUN_GROUP"] = spec.experiment
    os.environ["WANDB_TAGS"] = f"{spec.variant},seed={spec.seed}"
    if spec.run_dir.exists():
        shutil.rmtree(spec.run_dir)
    common = [*spec.args, f"--run_dir={spec.run_dir}", *QUIET]
    record: dict[str, Any] = {
        "experiment": spec.experiment,
        "variant": spec.variant,
        "seed": spec.seed,
        "digest": spec.digest,
        **environment(),
        "run_dir": str(spec.run_dir),
    }
    start = time.perf_counter()
    try:
        fit = FrameworkCLI(args=["fit", *common])
        metrics = {k: float(v) for k, v in fit.trainer.callback_metrics.items() if k.startswith("val/")}
        ckpt_path = "last"
        if spec.test_checkpoint == "best":
            ckpt_path, selected = selected_checkpoint(fit.trainer)
            record.update(selected)
        test = FrameworkCLI(args=["test", *common, f"--ckpt_path={ckpt_path}"])
        metrics.update({k: float(v) for k, v in test.trainer.callback_metrics.items() if k.startswith("test/")})
        record.update(status="ok", error=None, metrics=metrics, global_step=int(fit.trainer.global_step))
        record["curves"] = {key: read_history(spec.run_dir, key) for key in spec.curves}
    except (Exception, SystemExit) as err:  # recorded, never fatal to the other runs
        traceback.print_exc()
        record.update(status="failed", error=one_line(err), metrics={})
    record["wall_s"] = round(time.perf_counter() - start, 3)
    return record


def execute(task: dict[str, Any]) -> dict[str, Any]:
    """Execute a task (``{"kind": "run", "spec": ...}`` or ``{"kind": "tune", ...}``) and write its result file."""
    if task["kind"] == "run":
        result = execute_run(RunSpec.from_json(task["spec"]))
    elif task["kind"] == "tune":
        from framework.experiments.tune import execute_tune  # optuna is imported only where it is used

        result = {**execute_tune(task), "digest": task["digest"]}
    else:
        raise ValueError(f"task kind {task['kind']!r} is unknown (run or tune)")
    if os.environ.get("SLURM_PROCID", os.environ.get("RANK", "0")) == "0":  # one writer in a multi-task job
        write_json_atomically(Path(task["result"]), result)
    return result


def execute_logged(task: dict[str, Any], log: str, env: dict[str, str], cwd: str) -> None:
    """:func:`execute` with stdout and stderr (file descriptors 1 and 2, so child libraries' output too) sent to
    ``log``, in environment ``env`` and working directory ``cwd``: the body of a local-executor process."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    with open(log, "w") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
    try:
        execute(task)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    execute(json.loads(Path(sys.argv[1]).read_text()))
