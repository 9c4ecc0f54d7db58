"""The plugin conformance suite: every config must parse, fit, test, round-trip a checkpoint, resume exactly and
(quick configs) train under 2-process CPU DDP with identical parameters on both ranks.

Each check is a plain function ``check_*(config, workdir)`` that raises ``AssertionError`` on failure, so any
test runner can drive it. Runs are shrunk with trainer-only overrides (``TINY``), never plugin-specific ones.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import torch

from framework.cli import FrameworkCLI, main

TINY = (
    "--trainer.limit_train_batches=3",
    "--trainer.limit_val_batches=2",
    "--trainer.limit_test_batches=2",
    "--trainer.limit_predict_batches=2",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.num_sanity_val_steps=1",
)


class StopAfterEpochs(pl.Callback):
    """Stops a fit after ``epochs`` epochs as if it were killed there: the run keeps its configured length, so
    schedules derived from it (``CosineAnnealingToEnd``) are those of the uninterrupted run."""

    def __init__(self, epochs: int = 1) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


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


def check_fast_dev_run(config: Path, workdir: Path) -> None:
    """``fit --trainer.fast_dev_run true`` runs exactly one training batch and finishes."""
    cli = run("fit", config, "--trainer.fast_dev_run=true", f"--run_dir={workdir / 'fdr'}")
    assert cli.trainer.state.finished, f"fast_dev_run ended in state {cli.trainer.state.status}"
    assert cli.trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1


def check_test_and_predict(config: Path, workdir: Path) -> None:
    """After a short fit: ``test --ckpt_path last`` logs at least one ``test/`` metric, all finite, and the
    predictions of the trained model in memory equal those of ``framework predict --ckpt_path last.ckpt`` (one fit
    serves both checks)."""
    run_dir = workdir / "run"
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
    assert len(in_memory) == len(reloaded) > 0
    for a, b in zip(in_memory, reloaded, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def check_resume(config: Path, workdir: Path) -> None:
    """A 2-epoch fit stopped after epoch 1, resumed with ``--ckpt_path last``: same global step and bit-identical
    weights as an uninterrupted 2-epoch fit."""
    straight = fit(config, workdir / "straight", 2)
    first = fit(config, workdir / "resumed", 2, f"--trainer.callbacks+={StopAfterEpochs.__module__}.StopAfterEpochs")
    assert 0 < first.trainer.global_step < straight.trainer.global_step, "the first leg was not interrupted"
    resumed = fit(config, workdir / "resumed", 2, "--ckpt_path=last")
    assert resumed.trainer.global_step == straight.trainer.global_step > 0
    assert resumed.trainer.ckpt_path is not None, "resume did not load a checkpoint"
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=lambda m, k=key: f"{k}: {m}")


def check_ddp(config: Path, workdir: Path) -> None:
    """``fit`` with ``strategy=ddp`` on 2 CPU processes (gloo) succeeds and leaves identical parameters on both."""
    run_dir = workdir / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "framework",
        "fit",
        "--config",
        str(config),
        *TINY,
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.max_epochs=1",
        "--trainer.max_steps=-1",
        f"--run_dir={run_dir}",
        "--trainer.callbacks+=framework.testing.digest.ParameterDump",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"DDP fit failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    rank0 = torch.load(run_dir / "params_rank0.pt", weights_only=True)
    rank1 = torch.load(run_dir / "params_rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys() and rank0
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=lambda m, k=key: f"{k}: {m}")


CHECKS: dict[str, Callable[[Path, Path], None]] = {
    "print_config": check_print_config,
    "fast_dev_run": check_fast_dev_run,
    "test_and_predict": check_test_and_predict,
    "resume": check_resume,
}
QUICK_ONLY_CHECKS: dict[str, Callable[[Path, Path], None]] = {"ddp": check_ddp}
