"""Bring your own task family: any gymnasium env registered with ``gymnasium.register`` that follows the task
protocol (:class:`TaskEnv`) trains with MetaRL by its id, stepped through ``gymnasium.vector.SyncVectorEnv``.

The built-in gymnasium envs are registered here as ``framework/Bandit-v0``, ``framework/TabularMDP-v0``,
``framework/PointNav-v0``, ``framework/HalfCheetahVel-v0`` and ``framework/HalfCheetahDir-v0`` (the last two need
MuJoCo), so ``gym.make("framework/PointNav-v0")`` works once ``framework_plugins.meta_rl`` is imported (or with the
id ``framework_plugins.meta_rl.envs:framework/PointNav-v0``, which imports it).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from framework_plugins.meta_rl.envs.base import TaskDistribution, Tasks
from framework_plugins.meta_rl.envs.vector import GymVectorTaskEnv

# built-in name -> (gymnasium id, entry point, default horizon = max_episode_steps, constructor kwargs)
GYM_IDS: dict[str, tuple[str, str, int, dict[str, Any]]] = {
    "bandit": ("framework/Bandit-v0", "framework_plugins.meta_rl.envs.bandit:BanditEnv", 1, {}),
    "tabular_mdp": ("framework/TabularMDP-v0", "framework_plugins.meta_rl.envs.tabular_mdp:TabularMDPEnv", 10, {}),
    "point": ("framework/PointNav-v0", "framework_plugins.meta_rl.envs.point:PointNavEnv", 100, {}),
    "cheetah_vel": (
        "framework/HalfCheetahVel-v0",
        "framework_plugins.meta_rl.envs.cheetah:make_half_cheetah_task_env",
        100,
        {"kind": "vel"},
    ),
    "cheetah_dir": (
        "framework/HalfCheetahDir-v0",
        "framework_plugins.meta_rl.envs.cheetah:make_half_cheetah_task_env",
        100,
        {"kind": "dir"},
    ),
}
PROTOCOL = ("sample_tasks", "set_task")  # the methods of TaskEnv


class TaskEnv(Protocol):
    """What a gymnasium env (or a wrapper of it, found through ``get_wrapper_attr``) needs for meta-RL.

    Also required: a flat ``Box`` observation space (shape ``(obs_dim,)``) and a ``Discrete`` or flat ``Box``
    action space, and a horizon (``max_episode_steps`` of its registration, or ``env_kwargs.horizon``). Each
    episode runs exactly ``horizon`` steps; one that terminates earlier is masked from then on. Step randomness
    must come from the env's own ``np_random`` (seeded at reset), so runs are reproducible.
    """

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
        """``n`` tasks drawn with ``rng`` only (not the env's state): each a dict of arrays of fixed shapes, the
        same keys for every task (e.g. ``{"goal": array of shape (2,)}``)."""

    def set_task(self, task: dict[str, np.ndarray]) -> None:
        """Make ``task`` (one of :meth:`sample_tasks`'s dicts) the task of the next episodes."""


def register_builtin_envs() -> None:
    """Register the built-in gymnasium task envs under the ids of :data:`GYM_IDS` (once per process)."""
    for env_id, entry_point, horizon, kwargs in GYM_IDS.values():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, max_episode_steps=horizon, kwargs=kwargs)


def _env_error(env_id: str, problem: str) -> ValueError:
    return ValueError(f"model.init_args.env={env_id!r}: {problem}")


class GymTasks(TaskDistribution):
    """Task distribution and shapes of a registered env, read from one instance ``probe`` (see :class:`TaskEnv`);
    tasks are drawn by the env's ``sample_tasks`` with a NumPy generator seeded from the torch ``generator``."""

    def __init__(self, env_id: str, probe: gym.Env, horizon: int, dtype: torch.dtype) -> None:
        self.env_id, self.probe, self.horizon, self.dtype = env_id, probe, horizon, dtype
        obs, act = probe.observation_space, probe.action_space
        if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
            raise _env_error(
                env_id,
                f"observation_space is {obs}; a flat Box (obs_dim,) is needed (wrap the env in "
                "gymnasium.wrappers.FlattenObservation in its entry point).",
            )
        self.obs_dim = obs.shape[0]
        self.discrete = isinstance(act, gym.spaces.Discrete)
        if self.discrete:
            self.n_actions = int(act.n)
        elif isinstance(act, gym.spaces.Box) and len(act.shape) == 1:
            self.action_dim = act.shape[0]
        else:
            raise _env_error(env_id, f"action_space is {act}; a Discrete or flat Box (action_dim,) is needed.")
        self.sample_tasks(2, torch.Generator().manual_seed(0))  # the protocol's return value, checked once

    def sample_tasks(self, n: int, generator: torch.Generator | None = None) -> Tasks:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        drawn = self.probe.get_wrapper_attr("sample_tasks")(n, np.random.default_rng(seed))
        if not (isinstance(drawn, list | tuple) and len(drawn) == n and all(isinstance(t, dict) for t in drawn)):
            raise _env_error(
                self.env_id, f"sample_tasks({n}, rng) returned {type(drawn).__name__}; a list of {n} dicts."
            )
        keys = set(drawn[0])
        if not keys or any(set(t) != keys for t in drawn):
            raise _env_error(self.env_id, "sample_tasks returned tasks with different or no keys; use the same keys.")
        return {k: torch.as_tensor(np.stack([np.asarray(t[k]) for t in drawn])) for k in sorted(keys)}


def make_registered_env(
    env_id: str, horizon: int | None = None, dtype: torch.dtype = torch.float32, **kwargs: Any
) -> GymVectorTaskEnv:
    """The registered gymnasium env ``env_id`` (``id`` or ``module:id``, which imports ``module`` first) as a
    batched task env. ``horizon`` defaults to the registration's ``max_episode_steps``; ``kwargs`` go to
    ``gymnasium.make``. Raises ``ValueError`` naming the id and the fix when it is not registered, lacks a method of
    :class:`TaskEnv` or has unsupported spaces."""
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise _env_error(
                env_id, f"cannot import {module!r} ({err}); name the module that calls gymnasium.register for it."
            ) from err
    try:
        spec = gym.spec(name)
    except gym.error.Error as err:
        raise _env_error(
            env_id,
            f"not a built-in task family and not a registered gymnasium id ({err}). Register it with "
            "gymnasium.register(id, entry_point, max_episode_steps) in a module and give env as 'module:id' so the "
            "module is imported first.",
        ) from err
    horizon = horizon or spec.max_episode_steps
    if not horizon or horizon < 1:
        raise _env_error(
            env_id, "has no horizon; set model.init_args.env_kwargs.horizon or register max_episode_steps."
        )
    env_fn = functools.partial(gym.make, name, max_episode_steps=horizon, **kwargs)
    probe = env_fn()
    missing = [name for name in PROTOCOL if not _has_method(probe, name)]
    if missing:
        raise _env_error(
            env_id,
            f"the env has no {' and no '.join(missing)}; meta-RL needs sample_tasks(n, rng) -> list of task dicts "
            "and set_task(task) (the TaskEnv protocol, plugins/meta_rl/README.md).",
        )
    return GymVectorTaskEnv(env_fn, GymTasks(env_id, probe, horizon, dtype))


def _has_method(env: gym.Env, name: str) -> bool:
    try:
        return callable(env.get_wrapper_attr(name))
    except AttributeError:
        return False
