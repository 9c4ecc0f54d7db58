"""Any gymnasium task env as a :class:`TensorTaskEnv`, through ``gymnasium.vector.SyncVectorEnv`` (one Python env
per task x trajectory). Used for MuJoCo tasks (no tensor version) and as the speed baseline of the tensor envs."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from framework_plugins.meta_rl.envs.base import TaskDistribution, Tasks, TensorTaskEnv


class GymVectorTaskEnv(TensorTaskEnv):
    """Steps T x N copies of ``env_fn()`` (each must have ``set_task(dict)``) for exactly ``horizon`` steps after
    each reset; an episode that terminates early is reset in the same step (``AutoresetMode.SAME_STEP``) and its
    later steps are masked out by :func:`rollout`, as for the tensor envs. Task sampling and the shape attributes
    come from ``like`` (a tensor env or task distribution of the same family). Each env's own ``np_random`` (seeded at
    reset from ``generator``) supplies its step noise, so ``noise`` is ignored."""

    def __init__(self, env_fn: Callable[[], gym.Env], like: TaskDistribution) -> None:
        self.env_fn, self.like = env_fn, like
        for name in ("obs_dim", "discrete", "n_actions", "action_dim", "horizon", "dtype"):
            setattr(self, name, getattr(like, name))
        self.vec: SyncVectorEnv | None = None

    def sample_tasks(self, n: int, generator: torch.Generator | None = None) -> Tasks:
        return self.like.sample_tasks(n, generator)

    def reset(self, tasks: Tasks, n_traj: int, generator: torch.Generator | None = None) -> torch.Tensor:
        n_tasks = len(next(iter(tasks.values())))
        size = n_tasks * n_traj
        if self.vec is None or self.vec.num_envs != size:
            if self.vec is not None:
                self.vec.close()
            self.vec = SyncVectorEnv([self.env_fn] * size, autoreset_mode=AutoresetMode.SAME_STEP)
        for i, env in enumerate(self.vec.envs):
            env.get_wrapper_attr("set_task")({k: v[i // n_traj].numpy() for k, v in tasks.items()})
        seeds = torch.randint(0, 2**31 - 1, (size,), generator=generator).tolist()
        obs, _ = self.vec.reset(seed=seeds)
        self.shape = (n_tasks, n_traj)
        return torch.as_tensor(obs, dtype=self.dtype).reshape(*self.shape, -1)

    def step(self, action: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        flat = action.reshape(self.shape[0] * self.shape[1], *action.shape[2:]).numpy()
        obs, reward, terminated, _, _ = self.vec.step(flat.astype(np.int64) if self.discrete else flat)
        return (
            torch.as_tensor(obs, dtype=self.dtype).reshape(*self.shape, -1),
            torch.as_tensor(reward, dtype=self.dtype).reshape(self.shape),
            torch.as_tensor(terminated).reshape(self.shape),
        )

    def random_step(self, action: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        return self.step(action, None)
