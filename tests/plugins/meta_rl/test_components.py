"""Advantages, policies and the task stream against independent implementations (numpy, torch.distributions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from framework_plugins.meta_rl.advantages import (
    compute_advantages,
    discounted_cumsum,
    leave_one_out_baseline,
    linear_features,
)
from framework_plugins.meta_rl.datamodule import MetaRLTasks, TaskSeedStream
from framework_plugins.meta_rl.envs import make_env
from framework_plugins.meta_rl.meta import MetaPolicyGradient
from framework_plugins.meta_rl.policy import MLPPolicy, per_task
from framework_plugins.meta_rl.rollout import Trajectories, rollout


def _point_batch(n_tasks=2, n_traj=5, horizon=12):
    env = make_env("point", horizon=horizon, dtype=torch.float64)
    policy = MLPPolicy(2, 2, False, (8,), init_log_std=-1.0).double()
    tasks = env.sample_tasks(n_tasks, torch.Generator().manual_seed(0))
    return rollout(env, policy, policy.params(), tasks, n_traj, torch.Generator().manual_seed(1)), policy


def test_discounted_cumsum_matches_a_loop():
    x = torch.randn(3, 7, dtype=torch.float64)
    expected = np.array(
        [[sum(0.9 ** (k - t) * x[i, k].item() for k in range(t, 7)) for t in range(7)] for i in range(3)]
    )
    np.testing.assert_allclose(discounted_cumsum(x, 0.9).numpy(), expected, rtol=1e-13, atol=1e-13)


def test_leave_one_out_baseline_matches_numpy_least_squares():
    batch, _ = _point_batch()
    returns = discounted_cumsum(batch.rewards, 0.99)
    got = leave_one_out_baseline(batch, returns, ridge=1e-5)
    phi = linear_features(batch).numpy()
    for t in range(phi.shape[0]):
        for n in range(phi.shape[1]):
            others = [m for m in range(phi.shape[1]) if m != n]
            x = phi[t, others].reshape(-1, phi.shape[-1])
            y = returns[t, others].reshape(-1).numpy()
            w = np.linalg.solve(x.T @ x + 1e-5 * np.eye(x.shape[1]), x.T @ y)
            np.testing.assert_allclose(got[t, n].numpy(), phi[t, n] @ w, rtol=1e-8, atol=1e-8)


def test_a_singular_baseline_fit_raises_its_ridge_only_where_it_fails():
    """A collapsed policy pinned at one point (float32 observations all 4: the s, s^2 and constant features are
    collinear and the 1e-5 ridge is lost in rounding, so LU fails) gets, per trajectory, the ridge solution (numpy,
    float64) at the first tenfold-raised ridge whose float32 system solves; the healthy task's baseline is the
    plain ridge solve, unchanged."""
    batch, _ = _point_batch()
    batch = Trajectories(batch.obs.float(), batch.actions.float(), batch.rewards.float(), batch.mask.float())
    obs = batch.obs.clone()
    obs[1] = 4.0
    pinned = Trajectories(obs, batch.actions, batch.rewards, batch.mask)
    returns = discounted_cumsum(pinned.rewards, 0.99)
    got = leave_one_out_baseline(pinned, returns)
    torch.testing.assert_close(got[0], leave_one_out_baseline(batch, returns)[0], rtol=0, atol=0)
    phi = linear_features(pinned)[1]
    eye = torch.eye(phi.shape[-1])
    for n in range(phi.shape[0]):
        others = [m for m in range(phi.shape[0]) if m != n]
        design = phi[others].reshape(-1, phi.shape[-1])
        ridges = [1e-5 * 10**k for k in range(11)]
        solves = [torch.linalg.solve_ex(design.T @ design + r * eye, torch.ones(phi.shape[-1]))[1] == 0 for r in ridges]
        assert not solves[0], "the 1e-5 system should be singular in float32"
        ridge = ridges[solves.index(True)]
        x, y = design.double().numpy(), returns[1, others].double().reshape(-1).numpy()
        w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
        np.testing.assert_allclose(got[1, n].numpy(), phi[n].double().numpy() @ w, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="ridge"):
        leave_one_out_baseline(batch, returns, ridge=0.0)


def test_gae_with_lambda_one_is_return_minus_baseline_and_normalization():
    batch, _ = _point_batch()
    rtg = discounted_cumsum(batch.rewards, 0.99) * batch.mask
    adv, scale = compute_advantages(batch, 0.99, 1.0, "linear")
    baseline = leave_one_out_baseline(batch, rtg) * batch.mask
    torch.testing.assert_close(adv, (rtg - baseline) * batch.mask, rtol=1e-10, atol=1e-10)
    assert torch.equal(scale, torch.ones(2, dtype=scale.dtype))
    normed, sigma = compute_advantages(batch, 0.99, 1.0, "linear", normalize=True)
    torch.testing.assert_close(
        normed.sum((1, 2)) / batch.mask.sum((1, 2)), torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-10
    )
    assert torch.all(sigma > 0)
    with pytest.raises(ValueError, match="baseline"):
        compute_advantages(batch, 0.99, 1.0, "critic")


def test_policy_log_prob_and_sampling_match_torch_distributions():
    policy = MLPPolicy(3, 2, False, (5,), init_log_std=-0.5).double()
    params = per_task(policy.params(), 4)
    obs = torch.randn(4, 6, 3, dtype=torch.float64)
    actions = policy.sample(params, obs, torch.Generator().manual_seed(0))
    dist = torch.distributions.Normal(policy.head(params, obs), torch.exp(policy.log_std))
    torch.testing.assert_close(policy.log_prob(params, obs, actions), dist.log_prob(actions).sum(-1))
    cat_policy = MLPPolicy(1, 3, True, (4,)).double()
    obs = torch.zeros(1, 60000, 1, dtype=torch.float64)
    probs = torch.softmax(cat_policy.head(cat_policy.params(), obs[:, :1]), -1)[0, 0]
    draws = cat_policy.sample(cat_policy.params(), obs, torch.Generator().manual_seed(1))[0]
    freq = torch.bincount(draws, minlength=3).double() / draws.numel()
    assert (freq - probs).abs().max() < 4 * (probs * (1 - probs) / draws.numel()).sqrt().max()
    logp = cat_policy.log_prob(cat_policy.params(), obs[:, :5], draws[:5].unsqueeze(0))
    torch.testing.assert_close(logp[0], probs.log()[draws[:5]])


def test_per_task_adaptation_equals_separate_single_task_adaptation():
    """One batched inner step over T tasks gives each task the step it would get alone."""
    batch, policy = _point_batch(n_tasks=3)
    meta = MetaPolicyGradient(policy, 0.3, 0.99, baseline="linear", gae_lambda=0.9)
    together = meta.inner_step(per_task(policy.params(), 3), batch, create_graph=False)

    for t in range(3):
        alone_batch = Trajectories(*(x[t : t + 1] for x in (batch.obs, batch.actions, batch.rewards, batch.mask)))
        alone = meta.inner_step(per_task(policy.params(), 1), alone_batch, create_graph=False)
        for key in alone:
            torch.testing.assert_close(together[key][t], alone[key][0], rtol=1e-12, atol=1e-12)


def test_task_stream_depends_only_on_seed_and_step():
    stream = TaskSeedStream(seed=3, meta_batch_size=4, steps_per_epoch=5)
    epoch0 = torch.stack([s for (s,) in stream])
    stream.set_epoch(1)
    epoch1 = torch.stack([s for (s,) in stream])
    fresh = TaskSeedStream(seed=3, meta_batch_size=4, steps_per_epoch=5)
    fresh.set_epoch(1)
    assert torch.equal(epoch1, torch.stack([s for (s,) in fresh]))
    assert len(set(epoch0.tolist()) | set(epoch1.tolist())) == 40  # fresh tasks every step
    data = MetaRLTasks(meta_batch_size=4, steps_per_epoch=5, n_val_tasks=6, n_test_tasks=6, eval_batch_size=3)
    batches = list(data.train_dataloader())
    assert len(batches) == 5 and batches[0][0].shape == (4,)
    val = torch.cat([b[0] for b in data.val_dataloader()])
    test = torch.cat([b[0] for b in data.test_dataloader()])
    assert not set(val.tolist()) & set(test.tolist()) and not set(val.tolist()) & set(epoch0.tolist())
    with pytest.raises(ValueError, match="data.init_args.meta_batch_size"):
        MetaRLTasks(meta_batch_size=0)


def test_meta_step_runs_for_every_estimator_and_inner_steps():
    env = make_env("tabular_mdp", n_states=3, n_actions=2, horizon=4)
    policy = MLPPolicy(3, 2, True, (8,))
    tasks = env.sample_tasks(3, torch.Generator().manual_seed(0))
    for estimator in ("sgmrl", "maml", "fomaml", "sgmrl_hessian_batch"):
        meta = MetaPolicyGradient(policy, 0.5, 0.9, baseline="linear", estimator=estimator)
        step = meta.meta_step(env, tasks, 4, inner_steps=2, generator=torch.Generator().manual_seed(1))
        grads = torch.autograd.grad(step.surrogate, list(policy.parameters()))
        assert all(torch.isfinite(g).all() for g in grads) and step.pre.shape == step.post.shape == (3,)
    with pytest.raises(ValueError, match="estimator='trpo'"):
        MetaPolicyGradient(policy, estimator="trpo")
