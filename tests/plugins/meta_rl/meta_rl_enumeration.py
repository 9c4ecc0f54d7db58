"""Small float64 bandit / tabular-MDP set-ups shared by the meta-RL tests."""

from __future__ import annotations

import torch

from framework_plugins.meta_rl.envs import TensorBandit, TensorTabularMDP
from framework_plugins.meta_rl.policy import MLPPolicy


def bandit_setup(seed: int = 0, n_arms: int = 3, hidden: tuple[int, ...] = (4,)):
    """A 3-armed Bernoulli bandit task, horizon 1, and a float64 categorical policy."""
    torch.manual_seed(seed)
    env = TensorBandit(n_arms=n_arms, horizon=1, dtype=torch.float64)
    task = env.sample_tasks(1, torch.Generator().manual_seed(seed))
    return env, task, MLPPolicy(1, n_arms, True, hidden).double()


def mdp_setup(seed: int = 0, horizon: int = 3, hidden: tuple[int, ...] = (4,)):
    """A 2-state 2-action MDP task with deterministic rewards, and a float64 categorical policy."""
    torch.manual_seed(seed)
    env = TensorTabularMDP(n_states=2, n_actions=2, horizon=horizon, reward_std=0.0, dtype=torch.float64)
    task = env.sample_tasks(1, torch.Generator().manual_seed(seed))
    return env, task, MLPPolicy(2, 2, True, hidden).double()
