"""Surrogate objectives whose autograd derivatives are the (meta-)gradient estimators.

Notation (per task, per-step scaling): a batch D of N trajectories of horizon H; A the advantages; m the alive mask;
J(theta) = E[sum_t gamma^t r_t] / H the expected per-step return. All surrogates are maximised.

- policy gradient: L_pg(theta; D) = (1 / (N H)) sum_{n,t} m log pi_theta(a|s) A, grad = g_hat(theta, D).
- score: L_score(theta; D) = sum_{n,t} m log pi_theta(a|s) = log P(D; theta) + const.
- DiCE (Foerster et al. 2018): L_dice = (1 / (N H)) sum_{n,t} gamma^t r_t exp(c_t - stop(c_t)),
  c_t = sum_{t'<=t} m log pi; value J_hat, gradient the PG, Hessian
  sum_t gamma^t r_t (grad^2 c_t + grad c_t grad c_t^T), whose expectation is the exact Hessian of J.
"""

from __future__ import annotations

import torch

from framework_plugins.meta_rl.rollout import Trajectories


def pg_surrogate(logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_pg per task ``(T,)`` from logp, adv, mask ``(T, N, H)``."""
    n, h = logp.shape[1:]
    return (logp * adv * mask).sum((1, 2)) / (n * h)


def score_surrogate(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_score per task ``(T,)``: sum over the batch's steps of log pi (the policy part of log P(D; theta))."""
    return (logp * mask).sum((1, 2))


def dice_surrogate(logp: torch.Tensor, batch: Trajectories, gamma: float) -> torch.Tensor:
    """L_dice per task ``(T,)`` (DiCE "magic box" of the cumulative log-likelihood; Foerster et al. 2018, Eq. 4)."""
    cum = (logp * batch.mask).cumsum(-1)
    discount = gamma ** torch.arange(batch.horizon, dtype=logp.dtype)
    n, h = logp.shape[1:]
    return (discount * batch.rewards * torch.exp(cum - cum.detach())).sum((1, 2)) / (n * h)


def per_step_return(batch: Trajectories, gamma: float) -> torch.Tensor:
    """J_hat(D) = (1 / (N H)) sum_{n,t} gamma^t r_t per task ``(T,)``: the unbiased estimate of J."""
    discount = gamma ** torch.arange(batch.horizon, dtype=batch.rewards.dtype)
    return (discount * batch.rewards).sum((1, 2)) / (batch.rewards.shape[1] * batch.horizon)


def leave_one_task_out_mean(values: torch.Tensor) -> torch.Tensor:
    """b_i = mean_{j != i} values_j ``(T,)`` (zeros if T = 1): a baseline for task i independent of task i's data."""
    n = len(values)
    if n == 1:
        return torch.zeros_like(values)
    return (values.sum() - values) / (n - 1)
