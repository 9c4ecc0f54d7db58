"""Environment API compliance (gymnasium check_env) and batched tensor envs equal to the gymnasium envs step for
step under the same seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from framework_plugins.meta_rl.envs import GymVectorTaskEnv, PointNavEnv, make_env, make_gym_env
from framework_plugins.meta_rl.policy import MLPPolicy
from framework_plugins.meta_rl.rollout import rollout

FAMILIES = {
    "bandit": {"n_arms": 4, "horizon": 5},
    "tabular_mdp": {"n_states": 4, "n_actions": 3, "horizon": 10},
    "point": {"horizon": 100},
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_gymnasium_check_env(name):
    env = make_gym_env(name, **FAMILIES[name])
    check_env(env.unwrapped, skip_render_check=True)
    env.reset(seed=0)
    truncated = [env.step(env.action_space.sample())[3] for _ in range(FAMILIES[name]["horizon"])]
    assert truncated[-1] and not any(truncated[:-1])  # TimeLimit ends the episode after `horizon` steps
    env.reset(seed=0)
    tasks = env.unwrapped.sample_tasks(3)
    assert len(tasks) == 3 and all(env.observation_space.contains(env.reset(options={"task": t})[0]) for t in tasks)


def _np_noise(spec, rngs, n_tasks, n_traj):
    """The noise the gymnasium envs draw from their np_random in one step, arranged as the tensor env's noise."""
    rows = [[rng.random() if kind == "uniform" else rng.standard_normal() for kind in spec] for rng in rngs]
    return torch.tensor(rows, dtype=torch.float64).reshape(n_tasks, n_traj, len(spec)) if spec else None


@pytest.mark.parametrize("name", list(FAMILIES))
def test_tensor_env_equals_gymnasium_env_step_for_step(name):
    n_tasks, n_traj = 3, 4
    kwargs = FAMILIES[name]
    tensor_env = make_env(name, **kwargs, dtype=torch.float64)
    tasks = tensor_env.sample_tasks(n_tasks, torch.Generator().manual_seed(0))
    gym_envs = [make_gym_env(name, **kwargs) for _ in range(n_tasks * n_traj)]
    seeds = list(range(100, 100 + n_tasks * n_traj))
    gym_obs = [
        env.reset(seed=s, options={"task": {k: v[i // n_traj].numpy() for k, v in tasks.items()}})[0]
        for i, (env, s) in enumerate(zip(gym_envs, seeds, strict=True))
    ]
    rngs = [np.random.default_rng(s) for s in seeds]  # the same streams as the envs' np_random
    obs = tensor_env.reset(tasks, n_traj)
    action_rng = torch.Generator().manual_seed(1)
    alive = np.ones(n_tasks * n_traj, bool)
    steps_compared = 0
    for _ in range(kwargs["horizon"]):
        np.testing.assert_allclose(
            obs.reshape(n_tasks * n_traj, -1).numpy()[alive], np.array(gym_obs)[alive], rtol=0, atol=1e-6
        )
        if tensor_env.discrete:
            action = torch.randint(0, tensor_env.n_actions, (n_tasks, n_traj), generator=action_rng)
        else:
            action = 0.15 * torch.randn(n_tasks, n_traj, 2, generator=action_rng, dtype=torch.float64)
        obs, reward, terminated = tensor_env.step(action, _np_noise(tensor_env.noise_spec, rngs, n_tasks, n_traj))
        flat_actions = action.reshape(n_tasks * n_traj, *action.shape[2:]).numpy()
        results = [env.step(a) for env, a in zip(gym_envs, flat_actions, strict=True)]
        gym_obs = [r[0] for r in results]
        gym_reward = np.array([r[1] for r in results])
        gym_term = np.array([r[2] for r in results])
        np.testing.assert_allclose(reward.reshape(-1).numpy()[alive], gym_reward[alive], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(terminated.reshape(-1).numpy()[alive], gym_term[alive])
        steps_compared += int(alive.sum())
        alive &= ~gym_term
    assert steps_compared > n_tasks * n_traj * kwargs["horizon"] // 2


def test_point_terminates_at_goal_and_masks_the_rest():
    env = make_env("point", horizon=5, dtype=torch.float64)
    tasks = {"goal": torch.tensor([[0.1, 0.0]], dtype=torch.float64)}
    obs = env.reset(tasks, 1)
    _, reward, terminated = env.step(torch.tensor([[[0.1, 0.0]]], dtype=torch.float64), None)
    assert terminated.item() and reward.item() == pytest.approx(0.0, abs=1e-12)
    policy = MLPPolicy(2, 2, False, (4,)).double()
    batch = rollout(env, policy, policy.params(), tasks, 3, torch.Generator().manual_seed(0))
    assert batch.mask.shape == (1, 3, 5) and (batch.rewards * (1 - batch.mask)).abs().sum() == 0
    assert obs.shape == (1, 1, 2)


def test_vector_env_rollout_equals_tensor_env_rollout_on_point():
    """The gymnasium SyncVectorEnv path (the benchmark peer) gives the same trajectories as the tensor env."""
    tensor_env = make_env("point", horizon=20, dtype=torch.float64)
    vector_env = GymVectorTaskEnv(PointNavEnv, tensor_env)
    policy = MLPPolicy(2, 2, False, (8,)).double()
    tasks = tensor_env.sample_tasks(2, torch.Generator().manual_seed(3))
    a = rollout(tensor_env, policy, policy.params(), tasks, 3, torch.Generator().manual_seed(5))
    b = rollout(vector_env, policy, policy.params(), tasks, 3, torch.Generator().manual_seed(5))
    # the vector env draws reset seeds from the generator first: compare with a shifted action stream
    assert a.rewards.shape == b.rewards.shape == (2, 3, 20)
    gen = torch.Generator().manual_seed(5)
    torch.randint(0, 2**31 - 1, (6,), generator=gen)
    c = rollout(tensor_env, policy, policy.params(), tasks, 3, gen)
    torch.testing.assert_close(b.rewards, c.rewards, rtol=0, atol=1e-6)
    torch.testing.assert_close(b.obs, c.obs, rtol=0, atol=1e-6)
    assert not torch.equal(a.rewards, c.rewards)


def test_task_distributions():
    gen = torch.Generator().manual_seed(0)
    mdp = make_env("tabular_mdp", n_states=5, n_actions=3).sample_tasks(400, gen)
    torch.testing.assert_close(mdp["transitions"].sum(-1), torch.ones(400, 5, 3))
    assert abs(mdp["rewards"].mean().item() - 1.0) < 0.05 and abs(mdp["rewards"].std().item() - 1.0) < 0.05
    # Dirichlet(1) over 5 states: each coordinate ~ Beta(1, 4), mean 1/5, variance 4/150
    assert abs(mdp["transitions"].var().item() - 4 / 150) < 2e-3
    goals = make_env("point").sample_tasks(2000, gen)["goal"]
    assert goals.abs().max() <= 0.5 and abs(goals.var().item() - 1 / 12) < 5e-3
    seeds = torch.tensor([3, 9, 3])
    bandit = make_env("bandit", n_arms=4).tasks_from_seeds(seeds)["means"]
    torch.testing.assert_close(bandit[0], bandit[2])


def test_bad_env_arguments_name_the_field():
    with pytest.raises(ValueError, match="env_kwargs.n_arms"):
        make_env("bandit", n_arms=1)
    with pytest.raises(ValueError, match="env='pendulum'"):
        make_env("pendulum")


def test_cheetah_needs_mujoco_or_runs():
    try:
        import mujoco  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ModuleNotFoundError, match=r"\[mujoco\]"):
            make_env("cheetah_vel")
        pytest.skip("mujoco is not installed (optional extra '.[mujoco]')")
    from framework_plugins.meta_rl.envs.cheetah import make_half_cheetah_task_env

    env = make_half_cheetah_task_env("vel")
    check_env(env, skip_render_check=True)
    env.reset(seed=0, options={"task": {"velocity": 1.5}})
    action = np.full(6, 0.2)
    _, reward, _, _, info = env.step(action)
    assert reward == pytest.approx(-abs(info["x_velocity"] - 1.5) - 0.05 * 6 * 0.2**2)
    batched = make_env("cheetah_vel", horizon=5)
    policy = MLPPolicy(17, 6, False, (8,))
    batch = rollout(batched, policy, policy.params(), batched.sample_tasks(2), 2)
    assert batch.rewards.shape == (2, 2, 5) and torch.isfinite(batch.rewards).all()
