"""Exact expected returns and exact trajectory enumeration for bandits and tabular MDPs (float64 tests and
reproduction): the ground truth the estimators are checked against."""

from __future__ import annotations

import itertools

import torch

from framework_plugins.meta_rl.envs.bandit import TensorBandit
from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv
from framework_plugins.meta_rl.envs.tabular_mdp import TensorTabularMDP
from framework_plugins.meta_rl.policy import MLPPolicy, Params
from framework_plugins.meta_rl.rollout import Trajectories


def action_probs(policy: MLPPolicy, params: Params, env: TensorTaskEnv) -> torch.Tensor:
    """pi(a | s) for every state: ``(S, A)`` (bandit: S = 1)."""
    obs = torch.eye(env.obs_dim, dtype=env.dtype) if isinstance(env, TensorTabularMDP) else torch.zeros(1, 1)
    return torch.softmax(policy.head(params, obs.to(env.dtype).unsqueeze(0)), -1)[0]


def exact_return(policy: MLPPolicy, params: Params, env: TensorTaskEnv, task: Tasks, gamma: float) -> torch.Tensor:
    """J(theta) = E[sum_t gamma^t r_t] / H for one task (``task`` tensors with leading dimension 1), differentiable
    in ``params``. Bandit: sum_t gamma^t pi . mu. MDP: forward recursion d_{t+1}(s') = sum_{s,a} d_t(s) pi(a|s)
    P(s'|s,a), d_0 = e_0, J = sum_t gamma^t sum_{s,a} d_t(s) pi(a|s) R(s,a)."""
    pi = action_probs(policy, params, env)
    if isinstance(env, TensorBandit):
        per_step = (pi[0] * task["means"][0]).sum()
        return per_step * sum(gamma**t for t in range(env.horizon)) / env.horizon
    if not isinstance(env, TensorTabularMDP):
        raise ValueError(f"exact_return supports bandit and tabular_mdp envs, not {type(env).__name__}.")
    transitions, rewards = task["transitions"][0], task["rewards"][0]
    d = torch.zeros(env.n_states, dtype=pi.dtype)
    d[0] = 1.0
    total = torch.zeros((), dtype=pi.dtype)
    for t in range(env.horizon):
        total = total + gamma**t * (d[:, None] * pi * rewards).sum()
        d = torch.einsum("s,sa,sap->p", d, pi, transitions)
    return total / env.horizon


def enumerate_trajectories(env: TensorTaskEnv, task: Tasks) -> tuple[Trajectories, torch.Tensor]:
    """Every trajectory of one task as a batch ``(1, M, H, ...)`` and its env log-probability ``(M,)`` (the
    product of reward / transition probabilities; the policy part is ``policy.log_prob``). Bandit: (a_t, r_t in
    {0, 1}) sequences; MDP (needs ``reward_std = 0``): (a_t, s_{t+1}) sequences from s_0 = 0."""
    h = env.horizon
    if isinstance(env, TensorBandit):
        mu = task["means"][0]
        rows = list(itertools.product(itertools.product(range(env.n_arms), (0, 1)), repeat=h))
        actions = torch.tensor([[a for a, _ in row] for row in rows])
        rewards = torch.tensor([[r for _, r in row] for row in rows], dtype=env.dtype)
        # xlogy: an arm mean of exactly 0 or 1 gives its impossible outcomes log-probability -inf, not 0 * log 0 = NaN
        p = mu[actions]
        env_logp = (torch.special.xlogy(rewards, p) + torch.special.xlogy(1 - rewards, 1 - p)).sum(-1)
        obs = torch.zeros(len(rows), h, 1, dtype=env.dtype)
    elif isinstance(env, TensorTabularMDP):
        if env.reward_std != 0:
            raise ValueError(f"enumeration needs env reward_std=0 (deterministic rewards), got {env.reward_std}.")
        transitions, mean_rewards = task["transitions"][0], task["rewards"][0]
        rows = list(itertools.product(itertools.product(range(env.n_actions), range(env.n_states)), repeat=h))
        actions = torch.tensor([[a for a, _ in row] for row in rows])
        nxt = torch.tensor([[s for _, s in row] for row in rows])
        rows_keep = nxt[:, -1] == 0  # s_H is never observed: keep one representative per prefix
        actions, nxt = actions[rows_keep], nxt[rows_keep]
        states = torch.cat([torch.zeros(len(nxt), 1, dtype=torch.long), nxt[:, :-1]], 1)
        rewards = mean_rewards[states, actions]
        env_logp = transitions[states[:, :-1], actions[:, :-1], nxt[:, :-1]].log().sum(-1)
        obs = torch.nn.functional.one_hot(states, env.n_states).to(env.dtype)
    else:
        raise ValueError(f"enumerate_trajectories supports bandit and tabular_mdp envs, not {type(env).__name__}.")
    batch = Trajectories(obs.unsqueeze(0), actions.unsqueeze(0), rewards.unsqueeze(0), torch.ones_like(rewards)[None])
    return batch, env_logp


def select(batch: Trajectories, index: torch.Tensor) -> Trajectories:
    """The batch made of trajectories ``index`` ``(N,)`` of an enumerated batch (task dimension kept)."""
    return Trajectories(batch.obs[:, index], batch.actions[:, index], batch.rewards[:, index], batch.mask[:, index])


def all_batches(n_trajectories: int, n: int) -> torch.Tensor:
    """Every ordered batch of ``n`` i.i.d. trajectories out of ``n_trajectories``: ``(n_trajectories^n, n)``."""
    return torch.tensor(list(itertools.product(range(n_trajectories), repeat=n)), dtype=torch.long).reshape(-1, n)
