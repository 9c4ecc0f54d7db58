"""Time per training step: the framework's fit loop vs a hand-written PyTorch loop, same model, data and batches;
and the fixed cost of one command: ``framework fit`` vs Lightning's own ``LightningCLI``, one training step each.

    python scripts/bench_framework.py [--repeats 5] [--epochs 3] [--startup-only]

For each size, both loops train the flow-matching VelocityMLP with the CFM loss and AdamW on the same seeded
Gaussian-mixture data through the same DataLoader; each repeat times the steps of the epochs after the first
(warm-up) and the median over repeats is reported. The framework runs are built by the real CLI
(``FrameworkCLI(run=False)`` with the quick config): default callbacks (checkpointing at epoch end, NaN guard,
RNG state, LR monitor) and logger (W&B, disabled here), with and without the Rich progress bar.

The command cost is the wall time of a whole in-process command (parse the config, build and instantiate the
classes, set up, one training step, write the checkpoint, finish), after a warm-up command, median over repeats:
``framework.cli.main(["fit", "--config", quick.yaml, ...])`` (run dir, config and recipe records, checkpoint guards,
default callbacks) against ``LightningCLI`` on the same model and data classes with the same settings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LightningCLI

from framework.cli import FrameworkCLI
from framework.cli import main as framework_main
from framework.registry import config_dir
from framework_plugins.flow_matching import FlowMatchingData
from framework_plugins.flow_matching.cfm import cfm_loss
from framework_plugins.flow_matching.velocity import VelocityMLP

SIZES = {"small": {"hidden": 128, "batch": 256}, "medium": {"hidden": 512, "batch": 1024}}
N_TRAIN = 32768
QUICK = config_dir("flow_matching") / "quick.yaml"


class StepTimer(pl.Callback):
    """Wall time of every training epoch after the first, divided by its number of steps."""

    def __init__(self) -> None:
        self.per_step: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start, self.step0 = time.perf_counter(), trainer.global_step

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self.per_step.append((time.perf_counter() - self.start) / (trainer.global_step - self.step0))


def hand_loop(hidden: int, batch: int, epochs: int) -> float:
    """Seconds per step of a plain PyTorch loop (the same work a Lightning step does: forward, backward, step)."""
    pl.seed_everything(1234, verbose=False)
    data = FlowMatchingData(target="gmm", dim=2, n_train=N_TRAIN, batch_size=batch)
    data.setup()
    model = VelocityMLP(2, hidden, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    loader = data.train_dataloader()
    times = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        start, steps = time.perf_counter(), 0
        for (x1,) in loader:
            loss = cfm_loss(model, x1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        if epoch > 0:
            times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def framework_loop(hidden: int, batch: int, epochs: int, progress_bar: bool) -> float:
    """Seconds per step of ``framework fit`` on the quick config with this size."""
    with tempfile.TemporaryDirectory() as run_dir:
        cli = FrameworkCLI(
            args=[
                "--config",
                str(QUICK),
                f"--run_dir={run_dir}",
                f"--model.init_args.hidden={hidden}",
                f"--data.init_args.batch_size={batch}",
                f"--data.init_args.n_train={N_TRAIN}",
                f"--trainer.max_epochs={epochs}",
                "--trainer.limit_val_batches=0",
                "--trainer.enable_model_summary=false",
                f"--trainer.enable_progress_bar={str(progress_bar).lower()}",
            ],
            run=False,
        )
        timer = StepTimer()
        cli.trainer.callbacks.append(timer)
        cli.trainer.fit(cli.model, cli.datamodule)
    return statistics.median(timer.per_step)


ONE_STEP = [
    "--trainer.max_steps=1",
    "--trainer.limit_val_batches=0",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.logger=CSVLogger",
]


def framework_command(run_dir: str) -> None:
    """``framework fit`` of the quick config, one training step."""
    framework_main(["fit", "--config", str(QUICK), *ONE_STEP, f"--run_dir={run_dir}"])


def lightning_command(run_dir: str) -> None:
    """Lightning's ``LightningCLI`` fit of the same classes and settings (no framework), one training step."""
    LightningCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=[
            "fit",
            "--config",
            str(QUICK),
            *ONE_STEP,
            f"--trainer.logger.save_dir={run_dir}",
            f"--trainer.default_root_dir={run_dir}",
        ],  # fmt: skip
    )


def command_seconds(command: Callable[[str], None]) -> float:
    """Wall seconds of one run of a command in a fresh run dir."""
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        command(run_dir)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--startup-only", action="store_true", help="only the fixed cost of one command")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, lightning {pl.__version__}, threads {torch.get_num_threads()}")
    command_seconds(framework_command), command_seconds(lightning_command)  # warm-up
    ours, theirs = [], []
    for _ in range(args.repeats):  # interleaved
        ours.append(command_seconds(framework_command))
        theirs.append(command_seconds(lightning_command))
    f, lt = statistics.median(ours), statistics.median(theirs)
    print(f"one fit command (1 step): framework {f:.3f} s, LightningCLI {lt:.3f} s, ratio {f / lt:.2f}", flush=True)
    if args.startup_only:
        return
    print(f"{'size':<8}{'hand ms/step':>14}{'fw ms/step':>12}{'ratio':>8}{'fw+bar ms':>11}{'ratio':>8}")
    for name, size in SIZES.items():
        hand, lean, full = [], [], []
        for _ in range(args.repeats):  # interleaved, so machine noise hits all three alike
            hand.append(hand_loop(size["hidden"], size["batch"], args.epochs))
            lean.append(framework_loop(size["hidden"], size["batch"], args.epochs, progress_bar=False))
            full.append(framework_loop(size["hidden"], size["batch"], args.epochs, progress_bar=True))
        h, f, b = (statistics.median(x) * 1e3 for x in (hand, lean, full))
        print(f"{name:<8}{h:>14.3f}{f:>12.3f}{f / h:>8.2f}{b:>11.3f}{b / h:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
