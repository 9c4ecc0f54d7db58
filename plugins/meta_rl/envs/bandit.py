"""Multi-armed Bernoulli bandits (Duan et al. 2016; Finn et al. 2017 MAML-RL): arm means mu ~ U[0, 1]^K, reward
r ~ Bernoulli(mu_a), a constant observation, ``horizon`` pulls per episode."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv


def _check_arms(n_arms: int) -> None:
    if n_arms < 2:
        raise ValueError(f"env_kwargs.n_arms={n_arms} must be >= 2 (a bandit needs a choice).")


class BanditEnv(gym.Env):
    """One Bernoulli bandit task (gymnasium API). Observation: the constant ``[0.]``. Task: ``{"means": (K,)}``,
    set by ``reset(options={"task": task})`` or :meth:`set_task`, sampled by :meth:`sample_tasks` from
    ``np_random``. Step noise: one uniform u; r = 1[u < mu_a]."""

    def __init__(self, n_arms: int = 5) -> None:
        _check_arms(n_arms)
        self.n_arms = n_arms
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(n_arms)
        self.task = {"means": np.full(n_arms, 0.5)}

    def sample_tasks(self, n: int, rng: np.random.Generator | None = None) -> list[dict[str, np.ndarray]]:
        """``n`` tasks drawn from ``rng`` (the env's ``np_random`` when None): the task protocol of
        :class:`~framework_plugins.meta_rl.envs.registered.TaskEnv`."""
        rng = self.np_random if rng is None else rng
        return [{"means": rng.random(self.n_arms)} for _ in range(n)]

    def set_task(self, task: dict[str, np.ndarray]) -> None:
        self.task = {"means": np.asarray(task["means"], dtype=np.float64)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if options and "task" in options:
            self.set_task(options["task"])
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = float(self.np_random.random() < self.task["means"][int(action)])
        return np.zeros(1, np.float32), reward, False, False, {}


class TensorBandit(TensorTaskEnv):
    """Batched :class:`BanditEnv`: tasks ``{"means": (T, K)}``."""

    discrete = True
    obs_dim = 1
    noise_spec = ("uniform",)

    def __init__(self, n_arms: int = 5, horizon: int = 1, dtype: torch.dtype = torch.float32) -> None:
        _check_arms(n_arms)
        if horizon < 1:
            raise ValueError(f"env_kwargs.horizon={horizon} must be >= 1.")
        self.n_arms = self.n_actions = n_arms
        self.horizon, self.dtype = horizon, dtype

    def sample_tasks(self, n: int, generator: torch.Generator | None = None) -> Tasks:
        return {"means": torch.rand(n, self.n_arms, generator=generator, dtype=self.dtype)}

    def reset(self, tasks: Tasks, n_traj: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self.means = tasks["means"]
        return torch.zeros(len(self.means), n_traj, 1, dtype=self.dtype)

    def step(self, action: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        mu = torch.gather(self.means, 1, action)  # (T, N)
        reward = (noise[..., 0] < mu).to(self.dtype)
        return torch.zeros(*action.shape, 1, dtype=self.dtype), reward, torch.zeros_like(action, dtype=torch.bool)
