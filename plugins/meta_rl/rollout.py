"""Sample T tasks x N trajectories of fixed horizon H from a batched env under a (per-task) policy."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from framework_plugins.meta_rl.envs.base import Tasks, TensorTaskEnv
from framework_plugins.meta_rl.policy import MLPPolicy, Params


@dataclass
class Trajectories:
    """A batch D of trajectories. obs ``(T, N, H, obs_dim)``; actions ``(T, N, H)`` (long) or
    ``(T, N, H, action_dim)``; rewards ``(T, N, H)`` (0 after termination); mask ``(T, N, H)`` = 1 while the
    episode is running (the step's action was taken before termination)."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor

    @property
    def horizon(self) -> int:
        return self.rewards.shape[-1]

    def episode_return(self) -> torch.Tensor:
        """Undiscounted return per task, averaged over trajectories: ``(T,)``."""
        return self.rewards.sum(-1).mean(-1)


@torch.no_grad()
def rollout(
    env: TensorTaskEnv,
    policy: MLPPolicy,
    params: Params,
    tasks: Tasks,
    n_traj: int,
    generator: torch.Generator | None = None,
) -> Trajectories:
    """Run ``env.horizon`` steps of ``n_traj`` episodes per task with a ~ pi_params; all randomness (actions, env
    noise) from ``generator`` (the global RNG if None)."""
    params = {k: v.detach() for k, v in params.items()}
    obs = env.reset(tasks, n_traj, generator)
    alive = torch.ones(obs.shape[:2], dtype=torch.bool)
    record: dict[str, list[torch.Tensor]] = {"obs": [], "actions": [], "rewards": [], "mask": []}
    for _ in range(env.horizon):
        action = policy.sample(params, obs.to(next(iter(params.values())).dtype), generator)
        next_obs, reward, terminated = env.random_step(action, generator)
        mask = alive.to(reward.dtype)
        for key, value in zip(record, (obs, action, reward * mask, mask), strict=True):
            record[key].append(value)
        alive = alive & ~terminated
        obs = next_obs
    return Trajectories(*(torch.stack(v, dim=2) for v in record.values()))
