"""Exact expectations of the meta-objective and of the meta-gradient estimators, by enumerating every inner batch
D_in (and every one-trajectory outer batch D_o) of a bandit or a tabular MDP: the ground truth of the tests and of
the reproduction's exactness table (float64)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import hessian

from framework_plugins.meta_rl.advantages import compute_advantages
from framework_plugins.meta_rl.envs.bandit import TensorBandit
from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv
from framework_plugins.meta_rl.envs.tabular_mdp import TensorTabularMDP
from framework_plugins.meta_rl.estimators import dice_surrogate, pg_surrogate
from framework_plugins.meta_rl.exact import all_batches, enumerate_trajectories, exact_return, select
from framework_plugins.meta_rl.meta import MetaPolicyGradient
from framework_plugins.meta_rl.policy import MLPPolicy, Params, per_task
from framework_plugins.meta_rl.rollout import Trajectories
from framework_plugins.meta_rl.score_baselines import score_features


def bandit_setup(
    seed: int = 0, n_arms: int = 3, hidden: tuple[int, ...] = (4,)
) -> tuple[TensorBandit, Tasks, MLPPolicy]:
    """A small enumerable case: a Bernoulli bandit task (``n_arms`` arms, horizon 1, float64) drawn from a
    generator seeded by ``seed``, and a float64 categorical MLP policy initialised after ``torch.manual_seed(seed)``
    (the global RNG is reseeded)."""
    torch.manual_seed(seed)
    env = TensorBandit(n_arms=n_arms, horizon=1, dtype=torch.float64)
    task = env.sample_tasks(1, torch.Generator().manual_seed(seed))
    return env, task, MLPPolicy(1, n_arms, True, hidden).double()


def mdp_setup(
    seed: int = 0, horizon: int = 3, hidden: tuple[int, ...] = (4,)
) -> tuple[TensorTabularMDP, Tasks, MLPPolicy]:
    """A small enumerable case: a 2-state 2-action tabular MDP task with deterministic rewards (float64) drawn from
    a generator seeded by ``seed``, and a float64 categorical MLP policy initialised after
    ``torch.manual_seed(seed)`` (the global RNG is reseeded)."""
    torch.manual_seed(seed)
    env = TensorTabularMDP(n_states=2, n_actions=2, horizon=horizon, reward_std=0.0, dtype=torch.float64)
    task = env.sample_tasks(1, torch.Generator().manual_seed(seed))
    return env, task, MLPPolicy(2, 2, True, hidden).double()


def as_tasks(batch: Trajectories) -> Trajectories:
    """A one-task batch ``(1, M, ...)`` as M one-trajectory tasks ``(M, 1, ...)``."""
    return Trajectories(*(t.transpose(0, 1) for t in (batch.obs, batch.actions, batch.rewards, batch.mask)))


def repeat_task(batch: Trajectories, n: int) -> Trajectories:
    """A one-task batch repeated for ``n`` tasks (a view)."""
    return Trajectories(*(t.expand(n, *t.shape[1:]) for t in (batch.obs, batch.actions, batch.rewards, batch.mask)))


def batch_probabilities(
    meta: MetaPolicyGradient, params: Params, batches: torch.Tensor, trajs: Trajectories, env_logp: torch.Tensor
) -> torch.Tensor:
    """P(D; params) ``(B,)`` of every enumerated batch (rows of trajectory indices), differentiable in params."""
    logq = meta.log_prob(params, trajs).sum(-1)[0] + env_logp
    return logq[batches].sum(-1).exp()


def exact_meta_objective(meta: MetaPolicyGradient, env: TensorTaskEnv, task: Tasks, n_inner: int) -> torch.Tensor:
    """V(theta) = sum_D P(D; theta) J(theta + alpha g_hat(theta, D)) over all |D| = n_inner batches, J exact;
    differentiable in the policy's parameters."""
    trajs, env_logp = enumerate_trajectories(env, task)
    batches = all_batches(trajs.rewards.shape[1], n_inner)
    params = per_task(meta.policy.params(), 1)
    value = torch.zeros((), dtype=env.dtype)
    for w, index in zip(batch_probabilities(meta, params, batches, trajs, env_logp), batches, strict=True):
        adapted = meta.inner_step(params, select(trajs, index), create_graph=True)
        value = value + w * exact_return(meta.policy, {k: v[0] for k, v in adapted.items()}, env, task, meta.gamma)
    return value


def expected_estimator(
    meta: MetaPolicyGradient,
    env: TensorTaskEnv,
    task: Tasks,
    n_inner: int,
    other_tasks_return: float = 0.0,
    learned_weights: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """E_{D_in, D_o}[meta-gradient estimate of ``meta.estimator``] for one task, with |D_o| = 1 (one inner step, no
    independent Hessian batch): sum over D_in of P(D_in; theta) sum over outer trajectories tau of P(tau; theta')
    grad(outer surrogate), one gradient per parameter tensor. With ``score_baseline='pre_update'`` the
    one-trajectory pre-update batch D_b ~ pi_theta is enumerated too.

    With ``score_baseline='leave_one_task_out'`` the task's b is the mean J_hat of the *other* tasks of the
    meta-batch, independent of this task's batches; the estimate is linear in b, so its expectation is the one at
    the constant b = E[b] = ``other_tasks_return`` (0: a meta-batch of one task, whose b is 0). Without advantage
    normalisation (sigma = 1) E[b grad L_score] = E[b] E[grad log P(D_in)] = 0, so every value gives the same
    result (that of ``score_baseline='none'``). The enumerated outer trajectories are outcomes of one task, never
    pseudo-tasks baselining each other. Likewise ``score_baseline='learned'`` fits its weights on the other tasks:
    the expectation is the one at the constant w = ``learned_weights`` ``(F,)`` (None: zeros, the fit of a
    meta-batch of one task)."""
    trajs, env_logp = enumerate_trajectories(env, task)
    n_traj = trajs.rewards.shape[1]
    batches = all_batches(n_traj, n_inner)
    params = per_task(meta.policy.params(), 1)
    inner_weights = batch_probabilities(meta, params, batches, trajs, env_logp).detach()
    outer = as_tasks(trajs)
    many_params = {k: v.expand(n_traj, *v.shape[1:]) for k, v in params.items()}
    pre: list[tuple[Trajectories | None, torch.Tensor]] = [(None, torch.ones((), dtype=env.dtype))]
    if meta.score_baseline == "pre_update":
        q = (meta.log_prob(params, trajs).sum(-1)[0] + env_logp).exp().detach()
        pre = [(repeat_task(select(trajs, torch.tensor([j])), n_traj), q[j]) for j in range(n_traj)]
    baseline = torch.full((n_traj,), other_tasks_return, dtype=env.dtype)
    if meta.score_baseline == "learned":
        n_features = score_features(trajs, meta.gamma).shape[-1]
        zeros = torch.zeros(n_features, dtype=env.dtype)
        baseline = zeros if learned_weights is None else learned_weights
    total = torch.zeros((), dtype=env.dtype)
    for w_in, index in zip(inner_weights, batches, strict=True):
        inner_batch = select(trajs, index)
        adapted = meta.adapt(params, inner_batch)
        outer_w = (meta.log_prob(adapted, trajs).sum(-1)[0] + env_logp).exp().detach()
        many = {k: v.expand(n_traj, *v.shape[1:]) for k, v in adapted.items()}
        inner_many = repeat_task(inner_batch, n_traj)
        inner_terms = [(meta.log_prob(many_params, inner_many), inner_many)]
        for pre_batch, w_pre in pre:
            surrogate = meta.outer_surrogate(many, outer, inner_terms, pre_batch, baseline)
            total = total + w_in * w_pre * (outer_w * surrogate).sum()
    return list(torch.autograd.grad(total, list(meta.policy.parameters())))


def flatten_policy(policy: MLPPolicy) -> tuple[torch.Tensor, Callable[[torch.Tensor], Params]]:
    """The policy's parameters as one flat vector and the map back to a params dict."""
    names = [n for n, _ in policy.named_parameters()]
    shapes = [p.shape for p in policy.parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])

    def unflatten(flat: torch.Tensor) -> Params:
        out, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            out[name] = flat[i : i + shape.numel()].reshape(shape)
            i += shape.numel()
        return out

    return flat0, unflatten


def hessians(policy: MLPPolicy, env: TensorTaskEnv, task: Tasks, gamma: float) -> dict[str, torch.Tensor]:
    """Flat-parameter Hessians ``(P, P)``: ``exact`` = hess J (autograd of the exact J), ``dice`` = E[hess L_dice]
    (the unbiased estimator: sum_t gamma^t r_t (hess c_t + grad c_t grad c_t^T)), ``reinforce`` = E[hess L_pg]
    with reward-to-go (drops the outer products: biased); expectations exact over all trajectories."""
    trajs, env_logp = enumerate_trajectories(env, task)
    per = as_tasks(trajs)
    flat0, unflatten = flatten_policy(policy)

    def logp(flat: torch.Tensor) -> torch.Tensor:  # (M, 1, H)
        return policy.log_prob(per_task(unflatten(flat), 1), trajs.obs, trajs.actions).transpose(0, 1)

    weights = (logp(flat0).sum((1, 2)) + env_logp).exp().detach()
    adv, _ = compute_advantages(per, gamma)
    return {
        "exact": hessian(lambda f: exact_return(policy, unflatten(f), env, task, gamma))(flat0),
        "dice": hessian(lambda f: (weights * dice_surrogate(logp(f), per, gamma)).sum())(flat0),
        "reinforce": hessian(lambda f: (weights * pg_surrogate(logp(f), adv, per.mask)).sum())(flat0),
    }
