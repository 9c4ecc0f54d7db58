"""Per-step baselines of SG-MRL's score term: closed forms, the leave-one-task-out fit against numpy, unbiasedness by
exact enumeration (with a biased negative control) and the variance reduction over Monte-Carlo draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from framework_plugins.meta_rl import meta as meta_module
from framework_plugins.meta_rl.estimator_study import estimator_study
from framework_plugins.meta_rl.expectations import bandit_setup, exact_meta_objective, expected_estimator, mdp_setup
from framework_plugins.meta_rl.meta import MetaPolicyGradient
from framework_plugins.meta_rl.rollout import Trajectories
from framework_plugins.meta_rl.score_baselines import (
    RIDGE,
    leave_one_task_out_weights,
    leave_one_trajectory_out_return,
    score_features,
    trajectory_returns,
)


def _flat(grads) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


def _batch(rewards: torch.Tensor, obs_dim: int = 2, seed: int = 0) -> Trajectories:
    t, n, h = rewards.shape
    obs = torch.randn(t, n, h, obs_dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return Trajectories(obs, torch.zeros(t, n, h, dtype=torch.long), rewards, torch.ones(t, n, h, dtype=torch.float64))


def test_leave_one_trajectory_out_return_is_the_mean_of_the_other_trajectories():
    rewards = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [0.0, 5.0]]], dtype=torch.float64)  # T=1, N=3, H=2
    batch = _batch(rewards)
    per_traj = trajectory_returns(batch, 0.5)  # (r_0 + 0.5 r_1) / 2
    assert per_traj.tolist() == [[1.0, 1.5, 1.25]]
    assert leave_one_trajectory_out_return(batch, 0.5).tolist() == [[1.375, 1.125, 1.25]]
    one = _batch(rewards[:, :1])
    assert leave_one_trajectory_out_return(one, 0.5).tolist() == [[0.0]]


def test_score_features_are_state_time_features_and_the_other_trajectories_return():
    batch = _batch(torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64), obs_dim=2)
    batch.mask[0, 1, 2:] = 0.0
    phi = score_features(batch, 1.0)
    assert phi.shape == (2, 3, 4, 2 + 2 + 4 + 1)
    assert torch.equal(phi[0, 0, 3, :2], batch.obs[0, 0, 3]) and torch.equal(phi[0, 0, 3, 2:4], batch.obs[0, 0, 3] ** 2)
    assert phi[0, 0, 3, 4:8].tolist() == pytest.approx([0.03, 0.03**2, 0.03**3, 1.0])
    loo = leave_one_trajectory_out_return(batch, 1.0)
    assert torch.equal(phi[..., -1][batch.mask > 0], loo[..., None].expand(-1, -1, 4)[batch.mask > 0])
    assert (phi[0, 1, 2:] == 0).all()  # nothing after termination


def test_leave_one_task_out_weights_equal_numpy_ridge_regression_on_the_other_tasks():
    gen = torch.Generator().manual_seed(2)
    features = torch.randn(5, 3, 4, 3, generator=gen, dtype=torch.float64)
    targets = torch.randn(5, generator=gen, dtype=torch.float64)
    mask = (torch.rand(5, 3, 4, generator=gen) > 0.3).double()
    w = leave_one_task_out_weights(features, targets, mask)
    x, y, m = features.numpy(), targets.numpy(), mask.numpy().astype(bool)
    for i in range(5):
        rows = np.concatenate([x[j][m[j]] for j in range(5) if j != i])
        ys = np.concatenate([np.full(m[j].sum(), y[j]) for j in range(5) if j != i])
        gram = rows.T @ rows
        lam = RIDGE * np.trace(gram) / 3 + 1e-12
        reference = np.linalg.solve(gram + lam * np.eye(3), rows.T @ ys)
        assert np.abs(w[i].numpy() - reference).max() < 1e-12
        unregularised = np.linalg.lstsq(rows, ys, rcond=None)[0]
        assert np.abs(w[i].numpy() - unregularised).max() < 1e-4
    assert leave_one_task_out_weights(features[:1], targets[:1], mask[:1]).tolist() == [[0.0, 0.0, 0.0]]


CASES = [(bandit_setup, {}), (mdp_setup, {"horizon": 2})]


@pytest.mark.parametrize(("setup", "kwargs"), CASES, ids=["bandit", "mdp"])
@pytest.mark.parametrize("score_baseline", ["inner_batch", "learned"])
def test_per_step_baselines_keep_sgmrl_exactly_unbiased(setup, kwargs, score_baseline):
    """E[SG-MRL] by enumeration of every inner batch (N = 2) and outer trajectory = grad V to rounding, with the
    learned baseline at arbitrary fixed weights (its fit on other tasks is independent of this task's data)."""
    env, task, policy = setup(seed=3, **kwargs)
    meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="sgmrl", score_baseline=score_baseline)
    exact = _flat(torch.autograd.grad(exact_meta_objective(meta, env, task, 2), list(policy.parameters())))
    weights = torch.randn(2 * env.obs_dim + 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = _flat(expected_estimator(meta, env, task, 2, learned_weights=weights))
    assert exact.abs().max().item() > 1e-2
    assert (expected - exact).abs().max().item() < 1e-12


@pytest.mark.parametrize("score_baseline", ["inner_batch", "learned"])
def test_the_baseline_changes_the_estimate(score_baseline):
    """Not a no-op: the same draws give a different estimate than score baseline none."""
    env, task, policy = mdp_setup(seed=3, horizon=2)
    tasks = {k: v.expand(8, *v.shape[1:]) for k, v in task.items()}
    draws = {}
    for name in (score_baseline, "none"):
        meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="sgmrl", score_baseline=name)
        step = meta.meta_step(env, tasks, 4, 1, torch.Generator().manual_seed(1))
        draws[name] = _flat(torch.autograd.grad(step.surrogate, list(policy.parameters())))
    assert (draws[score_baseline] - draws["none"]).abs().max().item() > 1e-2


def test_a_baseline_that_sees_its_own_trajectory_is_biased(monkeypatch):
    """Negative control: b_n = J_hat of the whole inner batch, tau_n included, correlates with grad log p(tau_n)
    and moves E[SG-MRL] away from grad V (by about grad J / N); the exact check above would catch such a bug."""
    env, task, policy = mdp_setup(seed=3, horizon=2)
    meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator="sgmrl", score_baseline="inner_batch")
    exact = _flat(torch.autograd.grad(exact_meta_objective(meta, env, task, 2), list(policy.parameters())))

    def whole_batch_return(batch: Trajectories, gamma: float) -> torch.Tensor:
        return trajectory_returns(batch, gamma).mean(1, keepdim=True).expand(-1, batch.rewards.shape[1])

    monkeypatch.setattr(meta_module, "leave_one_trajectory_out_return", whole_batch_return)
    biased = _flat(expected_estimator(meta, env, task, 2))
    assert (biased - exact).abs().max().item() > 1e-2 * exact.abs().max().item()


def test_per_step_baselines_reduce_the_variance_and_stay_unbiased_in_monte_carlo():
    """Over 2000 draws per N on a tabular MDP (learned weights fitted on the other draws, independent copies of the
    task): the sample means agree with grad V, and the variance falls below that of score baseline none, by more
    than 8x for the learned baseline at N = 8 (the score term's coefficient J_hat(D_o) is no longer centred at 0)."""
    env, task, policy = mdp_setup(seed=5, horizon=2)
    rows = {(r.estimator, r.n): r for r in estimator_study(policy, env, task, 0.5, 1.0, (2, 8), 2000, seed=0)}
    for n in (2, 8):
        none, inner, learned = (rows[e, n] for e in ("sgmrl", "sgmrl_inner_batch", "sgmrl_learned"))
        assert max(inner.mc_z, learned.mc_z) < 5 and max(inner.bias, learned.bias) < 1e-12
        assert inner.variance + 3 * inner.variance_se < none.variance
        assert learned.variance + 3 * learned.variance_se < inner.variance
    assert rows["sgmrl_learned", 8].variance * 8 < rows["sgmrl", 8].variance
