"""2-D point navigation (Finn et al. 2017 MAML-RL; SG-MRL ``point_env_2d_v2``): goal g ~ U[-0.5, 0.5]^2, start at
the origin, s' = clip(s + clip(a, -0.1, 0.1), -0.5, 0.5), reward -||s' - g||, terminated when |s' - g| < 0.01 on
both axes. Deterministic (no step noise)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv

MAX_ACTION, BOX, GOAL_TOL = 0.1, 0.5, 0.01


class PointNavEnv(gym.Env):
    """One 2-D navigation task (gymnasium API). Task: ``{"goal": (2,)}``."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-BOX, BOX, (2,), np.float32)
        self.action_space = gym.spaces.Box(-MAX_ACTION, MAX_ACTION, (2,), np.float32)
        self.task = {"goal": np.zeros(2)}

    def sample_tasks(self, n: int, rng: np.random.Generator | None = None) -> list[dict[str, np.ndarray]]:
        """``n`` tasks drawn from ``rng`` (the env's ``np_random`` when None): the task protocol of
        :class:`~framework_plugins.meta_rl.envs.registered.TaskEnv`."""
        rng = self.np_random if rng is None else rng
        return [{"goal": rng.uniform(-BOX, BOX, size=2)} for _ in range(n)]

    def set_task(self, task: dict[str, np.ndarray]) -> None:
        self.task = {"goal": np.asarray(task["goal"], dtype=np.float64)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if options and "task" in options:
            self.set_task(options["task"])
        self.state = np.zeros(2)
        return self.state.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        move = np.clip(np.asarray(action, dtype=np.float64), -MAX_ACTION, MAX_ACTION)
        self.state = np.clip(self.state + move, -BOX, BOX)
        gap = self.state - self.task["goal"]
        terminated = bool(np.all(np.abs(gap) < GOAL_TOL))
        return self.state.astype(np.float32), -float(np.linalg.norm(gap)), terminated, False, {}


class TensorPointNav(TensorTaskEnv):
    """Batched :class:`PointNavEnv`: tasks ``{"goal": (T, 2)}``."""

    discrete = False
    obs_dim = action_dim = 2

    def __init__(self, horizon: int = 100, dtype: torch.dtype = torch.float32) -> None:
        if horizon < 1:
            raise ValueError(f"env_kwargs.horizon={horizon} must be >= 1.")
        self.horizon, self.dtype = horizon, dtype

    def sample_tasks(self, n: int, generator: torch.Generator | None = None) -> Tasks:
        return {"goal": (torch.rand(n, 2, generator=generator, dtype=self.dtype) - 0.5) * (2 * BOX)}

    def reset(self, tasks: Tasks, n_traj: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self.goal = tasks["goal"].unsqueeze(1)  # (T, 1, 2)
        self.state = torch.zeros(len(self.goal), n_traj, 2, dtype=self.dtype)
        return self.state

    def step(self, action: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        self.state = (self.state + action.to(self.dtype).clamp(-MAX_ACTION, MAX_ACTION)).clamp(-BOX, BOX)
        gap = self.state - self.goal
        return self.state, -gap.norm(dim=-1), (gap.abs() < GOAL_TOL).all(-1)
