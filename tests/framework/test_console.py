"""What a run prints when stdout is a log file: progress lines, one aligned summary, warnings a user can act on, and
none of the known noise (Lightning's tips and internal deprecations, W&B's banner and footer, duplicated metrics)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from lightning.pytorch.utilities import rank_zero_warn

from framework.cli import main, quiet_console
from framework.registry import config_dir

QUICK = config_dir("flow_matching") / "quick.yaml"
SMALL = [
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=1",
    "--trainer.limit_test_batches=1",
    "--model.init_args.eval_samples=64",
    "--model.init_args.sample_steps=4",
    "--model.init_args.w2_steps=[1,2]",
    "--model.init_args.lipschitz_points=8",
]
NOISE = (
    "litlogger",  # Lightning's advertisement
    "anonymous setting has no effect",  # W&B, because WandbLogger passes anonymous=None
    "LeafSpec",  # torch's pytree deprecation, triggered by Lightning itself
    "FLOPs",  # Lightning's summary counts 0 of them without an example_input_array
    "exists and is not empty",  # the checkpoint directory on an intended resume
    "Run history",  # W&B's footer
    "Tracking run with wandb",  # W&B's banner
    "Test metric",  # Lightning's test table (the framework's summary has the metrics)
)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> str:
    """stdout + stderr (a pipe, not a terminal) of fit (2 epochs), test and a resume to 3 epochs of one run dir, with
    W&B offline and its console settings left at the framework's defaults. ``log_every_n_steps=50`` with 4 batches
    per epoch makes Lightning warn (a warning the user can act on)."""
    work = tmp_path_factory.mktemp("console")
    common = ["--config", str(QUICK), "--run_dir", str(work / "run"), "--trainer.log_every_n_steps=50", *SMALL]
    commands = [
        ["fit", *common, "--trainer.max_epochs=2"],
        ["test", *common, "--ckpt_path", "last"],
        ["fit", *common, "--trainer.max_epochs=3", "--ckpt_path", "last"],
    ]
    script = f"from framework.cli import main\nfor args in {commands!r}:\n    main(args)\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


@pytest.mark.parametrize("noise", NOISE)
def test_known_noise_is_not_printed(console: str, noise: str) -> None:
    assert noise not in console


def test_one_progress_line_per_epoch_when_stdout_is_not_a_terminal(console: str) -> None:
    epochs = [line.split("  ")[0] for line in console.splitlines() if line.startswith("epoch ")]
    assert epochs == ["epoch 1/2", "epoch 2/2", "epoch 3/3"]  # fit, then the resume's one epoch
    first = next(line for line in console.splitlines() if line.startswith("epoch 1/2"))
    assert re.search(r"step 4  [\d.]+s  train/loss [\d.]+  val/loss [\d.]+$", first), first
    assert "test: 1 batches" in console


def test_test_metrics_are_printed_once_untruncated_and_aligned(console: str) -> None:
    assert console.count("test/sliced_w2_gaussian_baseline") == 1
    assert console.count("test/energy_gaussian_baseline") == 1
    summary = console.split("== test finished")[1].split("checkpoint:")[0]
    metrics = [line for line in summary.splitlines() if line.startswith("  test/")]
    assert len(metrics) > 10
    columns = {len(line) - len(line.split()[-1]) for line in metrics}
    assert len(columns) == 1, metrics  # every value starts in the same column


def test_the_summary_still_names_the_offline_run_and_its_sync(console: str) -> None:
    hints = [line for line in console.splitlines() if line.startswith("wandb:       ")]
    assert len(hints) == 3  # fit, test, resume: each its own offline run
    assert all("offline-run-" in line and "wandb sync" in line for line in hints)


def test_a_warning_the_user_can_act_on_still_shows(console: str) -> None:
    assert "smaller than the logging interval Trainer(log_every_n_steps=50)" in console


def test_the_noise_filter_drops_only_the_known_messages() -> None:
    """The filters match the known messages and nothing else: a warning that merely mentions the same words shows."""
    with warnings.catch_warnings(record=True) as caught:
        quiet_console()
        rank_zero_warn("Your `IterableDataset` has `__len__` defined. In combination with multi-process loading ...")
        rank_zero_warn("Checkpoint directory /tmp/x/checkpoints exists and is not empty.")
        rank_zero_warn("The dataloader does not have many workers; note that your `IterableDataset` has `__len__`")
    messages = [str(w.message) for w in caught]
    assert messages == ["The dataloader does not have many workers; note that your `IterableDataset` has `__len__`"]


def test_every_n_steps_prints_a_line_every_n_optimizer_steps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(
        [
            "fit",
            "--config",
            str(QUICK),
            *SMALL,
            "--trainer.max_epochs=1",
            "--trainer.callbacks+=LineProgressBar",
            "--trainer.callbacks.every_n_steps=2",
            "--run_dir",
            str(tmp_path / "run"),
        ]
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split("  ")[1] for line in lines] == ["step 2", "step 4"]
