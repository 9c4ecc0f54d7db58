"""MAML and SG-MRL meta-gradients as one differentiable surrogate (maximised), plus test-time adaptation.

Inner step (Finn et al. 2017, Eq. 1 for RL): theta_{k+1} = theta_k + alpha g_hat(theta_k, D_k), D_k ~ pi_{theta_k}.
Meta-objective (SG-MRL): V(theta) = E_{D_0..D_{K-1}} [ J(theta_K) ]. Its exact gradient is

    grad V = E[ d theta_K/d theta ^T grad J(theta_K) + J(theta_K) sum_k grad_theta log P(D_k; theta_k(theta)) ].

Estimators (``estimator``), from one outer batch D_o ~ pi_{theta_K}:

- ``sgmrl`` (default): the unbiased estimator of the SG-MRL theory. grad of L_pg(theta_K(theta); D_o) through the
  inner steps (second order) plus the score-function term ((J_hat(D_o) - b) / sigma) grad sum_k L_score(theta_k;
  D_k), sigma = the outer advantages' scale, b any baseline independent of the task's D_k: the leave-one-task-out
  mean of J_hat, or J_hat of an extra pre-update batch D_b ~ pi_theta of the same task (``pre_update``: removes the
  task-difficulty part of J_hat, which otherwise multiplies the zero-mean score). Per-step baselines b_{k,n,t}
  (:mod:`~framework_plugins.meta_rl.score_baselines`): ``inner_batch`` (J_hat of the other trajectories of the same
  inner batch, no extra rollout) and ``learned`` (a linear state/time-feature predictor of J_hat(D_o) fitted on the
  other tasks of the meta-batch). Unbiased for grad V under each (exact checks in the tests).
- ``sgmrl_released``: the score term as in the authors' released ``vpg_sgmrl.py`` (kristian-georgiev/SGMRL): the
  coefficient is stop_grad(mean over the steps of D_o of the outer advantages normalised per task, as their
  configs' ``normalize_adv: true`` does), times sum_{n,t} log pi_theta on the first inner batch D_0 only. A mean of
  advantages standardised to zero mean is 0 up to rounding, so this is MAML plus a term of size ~1e-17 (its
  expectation is exactly E[MAML]; biased for grad V). Offered to reproduce what was published, not as SG-MRL.
- ``maml``: the same without the score term (the usual second-order MAML; biased for grad V).
- ``fomaml``: first-order MAML, d theta_K / d theta := I.
- ``sgmrl_hessian_batch``: the Jacobian of each inner step is I + alpha H_hat(D_h) with the DiCE Hessian of an
  independent batch D_h ~ pi_{theta_k}, no score term (unbiased for grad J(theta + alpha grad J) only in the limit
  of exact inner gradients; biased for grad V).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from framework_plugins.meta_rl.advantages import Baseline, compute_advantages
from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv
from framework_plugins.meta_rl.estimators import (
    dice_surrogate,
    leave_one_task_out_mean,
    per_step_return,
    pg_surrogate,
    score_surrogate,
)
from framework_plugins.meta_rl.policy import MLPPolicy, Params, per_task
from framework_plugins.meta_rl.rollout import Trajectories, rollout
from framework_plugins.meta_rl.score_baselines import learned_baseline, leave_one_trajectory_out_return

Estimator = Literal["sgmrl", "sgmrl_released", "maml", "fomaml", "sgmrl_hessian_batch"]
ESTIMATORS = ("sgmrl", "sgmrl_released", "maml", "fomaml", "sgmrl_hessian_batch")
ScoreBaseline = Literal["leave_one_task_out", "pre_update", "inner_batch", "learned", "none"]
SCORE_BASELINES = ("leave_one_task_out", "pre_update", "inner_batch", "learned", "none")


@dataclass
class MetaStep:
    """One meta-iteration: ``surrogate`` (scalar, sum over tasks; its gradient is the meta-gradient estimate),
    undiscounted returns ``pre`` (on D_0) and ``post`` (on D_o), each ``(T,)``."""

    surrogate: torch.Tensor
    pre: torch.Tensor
    post: torch.Tensor


class MetaPolicyGradient(nn.Module):
    """The policy and the meta-gradient estimators (see module docstring). Args: ``inner_lr`` alpha, ``gamma``,
    ``gae_lambda``, ``baseline`` (``none``: reward-to-go; ``linear``: leave-one-out linear baseline + GAE),
    ``normalize_advantages``, ``estimator``, ``score_baseline`` (``leave_one_task_out``, ``pre_update``,
    ``inner_batch``, ``learned``, ``none``)."""

    def __init__(
        self,
        policy: MLPPolicy,
        inner_lr: float = 0.1,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        baseline: Baseline = "none",
        normalize_advantages: bool = False,
        estimator: Estimator = "sgmrl",
        score_baseline: ScoreBaseline = "leave_one_task_out",
    ) -> None:
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator={estimator!r} is unknown; choose one of {ESTIMATORS}.")
        if score_baseline not in SCORE_BASELINES:
            raise ValueError(f"score_baseline={score_baseline!r} is unknown; choose one of {SCORE_BASELINES}.")
        self.policy, self.inner_lr, self.gamma, self.gae_lambda = policy, inner_lr, gamma, gae_lambda
        self.baseline, self.normalize, self.estimator = baseline, normalize_advantages, estimator
        self.score_baseline = score_baseline

    def advantages(self, batch: Trajectories) -> tuple[torch.Tensor, torch.Tensor]:
        return compute_advantages(batch, self.gamma, self.gae_lambda, self.baseline, self.normalize)

    def log_prob(self, params: Params, batch: Trajectories) -> torch.Tensor:
        return self.policy.log_prob(params, batch.obs, batch.actions)

    def inner_step(
        self, params: Params, batch: Trajectories, create_graph: bool, logp: torch.Tensor | None = None
    ) -> Params:
        """theta + alpha g_hat(theta, D) for per-task params ``(T, ...)``; differentiable in theta when
        ``create_graph`` (second order), else with d theta'/d theta = I. ``logp``: log pi_theta on D if already
        computed."""
        adv, _ = self.advantages(batch)
        logp = self.log_prob(params, batch) if logp is None else logp
        surrogate = pg_surrogate(logp, adv, batch.mask).sum()
        grads = torch.autograd.grad(surrogate, list(params.values()), create_graph=create_graph)
        return {k: p + self.inner_lr * g for (k, p), g in zip(params.items(), grads, strict=True)}

    def hessian_batch_step(self, params: Params, batch: Trajectories, hessian_batch: Trajectories) -> Params:
        """Value theta + alpha g_hat(theta, D); Jacobian I + alpha H_hat_DiCE(theta, D_h)."""
        step = self.inner_step(params, batch, create_graph=False)
        dice = dice_surrogate(self.log_prob(params, hessian_batch), hessian_batch, self.gamma).sum()
        grads = torch.autograd.grad(dice, list(params.values()), create_graph=True)
        return {k: step[k] + self.inner_lr * (g - g.detach()) for k, g in zip(params, grads, strict=True)}

    def adapt(
        self,
        params: Params,
        batch: Trajectories,
        hessian_batch: Trajectories | None = None,
        logp: torch.Tensor | None = None,
    ) -> Params:
        """One training inner step with the Jacobian the estimator prescribes."""
        if self.estimator == "sgmrl_hessian_batch":
            if hessian_batch is None:
                raise ValueError("estimator='sgmrl_hessian_batch' needs an independent hessian_batch.")
            return self.hessian_batch_step(params, batch, hessian_batch)
        return self.inner_step(params, batch, self.estimator != "fomaml", logp)

    def outer_surrogate(
        self,
        adapted: Params,
        outer: Trajectories,
        inner: list[tuple[torch.Tensor, Trajectories]],
        pre_update: Trajectories | None = None,
        baseline: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-task surrogate ``(T,)``: L_pg(theta_K; D_o) [+ sum_k sum_{n,t} m ((J_hat(D_o) - b_{k,n,t}) / sigma)
        log pi_{theta_k} on D_k for ``sgmrl``; + stop(mean(A_norm(D_o))) L_score(theta_0; D_0) for
        ``sgmrl_released``]. ``inner`` lists (log pi_{theta_k} on D_k ``(T, N, H)``, D_k) of the inner steps, the
        log-probabilities differentiable in theta. ``pre_update``: an extra batch D_b ~ pi_theta, independent of the
        D_k, whose J_hat is b for ``score_baseline='pre_update'``. ``baseline``: given explicitly for exact
        expectations, whose rows are outcomes of one task, not tasks: b ``(T,)`` for ``leave_one_task_out`` in place
        of the mean over the other rows, the weights w ``(F,)`` for ``learned`` in place of the fit on the other
        rows."""
        adv, scale = self.advantages(outer)
        surrogate = pg_surrogate(self.log_prob(adapted, outer), adv, outer.mask)
        if self.estimator == "sgmrl_released":
            normalised, _ = compute_advantages(outer, self.gamma, self.gae_lambda, self.baseline, normalize=True)
            coefficient = (normalised * outer.mask).sum((1, 2)) / outer.mask.sum((1, 2))
            logp, first = inner[0]
            return surrogate + coefficient.detach() * score_surrogate(logp, first.mask)
        if self.estimator != "sgmrl":
            return surrogate
        value = per_step_return(outer, self.gamma)
        score = torch.zeros_like(value)
        for logp, batch in inner:
            coefficient = self.score_coefficient(value, batch, pre_update, baseline) / scale[:, None, None]
            score = score + (coefficient.detach() * logp * batch.mask).sum((1, 2))
        return surrogate + score

    def score_coefficient(
        self,
        value: torch.Tensor,
        batch: Trajectories,
        pre_update: Trajectories | None = None,
        baseline: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """J_hat(D_o) - b for every step of the inner batch D_k, ``(T, N, H)`` or broadcastable ``(T, 1, 1)``;
        ``value`` = J_hat(D_o) ``(T,)``; ``pre_update`` and ``baseline`` as in :meth:`outer_surrogate`."""
        if self.score_baseline == "leave_one_task_out":
            b = leave_one_task_out_mean(value) if baseline is None else baseline
        elif self.score_baseline == "pre_update":
            if pre_update is None:
                raise ValueError("score_baseline='pre_update' needs the independent pre-update batch D_b.")
            b = per_step_return(pre_update, self.gamma)
        elif self.score_baseline == "inner_batch":
            return value[:, None, None] - leave_one_trajectory_out_return(batch, self.gamma)[..., None]
        elif self.score_baseline == "learned":
            return value[:, None, None] - learned_baseline(batch, value, self.gamma, baseline)
        else:
            b = torch.zeros_like(value)
        return (value - b)[:, None, None]

    def meta_step(
        self,
        env: TensorTaskEnv,
        tasks: Tasks,
        n_traj: int,
        inner_steps: int = 1,
        generator: torch.Generator | None = None,
        params: Params | None = None,
    ) -> MetaStep:
        """Sample D_0..D_{K-1} (and D_h), adapt, sample D_o ~ pi_{theta_K}; return the surrogate and returns.
        ``params``: per-task parameters ``(T, ...)`` to start from (and to differentiate with respect to, which
        gives every task's own estimate); default the policy's own, broadcast to the T tasks."""
        if params is None:
            params = per_task(self.policy.params(), len(next(iter(tasks.values()))))
        pre_update = None
        if self.estimator == "sgmrl" and self.score_baseline == "pre_update":
            pre_update = rollout(env, self.policy, params, tasks, n_traj, generator)
        inner: list[tuple[torch.Tensor, Trajectories]] = []
        for _ in range(inner_steps):
            batch = rollout(env, self.policy, params, tasks, n_traj, generator)
            hessian_batch = None
            if self.estimator == "sgmrl_hessian_batch":
                hessian_batch = rollout(env, self.policy, params, tasks, n_traj, generator)
            logp = self.log_prob(params, batch)
            inner.append((logp, batch))
            params = self.adapt(params, batch, hessian_batch, logp)
        outer = rollout(env, self.policy, params, tasks, n_traj, generator)
        surrogate = self.outer_surrogate(params, outer, inner, pre_update).sum()
        return MetaStep(surrogate, inner[0][1].episode_return(), outer.episode_return())

    def adaptation_curve(
        self, env: TensorTaskEnv, tasks: Tasks, n_traj: int, steps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Test-time adaptation with fresh batches: returns ``(T, steps + 1)``, column k = mean undiscounted
        return of D_k ~ pi_{theta_k} (column 0: before adaptation)."""
        params = per_task({k: v.detach() for k, v in self.policy.params().items()}, len(next(iter(tasks.values()))))
        returns = []
        for k in range(steps + 1):
            batch = rollout(env, self.policy, params, tasks, n_traj, generator)
            returns.append(batch.episode_return())
            if k < steps:
                params = self.inner_step({n: p.detach().requires_grad_() for n, p in params.items()}, batch, False)
        return torch.stack(returns, dim=1)
