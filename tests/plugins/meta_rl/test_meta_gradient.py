"""SG-MRL vs MAML meta-gradients against the exact gradient of the stochastic-inner objective
V(theta) = E_D[J(theta + alpha g_hat(theta, D))], all expectations by exact enumeration in float64."""

from __future__ import annotations

import pytest
import torch

from framework_plugins.meta_rl.exact import all_batches, enumerate_trajectories, exact_return, select
from framework_plugins.meta_rl.expectations import bandit_setup, exact_meta_objective, expected_estimator, mdp_setup
from framework_plugins.meta_rl.meta import MetaPolicyGradient
from framework_plugins.meta_rl.policy import per_task

CASES = {
    "bandit_n2": (bandit_setup, {}, 2, 0.5, 1.0),
    "mdp_h3_n1": (mdp_setup, {"horizon": 3}, 1, 0.5, 1.0),
    "mdp_h2_n2": (mdp_setup, {"horizon": 2}, 2, 0.5, 1.0),
}


def _grad_v(meta, env, task, n_inner):
    return torch.autograd.grad(exact_meta_objective(meta, env, task, n_inner), list(meta.policy.parameters()))


def _max_err(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_sgmrl_expectation_equals_exact_meta_gradient_and_maml_does_not(case):
    setup, kwargs, n_inner, alpha, gamma = CASES[case]
    env, task, policy = setup(**kwargs)
    sgmrl = MetaPolicyGradient(policy, alpha, gamma, estimator="sgmrl", score_baseline="none")
    maml = MetaPolicyGradient(policy, alpha, gamma, estimator="maml")
    exact = _grad_v(sgmrl, env, task, n_inner)
    scale = max(g.abs().max().item() for g in exact)
    assert scale > 1e-3  # a non-trivial gradient
    assert _max_err(expected_estimator(sgmrl, env, task, n_inner), exact) < 1e-12
    # naive MAML (no score term) is biased for grad V by a visible margin
    assert _max_err(expected_estimator(maml, env, task, n_inner), exact) > 1e-3 * scale


def test_score_term_with_task_independent_baseline_stays_unbiased():
    """Subtracting a constant b (any value not depending on D_in) from J_hat leaves the expectation exact."""

    class ShiftedBaseline(MetaPolicyGradient):
        def outer_surrogate(self, adapted, outer, inner, pre_update=None, baseline=None):
            base = super().outer_surrogate(adapted, outer, inner, pre_update, baseline)
            score = sum(logp.mul(d.mask).sum((1, 2)) for logp, d in inner)
            return base - 0.37 * score  # b = 0.37 (sigma = 1)

    env, task, policy = bandit_setup(seed=1)
    meta = ShiftedBaseline(policy, 0.5, 1.0, estimator="sgmrl", score_baseline="none")
    assert _max_err(expected_estimator(meta, env, task, 2), _grad_v(meta, env, task, 2)) < 1e-12


@pytest.mark.parametrize("setup", [bandit_setup, mdp_setup], ids=["bandit", "mdp"])
def test_pre_update_batch_baseline_stays_unbiased(setup):
    """b = J_hat of an independent pre-update batch D_b ~ pi_theta (enumerated too) keeps E[SG-MRL] = grad V."""
    env, task, policy = setup(seed=6)
    meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="sgmrl", score_baseline="pre_update")
    exact = _grad_v(meta, env, task, 1)
    assert _max_err(expected_estimator(meta, env, task, 1), exact) < 1e-12
    with pytest.raises(ValueError, match="pre-update batch"):
        meta.outer_surrogate(per_task(policy.params(), 1), *_one_batch(env, task), None)


def _one_batch(env, task):
    trajs, _ = enumerate_trajectories(env, task)
    one = select(trajs, torch.tensor([0]))
    return one, [(torch.zeros(1, 1, env.horizon, dtype=torch.float64), one)]


def test_hessian_batch_variant_is_biased_for_v_but_close():
    """The independent-D_h form (I + alpha H(D_h)) g_o, without score term, misses grad V (a small
    bias); its expectation is computed with D_h enumerated too (|D_h| = 1)."""
    env, task, policy = bandit_setup(seed=2)
    meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="sgmrl_hessian_batch")
    trajs, env_logp = enumerate_trajectories(env, task)
    params = per_task(policy.params(), 1)
    n = trajs.rewards.shape[1]
    q = (meta.log_prob(params, trajs).sum(-1)[0] + env_logp).exp().detach()
    inner_batches = all_batches(n, 2)
    total = torch.zeros((), dtype=torch.float64)
    for index in inner_batches:
        w_in = q[index].prod()
        for h in range(n):
            adapted = meta.adapt(params, select(trajs, index), select(trajs, torch.tensor([h])))
            value = exact_return(policy, {k: v[0] for k, v in adapted.items()}, env, task, 1.0)
            # E_{D_o}[g_o(theta')] = grad J(theta'): use the exact one for the outer factor
            g_out = torch.autograd.grad(value, list(adapted.values()), retain_graph=True)
            surrogate = sum((a * g.detach()).sum() for a, g in zip(adapted.values(), g_out, strict=True))
            total = total + w_in * q[h] * surrogate
    estimate = torch.autograd.grad(total, list(policy.parameters()))
    exact = _grad_v(meta, env, task, 2)
    err = _max_err(estimate, exact)
    assert 1e-6 < err < 0.2 * max(g.abs().max().item() for g in exact)


def test_finite_differences_of_the_meta_objective():
    """Central differences of V (eps = 1e-5, float64) agree with autograd of V: V itself is right."""
    env, task, policy = mdp_setup(seed=3, horizon=2)
    meta = MetaPolicyGradient(policy, 0.5, 1.0)
    grads = _grad_v(meta, env, task, 1)
    eps = 1e-5
    for p, g in zip(policy.parameters(), grads, strict=True):
        for i in range(0, p.numel(), max(1, p.numel() // 2)):
            flat = p.data.view(-1)
            flat[i] += eps
            plus = exact_meta_objective(meta, env, task, 1).detach()
            flat[i] -= 2 * eps
            minus = exact_meta_objective(meta, env, task, 1).detach()
            flat[i] += eps
            assert abs((plus - minus).item() / (2 * eps) - g.view(-1)[i].item()) < 1e-8


@pytest.mark.parametrize("setup", [bandit_setup, mdp_setup], ids=["bandit", "mdp"])
def test_one_inner_step_improves_expected_return_for_small_step(setup):
    """E_D[J(theta + alpha g_hat)] > J(theta) for small alpha (exact), since it is J + alpha |grad J|^2 / H-ish."""
    env, task, policy = setup(seed=4)
    base = exact_return(policy, policy.params(), env, task, 1.0).item()
    for alpha in (0.05, 0.2):
        meta = MetaPolicyGradient(policy, alpha, 1.0)
        assert exact_meta_objective(meta, env, task, 1).item() > base + 1e-6


def test_first_order_maml_drops_the_inner_jacobian():
    """fomaml's expectation equals E_D[grad J(theta')] computed directly (the Jacobian is the identity)."""
    env, task, policy = bandit_setup(seed=5)
    meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="fomaml")
    trajs, env_logp = enumerate_trajectories(env, task)
    params = per_task(policy.params(), 1)
    q = (meta.log_prob(params, trajs).sum(-1)[0] + env_logp).exp().detach()
    direct = [torch.zeros_like(p) for p in policy.parameters()]
    for index in all_batches(trajs.rewards.shape[1], 2):
        adapted = {
            k: v[0].detach().requires_grad_() for k, v in meta.inner_step(params, select(trajs, index), False).items()
        }
        g = torch.autograd.grad(exact_return(policy, adapted, env, task, 1.0), list(adapted.values()))
        direct = [d + q[index].prod() * gi for d, gi in zip(direct, g, strict=True)]
    assert _max_err(expected_estimator(meta, env, task, 2), direct) < 1e-12


def test_bandit_enumeration_with_deterministic_arms_is_finite_and_continuous():
    """Arm means of exactly 0 and 1 (a 0 * log 0 in the outcome probabilities) give the limit of nearby means."""
    env, task, policy = bandit_setup()
    meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="sgmrl", score_baseline="none")
    exact_task = {**task, "means": torch.tensor([[0.0, 1.0, 0.3]], dtype=torch.float64)}
    near_task = {**task, "means": torch.tensor([[1e-12, 1 - 1e-12, 0.3]], dtype=torch.float64)}
    _, env_logp = enumerate_trajectories(env, exact_task)
    assert not env_logp.isnan().any()
    # for every action sequence the outcome probabilities sum to 1 (impossible outcomes get probability 0)
    assert env_logp.exp().sum().item() == pytest.approx(env.n_arms**env.horizon, abs=1e-12)
    exact_grad = expected_estimator(meta, env, exact_task, 2)
    near_grad = expected_estimator(meta, env, near_task, 2)
    assert all(g.isfinite().all() for g in exact_grad)
    assert _max_err(exact_grad, near_grad) < 1e-9
    assert _max_err(exact_grad, _grad_v(meta, env, exact_task, 2)) < 1e-12


def _flat(grads) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


def _monte_carlo(meta, env, task, n_inner: int, draws: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard error ``(P,)`` of the real estimator (``meta.meta_step``) over ``draws`` copies of one
    task in one meta-batch, each copy's own estimate from per-task parameter leaves."""
    tasks = {k: v.expand(draws, *v.shape[1:]) for k, v in task.items()}
    leaves = {k: v.detach().expand(draws, *v.shape).clone().requires_grad_() for k, v in meta.policy.params().items()}
    step = meta.meta_step(env, tasks, n_inner, 1, torch.Generator().manual_seed(seed), leaves)
    per_task = torch.cat([g.reshape(draws, -1) for g in torch.autograd.grad(step.surrogate, list(leaves.values()))], 1)
    return per_task.mean(0), per_task.std(0) / draws**0.5


def _z(mean: torch.Tensor, se: torch.Tensor, exact: torch.Tensor) -> float:
    """max |mean - exact| / se over coordinates with se > 0 (the others must agree exactly)."""
    varying = se > 0
    assert torch.equal(mean[~varying], exact[~varying])
    return ((mean - exact)[varying] / se[varying]).abs().max().item()


@pytest.mark.parametrize("score_baseline", ["leave_one_task_out", "pre_update", "none"])
def test_expected_estimator_is_exact_under_every_score_baseline_and_matches_the_real_estimator(score_baseline):
    """E[SG-MRL] by enumeration = grad V under each score baseline (the default leave_one_task_out used to turn the
    enumerated outer trajectories into pseudo-tasks, off by (grad V - E[MAML]) / (M - 1)); and the Monte-Carlo mean
    of the real estimator (400000 copies of the task in one meta-batch) agrees with it within 4.5 standard errors,
    a precision at which that old offset shows (> 5 standard errors under leave_one_task_out)."""
    env, task, policy = mdp_setup(seed=1, horizon=2)
    meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="sgmrl", score_baseline=score_baseline)
    exact = _flat(_grad_v(meta, env, task, 1))
    expected = _flat(expected_estimator(meta, env, task, 1))
    assert (expected - exact).abs().max().item() < 1e-12
    if score_baseline == "leave_one_task_out":  # b is a constant for one task: its value does not matter (sigma = 1)
        shifted = _flat(expected_estimator(meta, env, task, 1, other_tasks_return=0.8))
        assert (shifted - exact).abs().max().item() < 1e-12
    mean, se = _monte_carlo(meta, env, task, 1, 400_000, seed=0)
    assert _z(mean, se, expected) < 4.5
    if score_baseline == "leave_one_task_out":
        maml = _flat(expected_estimator(MetaPolicyGradient(policy, 0.5, 1.0, estimator="maml"), env, task, 1))
        n_outcomes = enumerate_trajectories(env, task)[0].rewards.shape[1]
        old_offset = (exact - maml) / (n_outcomes - 1)
        assert (old_offset.abs() / se).max().item() > 5


def test_released_sgmrl_coefficient_vanishes_so_it_equals_maml():
    """The released code's score coefficient, the mean of per-task normalised outer advantages, is 0 to rounding:
    the released estimator is MAML draw for draw (and its exact expectation is E[MAML], not grad V)."""
    env, task, policy = mdp_setup(seed=2, horizon=2)
    metas = {e: MetaPolicyGradient(policy, 0.5, 1.0, estimator=e) for e in ("sgmrl_released", "maml")}
    draws = {}
    for name, meta in metas.items():
        tasks = {k: v.expand(64, *v.shape[1:]) for k, v in task.items()}
        step = meta.meta_step(env, tasks, 4, 1, torch.Generator().manual_seed(3))
        draws[name] = _flat(torch.autograd.grad(step.surrogate, list(policy.parameters())))
    assert draws["maml"].abs().max().item() > 1e-2
    assert (draws["sgmrl_released"] - draws["maml"]).abs().max().item() < 1e-12
    released = _flat(expected_estimator(metas["sgmrl_released"], env, task, 2))
    maml = _flat(expected_estimator(metas["maml"], env, task, 2))
    exact = _flat(_grad_v(metas["maml"], env, task, 2))
    assert (released - maml).abs().max().item() < 1e-12
    assert (released - exact).abs().max().item() > 1e-3 * exact.abs().max().item()


def test_released_sgmrl_without_normalisation_would_not_vanish():
    """The coefficient vanishes because of the per-task normalisation, not by construction: the same surrogate
    with raw advantages (mean reward-to-go > 0 here) moves the estimate away from MAML's."""
    env, task, policy = bandit_setup(seed=3)
    meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="sgmrl_released")
    trajs, _ = enumerate_trajectories(env, task)
    params = per_task(policy.params(), 1)
    logp = meta.log_prob(params, trajs)
    inner = [(logp, trajs)]
    adapted = meta.adapt(params, trajs, logp=logp)
    released = meta.outer_surrogate(adapted, trajs, inner)
    meta.estimator = "maml"
    maml = meta.outer_surrogate(adapted, trajs, inner)
    assert (released - maml).abs().item() < 1e-12
    raw_mean = (trajs.rewards * trajs.mask).sum() / trajs.mask.sum()
    score = logp.sum()
    assert raw_mean.item() > 0.1 and score.abs().item() > 1.0  # the term raw advantages would add is not small
