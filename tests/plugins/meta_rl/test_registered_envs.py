"""Bring your own environment: the built-in envs under gymnasium ids, any registered env that follows the task
protocol as MetaRL's env (checked, with errors naming what is missing), and the runnable example."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from framework.cli import main
from framework_plugins.meta_rl import MetaRL
from framework_plugins.meta_rl.envs import GYM_IDS, PointNavEnv, TensorPointNav, make_env
from framework_plugins.meta_rl.envs.bandit import BanditEnv
from framework_plugins.meta_rl.envs.tabular_mdp import TabularMDPEnv

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
CLASSES = {"bandit": BanditEnv, "tabular_mdp": TabularMDPEnv, "point": PointNavEnv}


@pytest.mark.parametrize("name", list(CLASSES))
def test_gym_make_builds_each_builtin_env_by_its_framework_id(name):
    env_id, _, horizon, _ = GYM_IDS[name]
    env = gym.make(env_id)
    assert type(env.unwrapped) is CLASSES[name] and env.spec.max_episode_steps == horizon
    check_env(env.unwrapped, skip_render_check=True)
    first = env.unwrapped.sample_tasks(3, np.random.default_rng(7))
    again = env.unwrapped.sample_tasks(3, np.random.default_rng(7))  # tasks depend on the rng only
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(first, again, strict=True) for k in a)
    env.reset(seed=0, options={"task": first[0]})
    assert all(np.array_equal(env.unwrapped.task[k], v) for k, v in first[0].items())


def test_a_registered_id_steps_exactly_like_the_builtin_tensor_env_on_the_same_tasks():
    horizon, n_tasks, n_traj = 30, 3, 2
    registered = make_env("framework/PointNav-v0", horizon=horizon, dtype=torch.float64)
    tensor = TensorPointNav(horizon, dtype=torch.float64)
    assert (registered.obs_dim, registered.action_dim, registered.discrete) == (2, 2, False)
    tasks = registered.tasks_from_seeds(torch.tensor([3, 4, 5]))
    assert torch.equal(tasks["goal"], registered.tasks_from_seeds(torch.tensor([3, 4, 5]))["goal"])
    assert not torch.equal(tasks["goal"][0], tasks["goal"][1]) and tasks["goal"].abs().max() <= 0.5
    obs_a, obs_b = registered.reset(tasks, n_traj), tensor.reset(tasks, n_traj)
    actions = torch.Generator().manual_seed(0)
    for t in range(horizon):
        action = 0.1 * torch.randn(n_tasks, n_traj, 2, generator=actions, dtype=torch.float64)
        (obs_a, reward_a, done_a), (obs_b, reward_b, done_b) = registered.step(action, None), tensor.step(action, None)
        torch.testing.assert_close(reward_a, reward_b, rtol=0, atol=1e-6)  # the gym env returns float32 states
        assert torch.equal(done_a, done_b)
        if done_a.any():  # the vector env starts a finished episode again; rollout masks it from then on
            break
        if t < horizon - 1:  # at the horizon the time limit ends every episode and the vector env resets it
            torch.testing.assert_close(obs_a, obs_b, rtol=0, atol=1e-6)


class _NoTasks(gym.Env):
    """A gymnasium env without the task protocol."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


class _OnlySampler(_NoTasks):
    def sample_tasks(self, n, rng):
        return [{"goal": rng.random(2)} for _ in range(n)]


class _ImageObs(_OnlySampler):
    observation_space = gym.spaces.Box(0.0, 1.0, (4, 4), np.float32)

    def set_task(self, task):
        self.task = task


class _BadSampler(_ImageObs):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def sample_tasks(self, n, rng):
        return {"goal": rng.random((n, 2))}


@pytest.fixture
def registered():
    """Registers test envs under ``test/<name>-v0``; removes them afterwards."""
    ids = []

    def register(name: str, entry_point: type, max_episode_steps: int | None = 5) -> str:
        env_id = f"test/{name}-v0"
        gym.register(env_id, entry_point=entry_point, max_episode_steps=max_episode_steps)
        ids.append(env_id)
        return env_id

    yield register
    for env_id in ids:
        del gym.registry[env_id]


def test_an_env_missing_the_protocol_or_with_unsupported_spaces_is_named_with_the_fix(registered):
    with pytest.raises(ValueError, match=r"env='test/NoTasks-v0': the env has no sample_tasks and no set_task; "):
        make_env(registered("NoTasks", _NoTasks))
    with pytest.raises(ValueError, match=r"the env has no set_task; meta-RL needs sample_tasks\(n, rng\)"):
        make_env(registered("OnlySampler", _OnlySampler))
    with pytest.raises(ValueError, match=r"observation_space is Box\(0\.0, 1\.0, \(4, 4\).*FlattenObservation"):
        make_env(registered("ImageObs", _ImageObs))
    with pytest.raises(ValueError, match=r"sample_tasks\(2, rng\) returned dict; a list of 2 dicts"):
        make_env(registered("BadSampler", _BadSampler))
    with pytest.raises(ValueError, match=r"has no horizon; set model\.init_args\.env_kwargs\.horizon"):
        make_env(registered("NoHorizon", _BadSampler, max_episode_steps=None))
    with pytest.raises(ValueError, match=r"env='Nope-v0': not a built-in task family and not a registered gymnasium"):
        make_env("Nope-v0")
    with pytest.raises(ValueError, match=r"env='no_such_module:X-v0': cannot import 'no_such_module'"):
        make_env("no_such_module:X-v0")


def test_module_colon_id_imports_the_registering_module_and_env_kwargs_reach_gym_make():
    env = make_env("framework_plugins.meta_rl.envs:framework/Bandit-v0", n_arms=3, horizon=4)
    assert (env.discrete, env.n_actions, env.horizon) == (True, 3, 4)
    assert env.sample_tasks(2, torch.Generator().manual_seed(0))["means"].shape == (2, 3)


def test_the_config_accepts_builtin_names_and_registered_ids_and_rejects_others_in_one_line(capsys, tmp_path):
    common = ["--model=MetaRL", "--data=MetaRLTasks", "--print_config"]
    for env in ("point", "framework/PointNav-v0"):
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", *common, f"--model.init_args.env={env}"])
        assert exit_info.value.code == 0 and f"env: {env}" in capsys.readouterr().out
    assert isinstance(MetaRL(env="framework/PointNav-v0", env_kwargs={"horizon": 3}).env.like.probe, gym.Env)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model=MetaRL", "--data=MetaRLTasks", "--model.init_args.env=Nope-v0", f"--run_dir={tmp_path}"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("framework: error: model.init_args.env='Nope-v0': not a built-in task family")
    with pytest.raises(SystemExit):
        main(["fit", "--model.help", "MetaRL"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in ("bandit", "tabular_mdp", "cheetah_vel", "framework/PointNav-v0"))


def test_the_bring_your_own_env_example_meta_trains_on_its_registered_env(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as `python examples/bring_your_own_env.py` has it
    monkeypatch.delitem(sys.modules, "bring_your_own_env", raising=False)
    spec = importlib.util.spec_from_file_location("bring_your_own_env", EXAMPLES / "bring_your_own_env.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.ENV_ID in gym.registry  # importing the module registers the env
    metrics = example.run(tmp_path)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    steps = sorted(k for k in metrics if k.startswith("test/return_step"))
    assert steps == ["test/return_step0", "test/return_step1", "test/return_step2"]
    assert all(math.isfinite(metrics[k]) and -20.0 <= metrics[k] <= 0.0 for k in steps)  # 20 steps, reward in [-2, 0]
