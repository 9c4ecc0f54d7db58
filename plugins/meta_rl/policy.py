"""Functional MLP policies: one set of weights, or one per task (after adaptation), evaluated with batched matmuls."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

Params = dict[str, torch.Tensor]


class MLPPolicy(nn.Module):
    """pi_theta(a | s): a tanh MLP giving logits (categorical, ``discrete``) or the mean of a Gaussian with a
    state-independent ``log_std`` (Finn et al. 2017, Sec. 5.3).

    The forward is functional: every method takes a params dict with the names of ``named_parameters()``; a tensor
    is either shared (its usual shape) or per task (a leading task dimension T), e.g. ``layers.0.weight`` of shape
    ``(hidden, obs_dim)`` or ``(T, hidden, obs_dim)``. Observations are ``(T, ..., obs_dim)``.
    """

    def __init__(
        self, obs_dim: int, n_out: int, discrete: bool, hidden: Sequence[int] = (100, 100), init_log_std: float = 0.0
    ) -> None:
        super().__init__()
        sizes = [obs_dim, *hidden, n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.discrete = discrete
        if not discrete:
            self.log_std = nn.Parameter(torch.full((n_out,), float(init_log_std)))

    def params(self) -> Params:
        """The module's own parameters as a params dict (shared across tasks)."""
        return dict(self.named_parameters())

    def head(self, params: Params, obs: torch.Tensor) -> torch.Tensor:
        """Logits or Gaussian mean ``(T, M, n_out)`` for ``obs`` of shape ``(T, M, obs_dim)``."""
        h = obs
        for i in range(len(self.layers)):
            weight, bias = params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]
            h = torch.matmul(h, weight.transpose(-1, -2)) + (bias.unsqueeze(-2) if bias.dim() == 2 else bias)
            if i < len(self.layers) - 1:
                h = torch.tanh(h)
        return h

    def _log_std(self, params: Params) -> torch.Tensor:
        log_std = params["log_std"]
        return log_std.unsqueeze(-2) if log_std.dim() == 2 else log_std

    def log_prob(self, params: Params, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) of shape ``obs.shape[:-1]``; obs ``(T, ..., obs_dim)``, actions ``(T, ...)`` (long) or
        ``(T, ..., action_dim)``."""
        lead = obs.shape[:-1]
        out = self.head(params, obs.reshape(lead[0], -1, obs.shape[-1]))
        if self.discrete:
            logp = torch.log_softmax(out, -1).gather(-1, actions.reshape(lead[0], -1, 1)).squeeze(-1)
        else:
            log_std = self._log_std(params)
            z = (actions.reshape(lead[0], -1, out.shape[-1]) - out) * torch.exp(-log_std)
            logp = (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return logp.reshape(lead)

    def sample(self, params: Params, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """a ~ pi(. | s) for obs ``(T, N, obs_dim)``: ``(T, N)`` long or ``(T, N, action_dim)``."""
        out = self.head(params, obs)
        if self.discrete:
            u = torch.rand(out.shape[:-1], generator=generator, dtype=out.dtype, device=out.device)
            cdf = torch.softmax(out, -1).cumsum(-1)
            return (u.unsqueeze(-1) >= cdf).sum(-1).clamp(max=out.shape[-1] - 1)
        noise = torch.randn(out.shape, generator=generator, dtype=out.dtype, device=out.device)
        return out + torch.exp(self._log_std(params)) * noise


def per_task(params: Params, n_tasks: int) -> Params:
    """Shared params broadcast to a leading task dimension ``(n_tasks, ...)`` (a differentiable view), so that one
    ``autograd.grad`` of the summed per-task surrogates gives every task's own gradient."""
    return {k: v.unsqueeze(0).expand(n_tasks, *v.shape) for k, v in params.items()}
