"""Bring your own task family to the meta_rl plugin: a gymnasium env registered with ``gymnasium.register`` that has
``sample_tasks(n, rng)`` and ``set_task(task)`` (the TaskEnv protocol, plugins/meta_rl/README.md).

    python examples/bring_your_own_env.py [--out DIR]    # ~15 s on 2 CPU cores

Importing this module registers ``byo/GoalLine-v0``; a config names it as ``module:id`` so that the module is
imported first, e.g. from the shell:

    PYTHONPATH=examples framework fit --config configs/meta_rl/quick.yaml \\
        --model.init_args.env bring_your_own_env:byo/GoalLine-v0 --model.init_args.env_kwargs '{horizon: 20}'
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

from framework.cli import main as framework

ENV_ID = "byo/GoalLine-v0"
STEP = 0.1


class GoalLineEnv(gym.Env):
    """Walk along a line to a hidden goal: position x (starts at 0), action a in [-1, 1] moves x by 0.1 a, reward
    -|x - goal|. A task is ``{"goal": array of shape ()}``, goal ~ U[-1, 1]."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.task = {"goal": np.array(0.5)}
        self.position = 0.0

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        """``n`` goals drawn from ``rng`` (the protocol: only ``rng``, so tasks follow the run's seeds)."""
        return [{"goal": np.array(rng.uniform(-1.0, 1.0))} for _ in range(n)]

    def set_task(self, task: dict[str, np.ndarray]) -> None:
        """Walk to ``task["goal"]`` from the next reset on."""
        self.task = {"goal": np.asarray(task["goal"], dtype=np.float64)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Back to x = 0 (``options={"task": task}`` sets the task first)."""
        super().reset(seed=seed)
        if options and "task" in options:
            self.set_task(options["task"])
        self.position = 0.0
        return np.array([self.position], np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Move by 0.1 clip(a, -1, 1); never terminates (the horizon ends the episode)."""
        self.position += STEP * float(np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)[0])
        reward = -abs(self.position - float(self.task["goal"]))
        return np.array([self.position], np.float32), reward, False, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=GoalLineEnv, max_episode_steps=20)


def run(out: Path) -> dict[str, float]:
    """Meta-train MAML / SG-MRL on ``byo/GoalLine-v0`` for one short epoch and test the last checkpoint (run
    directory under ``out``); returns the test metrics."""
    args = [
        "--model=MetaRL",
        f"--model.init_args.env=bring_your_own_env:{ENV_ID}",  # module:id, as in a YAML config
        "--model.init_args.hidden=[16]",
        "--model.init_args.inner_lr=0.5",
        "--model.init_args.trajectories_per_task=8",
        "--model.init_args.test_inner_steps=2",
        "--model.init_args.optimizer.class_path=torch.optim.Adam",
        "--model.init_args.optimizer.init_args.lr=0.01",
        "--data=MetaRLTasks",
        "--data.init_args.meta_batch_size=8",
        "--data.init_args.steps_per_epoch=5",
        "--data.init_args.n_val_tasks=4",
        "--data.init_args.n_test_tasks=8",
        "--data.init_args.eval_batch_size=4",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        f"--run_dir={out / 'run'}",
    ]
    framework(["fit", *args])
    cli = framework(["test", *args, "--ckpt_path=last"])
    return {key: float(value) for key, value in cli.trainer.callback_metrics.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/bring_your_own_env"), help="output folder")
    for name, value in sorted(run(parser.parse_args().out).items()):
        print(f"{name:40s} {value:.4f}")
