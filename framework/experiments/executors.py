"""Where the tasks of an experiment run: a local pool of worker processes, or a cluster through submitit.

Both hand a task (a JSON-able dict, see :mod:`framework.experiments.worker`) to :func:`worker.execute` in a process
of its own and call ``on_result(task, result)`` in the parent as each one ends, in completion order.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Protocol

from framework.experiments.worker import execute, execute_logged, write_json_atomically

OnResult = Callable[[dict[str, Any], dict[str, Any]], None]
EXECUTORS = ("local", "slurm", "submitit-local")


class Executor(Protocol):
    def run(self, tasks: list[dict[str, Any]], on_result: OnResult) -> None: ...


def _failure(task: dict[str, Any], error: str) -> dict[str, Any]:
    return {**task.get("record", {}), "status": "failed", "error": error, "metrics": {}}


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()] if path.is_file() else []
    return lines[-1].strip() if lines else "(empty log)"


class LocalExecutor:
    """``jobs`` tasks at a time, each in a fresh process with its output in the task's ``log.txt``. The processes
    are forked from a server that imported torch, Lightning, W&B and the plugins once (``multiprocessing``'s
    forkserver preloading :mod:`framework.experiments.preload`, which never runs a tensor operation before forking),
    so a run pays neither the ~5-8 s of imports nor any state of the parent;
    each gets the parent's current environment and working directory. A process that dies without a result
    (segfault, out of memory, killed) is recorded as failed with the last line of its log."""

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"jobs={jobs}: run at least one task at a time (--jobs 1 or more)")
        self.jobs = jobs
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["framework.experiments.preload"])

    def _one(self, task: dict[str, Any]) -> dict[str, Any]:
        result_path, log_path = Path(task["result"]), Path(task["log"])
        write_json_atomically(result_path.with_name("task.json"), task)
        proc = self.context.Process(target=execute_logged, args=(task, str(log_path), dict(os.environ), os.getcwd()))
        proc.start()
        proc.join()
        if not result_path.is_file():
            return _failure(task, f"worker exited with status {proc.exitcode}: {_last_line(log_path)}")
        result = json.loads(result_path.read_text())
        if result.get("status") == "failed" and "exited with status" in str(result.get("error")):
            result["error"] = f"{result['error']}: {_last_line(log_path)}"
        return result

    def run(self, tasks: list[dict[str, Any]], on_result: OnResult) -> None:
        with ThreadPoolExecutor(self.jobs) as pool:
            futures = {pool.submit(self._one, task): task for task in tasks}
            for future in as_completed(futures):
                on_result(futures[future], future.result())


class SubmititExecutor:
    """One submitit job per task: SLURM (``cluster="slurm"``), or submitit's local executor (``"local"``), which runs
    the same code path as a cluster job on this machine. ``parameters`` go to ``update_parameters`` (``timeout_min``,
    ``gpus_per_node``, ``tasks_per_node``, ``nodes``, ``cpus_per_task``, ``mem_gb``, ``slurm_partition``, ...)."""

    def __init__(self, folder: Path, cluster: str, parameters: dict[str, Any] | None = None) -> None:
        self.folder, self.cluster, self.parameters = folder, cluster, dict(parameters or {})

    def run(self, tasks: list[dict[str, Any]], on_result: OnResult) -> None:
        import submitit

        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        executor.update_parameters(**{"timeout_min": 60, **self.parameters})
        jobs = {}
        for task in tasks:
            job = executor.submit(execute, task)
            jobs[job.job_id] = (job, task)
        for job in submitit.helpers.as_completed([job for job, _ in jobs.values()]):
            task = jobs[job.job_id][1]
            try:
                result = job.result()
            except Exception as err:  # the job died: recorded like any failed run
                result = _failure(task, f"submitit job {job.job_id} failed: {str(err).strip().splitlines()[-1]}")
            on_result(task, result)


def make_executor(name: str, jobs: int, folder: Path, parameters: dict[str, Any] | None = None) -> Executor:
    """``local`` (a process pool of ``jobs``), ``slurm`` or ``submitit-local`` (submitit on this machine)."""
    if name == "local":
        return LocalExecutor(jobs)
    if name in ("slurm", "submitit-local"):
        return SubmititExecutor(folder, "slurm" if name == "slurm" else "local", parameters)
    raise ValueError(f"executor={name!r} is unknown; use one of {list(EXECUTORS)}")
