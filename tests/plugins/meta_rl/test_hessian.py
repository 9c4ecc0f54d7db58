"""The DiCE / score-function Hessian estimator's exact expectation equals the autograd Hessian of the exact J."""

from __future__ import annotations

import pytest
import torch

from framework_plugins.meta_rl.estimators import dice_surrogate
from framework_plugins.meta_rl.exact import enumerate_trajectories, exact_return
from framework_plugins.meta_rl.expectations import as_tasks, bandit_setup, hessians, mdp_setup
from framework_plugins.meta_rl.policy import per_task


@pytest.mark.parametrize(
    ("setup", "kwargs", "gamma"),
    [(bandit_setup, {}, 1.0), (mdp_setup, {"horizon": 3}, 0.9)],
    ids=["bandit", "mdp_s2_a2_h3_gamma0.9"],
)
def test_dice_hessian_is_exact_and_reinforce_surrogate_hessian_is_not(setup, kwargs, gamma):
    env, task, policy = setup(seed=7, **kwargs)
    h = hessians(policy, env, task, gamma)
    assert h["exact"].abs().max() > 1e-3
    torch.testing.assert_close(h["dice"], h["exact"], rtol=0, atol=1e-13)
    assert (h["reinforce"] - h["exact"]).abs().max() > 0.05 * h["exact"].abs().max()


def test_dice_value_and_gradient_are_return_and_policy_gradient():
    """E[L_dice] = J and E[grad L_dice] = grad J exactly (the 0th and 1st orders of the magic box)."""
    env, task, policy = mdp_setup(seed=8, horizon=3)
    trajs, env_logp = enumerate_trajectories(env, task)
    params = per_task(policy.params(), 1)
    logp = policy.log_prob(params, trajs.obs, trajs.actions)
    weights = (logp.sum(-1)[0] + env_logp).exp().detach()
    value = (weights * dice_surrogate(logp.transpose(0, 1), as_tasks(trajs), 0.9)).sum()
    exact = exact_return(policy, policy.params(), env, task, 0.9)
    torch.testing.assert_close(value, exact, rtol=0, atol=1e-14)
    grads = torch.autograd.grad(value, list(policy.parameters()))
    exact_grads = torch.autograd.grad(exact, list(policy.parameters()))
    for a, b in zip(grads, exact_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14)


def test_exact_return_of_the_bandit_is_the_softmax_average_of_the_means():
    """J = softmax(f(0)) . mu with f the module's own layers (an independent path to the functional head)."""
    env, task, policy = bandit_setup(seed=9)
    h = torch.zeros(1, 1, dtype=torch.float64)
    for i, layer in enumerate(policy.layers):
        h = layer(h) if i == len(policy.layers) - 1 else torch.tanh(layer(h))
    expected = (torch.softmax(h[0], -1) * task["means"][0]).sum()
    torch.testing.assert_close(exact_return(policy, policy.params(), env, task, 1.0), expected, rtol=0, atol=1e-15)
