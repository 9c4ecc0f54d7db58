"""Bias, variance and MSE of the meta-gradient estimators against the *exact* meta-gradient, as a function of the
inner batch size N, on one enumerable task (bandit, or tabular MDP with deterministic rewards; float64).

Setting (one inner step, |D_in| = |D_o| = N, reward-to-go advantages without baseline or normalisation, gamma = 1 or
horizon 1 so that the outer policy gradient is unbiased for grad J):

    V(theta) = E_{D ~ pi_theta^N} [ J(theta + alpha g_hat(theta, D)) ],   g_hat(theta, D) = (1/(N H)) sum_m c_m grad l_m

where the M enumerable trajectories tau_m have probabilities q_m(theta) = exp(log pi_theta(tau_m) + log P_env(tau_m))
and D enters only through its *counts* c in N^M (sum c = N; every estimator is symmetric in the trajectories of a
batch), l_m = sum_t log pi(a_t|s_t) A_t of tau_m. So every expectation over D is a sum over the C(N + M - 1, M - 1)
count vectors with multinomial weights P(c; theta) = N! prod_m q_m^{c_m} / c_m!, which is what makes N up to 32
enumerable (6545 count vectors for a 2-armed bandit, 435897 for 3 arms), where the trajectory-level enumeration of
``expectations.py`` (M^N ordered batches) stops at N = 2.

Exact expectations (theta' = theta'(c; theta) the adapted parameters, E_{D_o}[g_hat_o(theta')] = grad J(theta')):

- ``grad V`` = autograd of V = sum_c P(c) [ (d theta'/d theta)^T grad J(theta') + J(theta') grad log P(c) ].
- ``maml``: sum_c P(c) (d theta'/d theta)^T grad J(theta') (the first term only: biased).
- ``fomaml``: sum_c P(c) grad J(theta') (d theta'/d theta := I).
- ``sgmrl`` (score baseline none) and ``sgmrl_pre_update`` (b = J_hat of an independent batch D_b ~ pi_theta):
  E[MAML] + sum_c P(c) J(theta') grad log P(c), since E[J_hat(D_o) | D_in] = J(theta'), the score sum_n grad log
  pi(tau_n) has conditional mean grad log P(c) given the counts, and E[J_hat(D_b) score] = J(theta) E[score] = 0:
  = grad V (unbiased; the difference is rounding). The per-step baselines ``sgmrl_inner_batch`` and
  ``sgmrl_learned`` (:mod:`~framework_plugins.meta_rl.score_baselines`) have the same expectation (each b_{n,t} is
  independent of a_{n,t} given s_{n,t}); in the Monte-Carlo draws below the learned weights are fitted on the
  other copies of the task, which are independent of the copy they serve.
- ``sgmrl_released``: E[MAML] exactly, its coefficient (the mean of per-task standardised advantages) being 0.
- ``sgmrl_hessian_batch``: (I + alpha hess J(theta)) E[FO-MAML], as E[DiCE Hessian of D_h] = hess J(theta) for the
  independent D_h (Foerster et al. 2018) and hess J is symmetric.

The Monte-Carlo part draws R independent copies of the real estimator (``MetaPolicyGradient.meta_step`` on R copies
of the task, each copy's own gradient through per-task parameter leaves) and reports, relative to |grad V|:
bias = |E[g] - grad V| / |grad V| (exact), variance = tr Cov(g) / |grad V|^2 (MC, with its standard error),
MSE = bias^2 + variance, and mc_z = max_i |mean_i - E[g]_i| / se_i, the check that the real estimator's sample mean
agrees with the exact expectation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.func import hessian, vmap

from framework_plugins.meta_rl.advantages import compute_advantages
from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv
from framework_plugins.meta_rl.exact import enumerate_trajectories, exact_return
from framework_plugins.meta_rl.expectations import flatten_policy
from framework_plugins.meta_rl.meta import Estimator, MetaPolicyGradient, ScoreBaseline
from framework_plugins.meta_rl.policy import MLPPolicy, per_task

# study name -> (MetaPolicyGradient estimator, score baseline)
STUDY_ESTIMATORS: dict[str, tuple[Estimator, ScoreBaseline]] = {
    "sgmrl": ("sgmrl", "none"),
    "sgmrl_pre_update": ("sgmrl", "pre_update"),
    "sgmrl_inner_batch": ("sgmrl", "inner_batch"),
    "sgmrl_learned": ("sgmrl", "learned"),
    "sgmrl_released": ("sgmrl_released", "none"),
    "maml": ("maml", "none"),
    "fomaml": ("fomaml", "none"),
    "sgmrl_hessian_batch": ("sgmrl_hessian_batch", "none"),
}
STATS = ("bias", "variance", "variance_se", "mse", "mc_z")


@lru_cache(maxsize=64)
def count_vectors(m: int, n: int) -> torch.Tensor:
    """Every c in N^m with sum c = n, as rows ``(C(n + m - 1, m - 1), m)`` (long)."""
    if m == 1:
        return torch.tensor([[n]])
    blocks = []
    for first in range(n + 1):
        rest = count_vectors(m - 1, n - first)
        blocks.append(torch.cat([torch.full((len(rest), 1), first), rest], 1))
    return torch.cat(blocks)


def check_study_setting(meta: MetaPolicyGradient, env: TensorTaskEnv) -> None:
    """Raise ValueError unless the exact expectations of this module hold: reward-to-go advantages without a
    baseline or normalisation (g_hat additive over trajectories) and gamma = 1 or horizon 1 (E[g_hat_o] = grad J)."""
    if meta.baseline != "none" or meta.normalize:
        raise ValueError("the estimator study needs baseline: none and normalize_advantages: false.")
    if meta.gamma != 1.0 and env.horizon != 1:
        raise ValueError(f"the estimator study needs gamma: 1.0 (or horizon 1), got gamma={meta.gamma}.")


def exact_expectations(
    policy: MLPPolicy, env: TensorTaskEnv, task: Tasks, inner_lr: float, gamma: float, n: int
) -> dict[str, torch.Tensor]:
    """Flat ``(P,)`` exact grad V (key ``grad_v``) and E[estimator] for every key of :data:`STUDY_ESTIMATORS`, for
    inner batches of size ``n`` (formulas in the module docstring; sums over count vectors)."""
    trajs, env_logp = enumerate_trajectories(env, task)
    adv, _ = compute_advantages(trajs, gamma)
    flat0, unflatten = flatten_policy(policy)
    theta = flat0.clone().requires_grad_()
    counts = count_vectors(trajs.rewards.shape[1], n).to(env.dtype)

    def log_pi(f: torch.Tensor) -> torch.Tensor:  # (M, H)
        return policy.log_prob(per_task(unflatten(f), 1), trajs.obs, trajs.actions)[0]

    def step_terms(f: torch.Tensor) -> torch.Tensor:  # l_m, (M,)
        return (log_pi(f) * adv[0] * trajs.mask[0]).sum(-1)

    def value(f: torch.Tensor) -> torch.Tensor:
        return exact_return(policy, unflatten(f), env, task, gamma)

    grads = torch.autograd.functional.jacobian(step_terms, theta, create_graph=True)  # (M, P)
    adapted = theta + inner_lr * counts @ grads / (n * env.horizon)  # (C, P)
    log_q = log_pi(theta).sum(-1) + env_logp
    terms = torch.where(counts > 0, counts * log_q, torch.zeros((), dtype=env.dtype))
    log_p = math.lgamma(n + 1) - torch.lgamma(counts + 1).sum(-1) + terms.sum(-1)
    p = log_p.exp()
    j_adapted = vmap(value)(adapted)
    grad_v = torch.autograd.grad((p * j_adapted).sum(), theta, retain_graph=True)[0]
    maml = torch.autograd.grad((p.detach() * j_adapted).sum(), theta, retain_graph=True)[0]
    score = torch.autograd.grad((p.detach() * j_adapted.detach() * log_p).sum(), theta)[0]
    frozen = adapted.detach().requires_grad_()
    fomaml = torch.autograd.grad((p.detach() * vmap(value)(frozen)).sum(), frozen)[0].sum(0)
    hess = hessian(value)(flat0)
    sgmrl = maml + score
    return {
        "grad_v": grad_v,
        "sgmrl": sgmrl,
        "sgmrl_pre_update": sgmrl,
        "sgmrl_inner_batch": sgmrl,
        "sgmrl_learned": sgmrl,
        "sgmrl_released": maml,
        "maml": maml,
        "fomaml": fomaml,
        "sgmrl_hessian_batch": fomaml + inner_lr * hess @ fomaml,
    }


def sample_estimates(
    meta: MetaPolicyGradient, env: TensorTaskEnv, task: Tasks, n: int, draws: int, generator: torch.Generator
) -> torch.Tensor:
    """``draws`` independent flat estimates ``(draws, P)`` of ``meta``'s estimator with |D| = ``n``: one
    ``meta_step`` on ``draws`` copies of ``task``, differentiated with respect to per-copy parameter leaves."""
    tasks = {k: v.expand(draws, *v.shape[1:]) for k, v in task.items()}
    leaves = {k: v.detach().expand(draws, *v.shape).clone().requires_grad_() for k, v in meta.policy.params().items()}
    step = meta.meta_step(env, tasks, n, 1, generator, leaves)
    grads = torch.autograd.grad(step.surrogate, list(leaves.values()))
    return torch.cat([g.reshape(draws, -1) for g in grads], 1)


@dataclass(frozen=True)
class StudyRow:
    """One (estimator, N): relative ``bias`` (exact), ``variance`` and its standard error ``variance_se`` (MC),
    ``mse`` = bias^2 + variance, ``mc_z`` (MC mean vs exact expectation, max over coordinates, in standard errors),
    and ``grad_norm`` = |grad V|."""

    estimator: str
    n: int
    bias: float
    variance: float
    variance_se: float
    mse: float
    mc_z: float
    grad_norm: float


def summarize(estimates: torch.Tensor, expectation: torch.Tensor, grad_v: torch.Tensor) -> dict[str, float]:
    """The :data:`STATS` of draws ``(R, P)`` of an estimator with exact expectation and exact grad V ``(P,)``."""
    norm2 = grad_v.square().sum()
    draws = len(estimates)
    mean = estimates.mean(0)
    spread = (estimates - mean).square().sum(1) * draws / (draws - 1)  # unbiased for tr Cov, per draw
    se = estimates.std(0) / math.sqrt(draws)
    varying = se > 0
    z = ((mean - expectation)[varying] / se[varying]).abs().max().item() if varying.any() else 0.0
    bias = ((expectation - grad_v).norm() / norm2.sqrt()).item()
    variance = (spread.mean() / norm2).item()
    return {
        "bias": bias,
        "variance": variance,
        "variance_se": (spread.std() / math.sqrt(draws) / norm2).item(),
        "mse": bias**2 + variance,
        "mc_z": z,
    }


def estimator_study(
    policy: MLPPolicy,
    env: TensorTaskEnv,
    task: Tasks,
    inner_lr: float,
    gamma: float,
    sizes: tuple[int, ...],
    draws: int,
    seed: int,
    chunk: int = 1000,
) -> list[StudyRow]:
    """Rows for every estimator of :data:`STUDY_ESTIMATORS` and every N in ``sizes``: ``policy``, ``env`` (float64,
    enumerable) and one ``task`` (leading dimension 1); ``draws`` Monte-Carlo estimates per (estimator, N) in
    chunks of ``chunk`` copies, noise from a generator seeded by ``seed`` + N."""
    rows = []
    for n in sizes:
        exact = exact_expectations(policy, env, task, inner_lr, gamma, n)
        grad_norm = exact["grad_v"].norm().item()
        for name, (estimator, score_baseline) in STUDY_ESTIMATORS.items():
            meta = MetaPolicyGradient(policy, inner_lr, gamma, estimator=estimator, score_baseline=score_baseline)
            check_study_setting(meta, env)
            generator = torch.Generator().manual_seed(seed + n)
            sizes_left = [min(chunk, draws - i) for i in range(0, draws, chunk)]
            estimates = torch.cat([sample_estimates(meta, env, task, n, k, generator) for k in sizes_left])
            rows.append(StudyRow(name, n, **summarize(estimates, exact[name], exact["grad_v"]), grad_norm=grad_norm))
    return rows
