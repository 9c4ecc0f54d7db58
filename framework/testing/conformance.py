"""The plugin conformance suite: every config must parse, fit, test, round-trip a checkpoint, resume exactly and
(quick configs) train under 2-process CPU DDP with identical parameters on both ranks. A config whose trainer
starts several processes itself (``devices`` or ``num_nodes`` > 1, e.g. FSDP) runs each check through the
``framework`` command in subprocesses, since Lightning re-launches the running script for the other ranks.

Each check is a plain function ``check_*(config, workdir)`` that raises ``AssertionError`` on failure, so any
test runner can drive it. Runs are shrunk with trainer-only overrides (``TINY``), never plugin-specific ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import torch
import yaml

from framework.checkpoint import load_checkpoint_safely
from framework.cli import FrameworkCLI, main
from framework.testing.digest import ParameterDump

TINY = (
    "--trainer.limit_train_batches=3",
    "--trainer.limit_val_batches=2",
    "--trainer.limit_test_batches=2",
    "--trainer.limit_predict_batches=2",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.num_sanity_val_steps=1",
)


class RunKilled(RuntimeError):
    """Raised by :class:`KillAtStep` in place of a SIGKILL (the suite runs fits in this process)."""


class KillAtStep(pl.Callback):
    """Stops a fit as a kill would, at the end of the training batch that reaches global step ``step``: before the
    checkpoint callbacks (Lightning runs them last) could write that step, so with a checkpoint every step the last
    checkpoint on disk is the one of step ``step - 1``. The run keeps its configured length, so schedules derived
    from it (``CosineAnnealingToEnd``) are those of the uninterrupted run."""

    def __init__(self, step: int = 5) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step:
            raise RunKilled(f"killed at global step {trainer.global_step}")


def run(subcommand: str, config: Path, *overrides: str) -> FrameworkCLI:
    """Run ``framework <subcommand> --config <config> TINY overrides`` in this process and return the CLI."""
    cli = main([subcommand, "--config", str(config), *TINY, *overrides])
    assert cli is not None
    return cli


def fit(config: Path, run_dir: Path, epochs: int, *overrides: str) -> FrameworkCLI:
    """A short fit of ``epochs`` epochs (3 batches each) into ``run_dir``."""
    return run(
        "fit", config, f"--run_dir={run_dir}", f"--trainer.max_epochs={epochs}", "--trainer.max_steps=-1", *overrides
    )


def check_print_config(config: Path, workdir: Path) -> None:
    """``fit --config X --print_config`` prints the resolved config with class paths and exits 0."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["fit", "--config", str(config), "--print_config"])
    text = out.getvalue()
    assert "class_path:" in text and "trainer:" in text, f"--print_config printed no resolved config:\n{text[:500]}"


def launches_processes(config: Path) -> bool:
    """Whether ``config``'s trainer starts several processes (``devices`` or ``num_nodes`` > 1 in the file)."""
    trainer = (yaml.safe_load(config.read_text()) or {}).get("trainer") or {}
    devices = trainer.get("devices", 1)
    return (isinstance(devices, int) and devices > 1) or int(trainer.get("num_nodes", 1)) > 1


def cli(workdir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """``python -m framework <args>`` in a subprocess (W&B off, one thread per process); asserts exit status 0
    unless ``ok`` is False."""
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "framework", *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, f"{' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


def check_fast_dev_run(config: Path, workdir: Path) -> None:
    """``fit --trainer.fast_dev_run true`` runs exactly one training batch and finishes."""
    if launches_processes(config):
        cli(
            workdir,
            "fit",
            "--config",
            str(config),
            *TINY,
            "--trainer.fast_dev_run=true",
            f"--run_dir={workdir / 'fdr'}",
        )
        return
    cli_obj = run("fit", config, "--trainer.fast_dev_run=true", f"--run_dir={workdir / 'fdr'}")
    assert cli_obj.trainer.state.finished, f"fast_dev_run ended in state {cli_obj.trainer.state.status}"
    assert cli_obj.trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1


def check_test_and_predict(config: Path, workdir: Path) -> None:
    """After a short fit: ``test --ckpt_path last`` logs at least one ``test/`` metric, all finite, and the
    predictions of the trained model in memory equal those of ``framework predict --ckpt_path last.ckpt`` and those
    of ``ModelClass.load_from_checkpoint(last.ckpt)`` alone (no config: the checkpoint's hyperparameters rebuild
    the model); one fit serves all three checks."""
    run_dir = workdir / "run"
    if launches_processes(config):
        _check_test_and_predict_in_processes(config, workdir)
        return
    cli = fit(config, run_dir, 1)
    in_memory = cli.trainer.predict(cli.model, datamodule=cli.datamodule)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.is_file(), f"fit wrote no {ckpt}"
    test = run("test", config, f"--run_dir={run_dir}", "--ckpt_path=last")
    metrics = {k: float(v) for k, v in test.trainer.callback_metrics.items() if k.startswith("test/")}
    assert metrics, f"no test/ metrics were logged: {sorted(test.trainer.callback_metrics)}"
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    assert not bad, f"non-finite test metrics: {bad}"
    run("predict", config, f"--run_dir={workdir / 'predict'}", f"--ckpt_path={ckpt}")
    reloaded = torch.load(workdir / "predict" / "predictions.pt", weights_only=True)
    standalone = type(cli.model).load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    from_class = cli.trainer.predict(standalone, datamodule=cli.datamodule)
    assert len(in_memory) == len(reloaded) == len(from_class) > 0
    for a, b, c in zip(in_memory, reloaded, from_class, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, c, rtol=0, atol=0, msg=lambda m: f"load_from_checkpoint alone: {m}")


def _check_test_and_predict_in_processes(config: Path, workdir: Path) -> None:
    """Multi-process variant: a fit with every rank's final parameters dumped, ``test --ckpt_path last`` in the
    same processes with finite ``test/`` metrics, and the checkpoint holding exactly the trained parameters (whole),
    loadable by a single-process ``predict``."""
    run_dir = workdir / "run"
    fit_args = [*TINY, "--trainer.max_epochs=1", "--trainer.max_steps=-1", f"--run_dir={run_dir}"]
    cli(
        workdir,
        "fit",
        "--config",
        str(config),
        *fit_args,
        f"--trainer.callbacks+={ParameterDump.__module__}.ParameterDump",
    )
    test = cli(workdir, "test", "--config", str(config), *TINY, f"--run_dir={run_dir}", "--ckpt_path=last")
    metrics = dict(line.split() for line in test.stdout.splitlines() if line.strip().startswith("test/"))
    assert metrics and all(math.isfinite(float(v)) for v in metrics.values()), f"test printed {metrics}"
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    trained = torch.load(run_dir / "params_rank0.pt", weights_only=True)
    saved = load_checkpoint_safely(ckpt)["state_dict"]
    for key, value in trained.items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=0, msg=lambda m, k=key: f"{k}: {m}")
    one = ["--trainer.devices=1", "--trainer.strategy=auto", f"--run_dir={workdir / 'predict'}", f"--ckpt_path={ckpt}"]
    cli(workdir, "predict", "--config", str(config), *TINY, *one)
    assert torch.load(workdir / "predict" / "predictions.pt", weights_only=True), "predict wrote no predictions"


def check_resume(config: Path, workdir: Path) -> None:
    """A 2-epoch fit (a checkpoint every step) killed one step after the first step of its second epoch, resumed with
    ``--ckpt_path last`` from that mid-epoch checkpoint: same global step and bit-identical weights as an
    uninterrupted 2-epoch fit (the loader resumes mid-epoch, :class:`framework.data.ResumableDataLoader`). With one
    batch per epoch (full-batch training) the checkpoint is the end of the first epoch."""
    every_step = "--checkpoint.every_n_train_steps=1"
    if launches_processes(config):
        _check_resume_in_processes(config, workdir)
        return
    straight = fit(config, workdir / "straight", 2, every_step)
    per_epoch = straight.trainer.global_step // 2
    assert per_epoch >= 1, "the uninterrupted fit took no step"
    kill = {"class_path": f"{KillAtStep.__module__}.KillAtStep", "init_args": {"step": per_epoch + min(2, per_epoch)}}
    try:
        fit(config, workdir / "resumed", 2, every_step, f"--trainer.callbacks+={json.dumps(kill)}")
        raise AssertionError("the first leg was not interrupted")
    except RunKilled:
        pass
    resumed = fit(config, workdir / "resumed", 2, every_step, "--ckpt_path=last")
    assert resumed.trainer.global_step == straight.trainer.global_step
    assert resumed.trainer.ckpt_path is not None, "resume did not load a checkpoint"
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=lambda m, k=key: f"{k}: {m}")


def _check_resume_in_processes(config: Path, workdir: Path) -> None:
    """Multi-process variant of :func:`check_resume`: 2-epoch fits in subprocesses, the interrupted one killed at
    step 5 (of 6), resumed from the checkpoint of step 4; every rank's final parameters (gathered whole) equal the
    uninterrupted run's bit for bit."""
    dump = f"--trainer.callbacks+={ParameterDump.__module__}.ParameterDump"
    common = [*TINY, "--trainer.max_epochs=2", "--trainer.max_steps=-1", "--checkpoint.every_n_train_steps=1"]
    straight, resumed = workdir / "straight", workdir / "resumed"
    cli(workdir, "fit", "--config", str(config), *common, f"--run_dir={straight}", dump)
    kill = {"class_path": f"{KillAtStep.__module__}.KillAtStep", "init_args": {"step": 5}}
    killed = cli(workdir, "fit", "--config", str(config), *common, f"--run_dir={resumed}",
                 f"--trainer.callbacks+={json.dumps(kill)}", ok=False)  # fmt: skip
    assert killed.returncode != 0 and "RunKilled" in killed.stderr, (
        f"the first leg was not killed:\n{killed.stderr[-2000:]}"
    )
    cli(workdir, "fit", "--config", str(config), *common, f"--run_dir={resumed}", "--ckpt_path=last", dump)
    assert_ranks_agree(straight)
    for rank in (0, 1):
        a = torch.load(straight / f"params_rank{rank}.pt", weights_only=True)
        b = torch.load(resumed / f"params_rank{rank}.pt", weights_only=True)
        assert a.keys() == b.keys() and a
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=lambda m, k=key: f"rank {rank} {k}: {m}")


def check_ddp(config: Path, workdir: Path) -> None:
    """``fit`` with ``strategy=ddp`` on 2 CPU processes (gloo) succeeds and leaves identical parameters on both."""
    run_dir = workdir / "ddp"
    ddp = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp", "--trainer.max_epochs=1"]
    dump = f"--trainer.callbacks+={ParameterDump.__module__}.ParameterDump"
    cli(workdir, "fit", "--config", str(config), *TINY, *ddp, "--trainer.max_steps=-1", f"--run_dir={run_dir}", dump)
    assert_ranks_agree(run_dir)


def assert_ranks_agree(run_dir: Path) -> None:
    """The parameters :class:`ParameterDump` wrote for ranks 0 and 1 are equal bit for bit."""
    rank0 = torch.load(run_dir / "params_rank0.pt", weights_only=True)
    rank1 = torch.load(run_dir / "params_rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys() and rank0
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=lambda m, k=key: f"{k}: {m}")


# What depends on a config's own data, model and sizes: run on every config.
CONFIG_CHECKS: dict[str, Callable[[Path, Path], None]] = {
    "print_config": check_print_config,
    "test_and_predict": check_test_and_predict,
    "resume": check_resume,
}
# Lightning's fast_dev_run through the framework's callbacks and loggers: a property of the plugin's classes, which
# its quick config exercises (the paper-size configs' data setup would only repeat it at many times the cost).
PLUGIN_CHECKS: dict[str, Callable[[Path, Path], None]] = {"fast_dev_run": check_fast_dev_run}
CHECKS: dict[str, Callable[[Path, Path], None]] = {**CONFIG_CHECKS, **PLUGIN_CHECKS}  # all of them, on one config
QUICK_ONLY_CHECKS: dict[str, Callable[[Path, Path], None]] = {"ddp": check_ddp}
