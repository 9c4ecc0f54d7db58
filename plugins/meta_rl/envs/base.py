"""The batched tensor task-environment interface: all tasks x trajectories step at once.

A task family (bandit, tabular MDP, 2-D navigation) is written twice: a gymnasium env (one task, one trajectory,
NumPy, for the API and as an independent reference) and a :class:`TensorTaskEnv` (PyTorch, shape ``(T, N, ...)``
for T tasks x N trajectories). All randomness of a step is drawn up front as a ``noise`` tensor of shape
``(T, N, len(noise_spec))`` whose columns are ``"uniform"`` (U[0, 1)) or ``"normal"`` (N(0, 1)) draws, in the
same order in which the gymnasium env draws them from its ``np_random``, so the two can be compared step for step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

Tasks = dict[str, torch.Tensor]


def draw_noise(
    spec: tuple[str, ...],
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor | None:
    """Noise of shape ``(*shape, len(spec))``: column j is U[0,1) if ``spec[j] == "uniform"`` else N(0,1)."""
    if not spec:
        return None
    cols = [
        torch.rand(shape, generator=generator, dtype=dtype, device=device)
        if kind == "uniform"
        else torch.randn(shape, generator=generator, dtype=dtype, device=device)
        for kind in spec
    ]
    return torch.stack(cols, dim=-1)


class TaskDistribution(ABC):
    """A task family's distribution and shapes, without stepping (a simulator such as MuJoCo steps it).

    Attributes: ``obs_dim``; ``discrete`` (categorical actions) with ``n_actions``, else ``action_dim``;
    ``horizon`` (steps per episode).
    """

    obs_dim: int
    discrete: bool
    n_actions: int = 0
    action_dim: int = 0
    horizon: int
    dtype: torch.dtype = torch.float32

    @abstractmethod
    def sample_tasks(self, n: int, generator: torch.Generator | None = None) -> Tasks:
        """``n`` tasks from the task distribution: a dict of tensors with leading dimension ``n``."""

    def tasks_from_seeds(self, seeds: torch.Tensor) -> Tasks:
        """Task i drawn from ``Generator().manual_seed(seeds[i])``: each task depends on its seed only."""
        drawn = [self.sample_tasks(1, torch.Generator().manual_seed(int(s))) for s in seeds.tolist()]
        return {key: torch.cat([d[key] for d in drawn]) for key in drawn[0]}


class TensorTaskEnv(TaskDistribution):
    """T tasks x N trajectories of one task family, stepped as tensors. ``noise_spec``: see the module docstring."""

    noise_spec: tuple[str, ...] = ()

    @abstractmethod
    def reset(self, tasks: Tasks, n_traj: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Start ``n_traj`` episodes of every task; returns observations ``(T, N, obs_dim)``. ``generator`` seeds
        envs with their own RNG (gymnasium vector envs); the tensor envs start deterministically."""

    @abstractmethod
    def step(self, action: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Apply ``action`` (``(T, N)`` long or ``(T, N, action_dim)``); returns ``(obs (T,N,obs_dim),
        reward (T,N), terminated (T,N) bool)``."""

    def random_step(
        self, action: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`step` with noise drawn from ``generator`` (the global RNG if None)."""
        shape = tuple(action.shape[:2])
        return self.step(action, draw_noise(self.noise_spec, shape, generator, self.dtype, self.device))

    device: torch.device = torch.device("cpu")
