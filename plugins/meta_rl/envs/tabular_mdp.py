"""Random tabular MDPs (Duan et al. 2016, RL^2; MAML-RL ``TabularMDP-v0``): S states, A actions, transitions
P(.|s, a) ~ Dirichlet(1), reward means R(s, a) ~ N(1, 1), rewards r ~ N(R(s, a), reward_std^2), start state 0,
one-hot observations, ``horizon`` steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv


def _check(n_states: int, n_actions: int, reward_std: float) -> None:
    if n_states < 1 or n_actions < 2:
        raise ValueError(f"env_kwargs n_states={n_states}, n_actions={n_actions}: need n_states >= 1, n_actions >= 2.")
    if reward_std < 0:
        raise ValueError(f"env_kwargs.reward_std={reward_std} must be >= 0.")


class TabularMDPEnv(gym.Env):
    """One tabular MDP task (gymnasium API). Task: ``{"transitions": (S, A, S), "rewards": (S, A)}``.
    Step noise, in order: one uniform u (next state = first s' with u < cumsum P(.|s, a)), one normal z
    (r = R(s, a) + reward_std z)."""

    def __init__(self, n_states: int = 10, n_actions: int = 5, reward_std: float = 1.0) -> None:
        _check(n_states, n_actions, reward_std)
        self.n_states, self.n_actions, self.reward_std = n_states, n_actions, reward_std
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n_states,), np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)
        self.set_task(self.sample_tasks(1)[0])

    def sample_tasks(self, n: int, rng: np.random.Generator | None = None) -> list[dict[str, np.ndarray]]:
        """``n`` tasks drawn from ``rng`` (the env's ``np_random`` when None): the task protocol of
        :class:`~framework_plugins.meta_rl.envs.registered.TaskEnv`."""
        rng = self.np_random if rng is None else rng
        shape = (self.n_states, self.n_actions)
        return [
            {
                "transitions": rng.dirichlet(np.ones(self.n_states), size=shape),
                "rewards": rng.normal(1.0, 1.0, size=shape),
            }
            for _ in range(n)
        ]

    def set_task(self, task: dict[str, np.ndarray]) -> None:
        self.task = {k: np.asarray(v, dtype=np.float64) for k, v in task.items()}

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n_states, np.float32)
        obs[self.state] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if options and "task" in options:
            self.set_task(options["task"])
        self.state = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        u, z = self.np_random.random(), self.np_random.standard_normal()
        mean = self.task["rewards"][self.state, int(action)]
        cdf = np.cumsum(self.task["transitions"][self.state, int(action)])
        self.state = int(min(np.sum(u >= cdf), self.n_states - 1))
        return self._obs(), float(mean + self.reward_std * z), False, False, {}


class TensorTabularMDP(TensorTaskEnv):
    """Batched :class:`TabularMDPEnv`: tasks ``{"transitions": (T, S, A, S), "rewards": (T, S, A)}``."""

    discrete = True
    noise_spec = ("uniform", "normal")

    def __init__(
        self,
        n_states: int = 10,
        n_actions: int = 5,
        horizon: int = 10,
        reward_std: float = 1.0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        _check(n_states, n_actions, reward_std)
        self.n_states, self.n_actions, self.horizon = n_states, n_actions, horizon
        self.reward_std, self.dtype, self.obs_dim = reward_std, dtype, n_states

    def sample_tasks(self, n: int, generator: torch.Generator | None = None) -> Tasks:
        shape = (n, self.n_states, self.n_actions)
        expo = -torch.log1p(-torch.rand(*shape, self.n_states, generator=generator, dtype=self.dtype))
        return {
            "transitions": expo / expo.sum(-1, keepdim=True),  # Dirichlet(1) = normalised Exp(1)
            "rewards": 1.0 + torch.randn(shape, generator=generator, dtype=self.dtype),
        }

    def _obs(self) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.state, self.n_states).to(self.dtype)

    def reset(self, tasks: Tasks, n_traj: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self.transitions, self.rewards = tasks["transitions"], tasks["rewards"]
        self.state = torch.zeros(len(self.rewards), n_traj, dtype=torch.long)
        return self._obs()

    def step(self, action: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        t_idx = torch.arange(len(self.rewards)).unsqueeze(1)
        mean = self.rewards[t_idx, self.state, action]  # (T, N)
        cdf = self.transitions[t_idx, self.state, action].cumsum(-1)  # (T, N, S)
        self.state = (noise[..., :1] >= cdf).sum(-1).clamp(max=self.n_states - 1)
        reward = mean + self.reward_std * noise[..., 1]
        return self._obs(), reward, torch.zeros_like(action, dtype=torch.bool)
