"""HalfCheetahVel / HalfCheetahDir (Finn et al. 2017 MAML-RL) on gymnasium's MuJoCo ``HalfCheetah-v5``. Needs the
optional ``mujoco`` package (``pip install -e '.[mujoco]'``); imported lazily.

Vel: goal velocity v* ~ U[0, 2], reward -|v_x - v*| - 0.05 ||a||^2. Dir: direction d ~ {-1, +1},
reward d v_x - 0.05 ||a||^2 (MAML's control cost, not v5's 0.1)."""

from __future__ import annotations

from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from framework_plugins.meta_rl.envs.base import TaskDistribution, Tasks

CTRL_COST = 0.05
OBS_DIM, ACTION_DIM = 17, 6


def require_mujoco() -> None:
    """Raise ``ModuleNotFoundError`` with the fix if ``mujoco`` is not installed."""
    try:
        import mujoco  # noqa: F401
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "env='cheetah_vel'/'cheetah_dir' needs MuJoCo: pip install -e '.[mujoco]' (gymnasium[mujoco])."
        ) from err


class HalfCheetahTaskEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """HalfCheetah-v5 with the MAML task reward; task ``{"velocity": ()}`` or ``{"direction": ()}``.

    A standard gymnasium wrapper (takes the env, records its other arguments), so ``gym.make`` and ``check_env``
    can recreate it from its spec; :func:`make_half_cheetah_task_env` builds it on ``HalfCheetah-v5``."""

    def __init__(self, env: gym.Env, kind: Literal["vel", "dir"] = "vel") -> None:
        gym.utils.RecordConstructorArgs.__init__(self, kind=kind)
        gym.Wrapper.__init__(self, env)
        self.kind = kind
        self.task = {"velocity": np.array(1.0)} if kind == "vel" else {"direction": np.array(1.0)}

    def sample_tasks(self, n: int, rng: np.random.Generator | None = None) -> list[dict[str, np.ndarray]]:
        """``n`` tasks drawn from ``rng`` (the env's ``np_random`` when None): the task protocol of
        :class:`~framework_plugins.meta_rl.envs.registered.TaskEnv`."""
        rng = self.np_random if rng is None else rng
        if self.kind == "vel":
            return [{"velocity": np.array(rng.uniform(0.0, 2.0))} for _ in range(n)]
        return [{"direction": np.array(rng.choice([-1.0, 1.0]))} for _ in range(n)]

    def set_task(self, task: dict[str, np.ndarray]) -> None:
        self.task = {k: np.asarray(v, dtype=np.float64) for k, v in task.items()}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if options and "task" in options:
            self.set_task(options["task"])
        return self.env.reset(seed=seed)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, _, terminated, truncated, info = self.env.step(action)
        velocity, ctrl = info["x_velocity"], CTRL_COST * float(np.square(action).sum())
        if self.kind == "vel":
            reward = -abs(velocity - float(self.task["velocity"])) - ctrl
        else:
            reward = float(self.task["direction"]) * velocity - ctrl
        return obs, reward, terminated, truncated, info


def make_half_cheetah_task_env(kind: Literal["vel", "dir"] = "vel") -> HalfCheetahTaskEnv:
    """``HalfCheetahTaskEnv`` on gymnasium's ``HalfCheetah-v5``; raises the install fix when mujoco is missing."""
    require_mujoco()
    return HalfCheetahTaskEnv(gym.make("HalfCheetah-v5"), kind)


class CheetahTasks(TaskDistribution):
    """Task distribution and shapes of the cheetah families (MuJoCo steps them, through :class:`GymVectorTaskEnv`)."""

    discrete = False
    obs_dim, action_dim = OBS_DIM, ACTION_DIM

    def __init__(self, kind: Literal["vel", "dir"] = "vel", horizon: int = 100) -> None:
        self.kind, self.horizon = kind, horizon

    def sample_tasks(self, n: int, generator: torch.Generator | None = None) -> Tasks:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return {"velocity": 2.0 * u} if self.kind == "vel" else {"direction": torch.where(u < 0.5, -1.0, 1.0)}
