"""Hyperparameter search with Optuna on validation data: ``framework tune`` and the ``tune:`` of an experiment.

Each trial is ``framework fit`` (the same :class:`FrameworkCLI` a user runs) with the trial's values as overrides and
a pruning callback on the validation metric; the study lives in SQLite, so an interrupted search resumes where it
stopped and can be shared. The budget counts every finished trial (complete, pruned or failed). The best values are
written as a YAML that ``framework fit --config CONFIG --config best.yaml`` accepts.

A search space is a mapping of dotted config keys to distributions::

    model.init_args.optimizer.init_args.lr: {low: 1.0e-4, high: 1.0e-1, log: true}
    model.init_args.hidden: {choices: [32, 64, 128]}
    model.init_args.depth: {low: 1, high: 4, type: int}
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import optuna
import yaml

from framework.callbacks import NonFiniteError
from framework.cli import FrameworkCLI
from framework.experiments.spec import ExperimentError, grid_space, override_arg
from framework.experiments.worker import QUIET, one_line

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


class OptunaPruning(pl.Callback):
    """Report ``metric`` to the trial after every validation and stop the fit when the pruner says so; ``best`` is the
    best value reported so far (``direction`` min or max).

    Raises ``optuna.TrialPruned`` from ``on_validation_end`` (Lightning re-raises it after its own clean-up), and a
    ``KeyError`` naming the available validation metrics when ``metric`` is not logged.
    """

    def __init__(self, trial: optuna.Trial, metric: str, direction: str = "min") -> None:
        self.trial = trial
        self.metric = metric
        self.better = min if direction.startswith("min") else max
        self.best: float | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            logged = sorted(k for k in trainer.callback_metrics if k.startswith("val/"))
            raise KeyError(f"tune metric {self.metric!r} is not logged by this model; it logs {logged}")
        self.trial.report(float(value), step=trainer.global_step)
        self.best = float(value) if self.best is None else self.better(self.best, float(value))
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.metric}={float(value):.6g} at step {trainer.global_step}")


def _number(value: Any) -> Any:
    """YAML reads ``1e-4`` (no dot) as a string; take it as the number it means."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One value per dotted key: categorical for ``choices``, int when ``type: int`` (or both bounds are ints),
    else float; ``log: true`` samples log-uniformly."""
    values = {}
    for key, dist in space.items():
        if "choices" in dist:
            values[key] = trial.suggest_categorical(key, list(dist["choices"]))
            continue
        low, high, log = _number(dist["low"]), _number(dist["high"]), bool(dist.get("log", False))
        if dist.get("type") == "int" or (
            isinstance(low, int) and isinstance(high, int) and dist.get("type") != "float"
        ):
            values[key] = trial.suggest_int(key, int(low), int(high), log=log)
        else:
            values[key] = trial.suggest_float(key, float(low), float(high), log=log)
    return values


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b.c": 1}`` -> ``{"a": {"b": {"c": 1}}}``: the shape of a config file."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def load_space(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a search-space YAML (see the module docstring)."""
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict) or not raw:
        raise ExperimentError(
            f"{path}: a search space is a mapping of dotted config keys to {{low, high}} or {{choices}}"
        )
    return raw


def run_study(
    args: list[str],
    space: dict[str, dict[str, Any]],
    metric: str,
    trials: int,
    workdir: Path,
    direction: str = "min",
    storage: str | None = None,
    study_name: str = "study",
    seed: int = 0,
    objective: str = "last",
    sampler: str = "tpe",
) -> dict[str, Any]:
    """Run (or resume) a study until it has ``trials`` finished trials; write ``workdir/best.yaml``.

    Args:
        args: fit arguments every trial shares (``--config ...`` and overrides).
        space: the search space; metric: a ``val/`` metric; direction: ``min`` or ``max``.
        storage: an Optuna storage URL; default ``sqlite:///<workdir>/study.db``.
        objective: a trial's value: ``last`` (the metric after the fit, for runs that test the last checkpoint) or
            ``best`` (its best value over the fit's validations, for runs that test the best checkpoint).
        sampler: ``tpe`` (Optuna's TPE, median pruning) or ``grid`` (every combination of the ``choices`` of every
            key exactly once, no pruning: a small budget that covers its range; ``trials`` must be the grid size).

    Returns:
        ``{"best": path of best.yaml, "params", "value", "trials": finished trials, "complete"}``.
    """
    if not metric.startswith("val/"):
        raise ExperimentError(f"metric={metric!r}: tuning selects on validation data only: use a val/<metric>")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{workdir.absolute() / 'study.db'}"
    direction = "minimize" if direction.startswith("min") else "maximize"
    study = optuna.create_study(study_name=study_name, storage=storage, direction=direction, load_if_exists=True)
    if sampler == "grid":
        grid = grid_space(space)
        size = math.prod(len(values) for values in grid.values())
        if trials > size:
            raise ExperimentError(f"trials={trials}: a grid search runs every point once; this grid has {size} points")
        study.sampler = optuna.samplers.GridSampler(grid, seed=seed)
        study.pruner = optuna.pruners.NopPruner()
    else:  # seeded per resume point: a resumed study must not replay the random start-up trials it already ran
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
        study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5)

    def run_trial(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        run_dir = workdir / "trials" / f"trial_{trial.number}"
        overrides = [override_arg(k, v) for k, v in values.items()]
        pruning = OptunaPruning(trial, metric, direction)
        try:
            cli = FrameworkCLI(
                args=["fit", *args, *overrides, f"--run_dir={run_dir}", *QUIET], extra_callbacks=[pruning]
            )
        finally:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # trials are disposable; keep their logs
        value = pruning.best if objective == "best" else cli.trainer.callback_metrics.get(metric)
        if value is None:
            raise KeyError(f"tune metric {metric!r} was not logged by the fit")
        return float(value)

    finished = sum(t.state in FINISHED for t in study.trials)
    if finished < trials:
        study.optimize(run_trial, n_trials=trials - finished, catch=(NonFiniteError, FloatingPointError))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ExperimentError(f"study {study_name!r}: none of {len(study.trials)} trials completed (pruned or failed)")
    best = study.best_trial
    best_path = workdir / "best.yaml"
    header = (
        f"# framework tune: best of {len(study.trials)} trials, {metric} = {best.value:.6g} (trial {best.number})\n"
    )
    best_path.write_text(header + yaml.safe_dump(nest(best.params), sort_keys=False))
    return {
        "best": str(best_path),
        "params": best.params,
        "value": best.value,
        "trials": sum(t.state in FINISHED for t in study.trials),
        "complete": len(complete),
    }


def execute_tune(task: dict[str, Any]) -> dict[str, Any]:
    """The worker side of an experiment's tuning task (one study per variant)."""
    try:
        result = run_study(
            args=task["args"],
            space=task["space"],
            metric=task["metric"],
            trials=task["trials"],
            workdir=Path(task["workdir"]),
            direction=task["direction"],
            study_name=task["study_name"],
            seed=task["seed"],
            objective=task.get("objective", "last"),
            sampler=task.get("sampler", "tpe"),
        )
        return {"status": "ok", **result}
    except (Exception, SystemExit) as err:
        return {"status": "failed", "error": one_line(err)}
