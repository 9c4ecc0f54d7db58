"""Meta-RL task families: gymnasium envs (API, reference) and batched tensor envs (speed); any registered gymnasium
env that follows the task protocol (:class:`~framework_plugins.meta_rl.envs.registered.TaskEnv`). Importing this
package registers the built-in envs with gymnasium (ids in :data:`GYM_IDS`)."""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym

from framework_plugins.meta_rl.envs.bandit import BanditEnv, TensorBandit
from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv, draw_noise
from framework_plugins.meta_rl.envs.point import PointNavEnv, TensorPointNav
from framework_plugins.meta_rl.envs.registered import GYM_IDS, TaskEnv, make_registered_env, register_builtin_envs
from framework_plugins.meta_rl.envs.tabular_mdp import TabularMDPEnv, TensorTabularMDP
from framework_plugins.meta_rl.envs.vector import GymVectorTaskEnv

ENVS = ("bandit", "tabular_mdp", "point", "cheetah_vel", "cheetah_dir")
# the names of ENVS, the built-in task families (tensor envs); any other env is a registered gymnasium id
EnvName = Literal["bandit", "tabular_mdp", "point", "cheetah_vel", "cheetah_dir"]

register_builtin_envs()


def make_env(env: str, **kwargs: Any) -> TensorTaskEnv:
    """The batched env of task family ``env``: one of :data:`ENVS` (``kwargs`` go to its constructor: ``horizon``,
    ``n_arms``, ``n_states``, ``n_actions``, ``reward_std``), else a registered gymnasium id (``id`` or
    ``module:id``) following the :class:`TaskEnv` protocol (:func:`make_registered_env`: ``horizon``, ``dtype``,
    the rest to ``gymnasium.make``)."""
    if env == "bandit":
        return TensorBandit(**kwargs)
    if env == "tabular_mdp":
        return TensorTabularMDP(**kwargs)
    if env == "point":
        return TensorPointNav(**kwargs)
    if env in ("cheetah_vel", "cheetah_dir"):
        from framework_plugins.meta_rl.envs.cheetah import CheetahTasks, make_half_cheetah_task_env, require_mujoco

        require_mujoco()
        kind = env.split("_")[1]
        return GymVectorTaskEnv(lambda: make_half_cheetah_task_env(kind), CheetahTasks(kind, **kwargs))
    return make_registered_env(env, **kwargs)


def make_gym_env(name: str, **kwargs: Any) -> gym.Env:
    """The gymnasium env of ``name`` (bandit, tabular_mdp, point) wrapped in ``TimeLimit(horizon)``."""
    horizon = kwargs.pop("horizon", {"bandit": 1, "tabular_mdp": 10, "point": 100}.get(name, 1))
    env = {"bandit": BanditEnv, "tabular_mdp": TabularMDPEnv, "point": PointNavEnv}.get(name)
    if env is None:
        raise ValueError(f"env={name!r} has no gymnasium version here; choose bandit, tabular_mdp or point.")
    return gym.wrappers.TimeLimit(env(**kwargs), max_episode_steps=horizon)


__all__ = [
    "ENVS",
    "GYM_IDS",
    "BanditEnv",
    "EnvName",
    "GymVectorTaskEnv",
    "PointNavEnv",
    "TabularMDPEnv",
    "TaskEnv",
    "Tasks",
    "TensorBandit",
    "TensorPointNav",
    "TensorTabularMDP",
    "TensorTaskEnv",
    "draw_noise",
    "make_env",
    "make_gym_env",
    "make_registered_env",
    "register_builtin_envs",
]
