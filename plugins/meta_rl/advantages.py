"""Advantages for the policy-gradient surrogates: reward-to-go, GAE(lambda), and a linear feature baseline fitted
leave-one-trajectory-out, so that trajectory n's baseline does not depend on trajectory n (the gradient estimate
stays unbiased)."""

from __future__ import annotations

from typing import Literal

import torch

from framework_plugins.meta_rl.rollout import Trajectories

Baseline = Literal["none", "linear"]


def discounted_cumsum(x: torch.Tensor, discount: float) -> torch.Tensor:
    """y_t = sum_{t' >= t} discount^(t' - t) x_t' along the last axis (reverse recursion)."""
    out = torch.zeros_like(x)
    running = torch.zeros_like(x[..., 0])
    for t in reversed(range(x.shape[-1])):
        running = x[..., t] + discount * running
        out[..., t] = running
    return out


def linear_features(batch: Trajectories) -> torch.Tensor:
    """ProMP/rllab ``LinearFeatureBaseline`` features [s, s^2, t/100, (t/100)^2, (t/100)^3, 1]: ``(T, N, H, F)``."""
    obs = batch.obs
    t = (torch.arange(batch.horizon, dtype=obs.dtype) / 100.0).expand(*obs.shape[:2], -1).unsqueeze(-1)
    return torch.cat([obs, obs**2, t, t**2, t**3, torch.ones_like(t)], dim=-1) * batch.mask.unsqueeze(-1)


def leave_one_out_baseline(
    batch: Trajectories, returns: torch.Tensor, ridge: float = 1e-5, max_ridge: float = 1e5
) -> torch.Tensor:
    """b_{n,t} = phi_{n,t} . w_{-n}, with w_{-n} the ridge least-squares fit of the returns-to-go of the other
    N - 1 trajectories of the same task: w_{-n} = (G - G_n + ridge I)^{-1} (c - c_n), G_n = sum_t phi phi^T,
    c_n = sum_t phi R. Where that system is singular in floating point (a collapsed policy whose features no longer
    span), its ridge is raised tenfold until it solves, as rllab's ``LinearFeatureBaseline`` does; past
    ``max_ridge`` it raises. ``returns``: ``(T, N, H)``; output ``(T, N, H)``."""
    if ridge <= 0:
        raise ValueError(f"ridge={ridge} must be > 0 (it is raised tenfold where a fit is singular).")
    phi = linear_features(batch)
    gram_n = torch.einsum("tnhf,tnhg->tnfg", phi, phi)
    cross_n = torch.einsum("tnhf,tnh->tnf", phi, returns)
    gram, cross = gram_n.sum(1, keepdim=True) - gram_n, cross_n.sum(1, keepdim=True) - cross_n
    eye = torch.eye(phi.shape[-1], dtype=phi.dtype)
    w, info = torch.linalg.solve_ex(gram + ridge * eye, cross)
    while bool((info != 0).any()):
        ridge *= 10
        if ridge > max_ridge or not bool(torch.isfinite(gram).all()):
            raise FloatingPointError(
                f"the linear baseline's least-squares fit stays singular up to ridge {max_ridge:g} (or its features "
                "are not finite): the policy has collapsed; lower the learning rate or use baseline 'none'."
            )
        w_more, info_more = torch.linalg.solve_ex(gram + ridge * eye, cross)
        failed = info != 0
        w = torch.where(failed[..., None], w_more, w)
        info = torch.where(failed, info_more, info)
    return torch.einsum("tnhf,tnf->tnh", phi, w)


def compute_advantages(
    batch: Trajectories, gamma: float, gae_lambda: float = 1.0, baseline: Baseline = "none", normalize: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages A ``(T, N, H)`` and their per-task scale sigma ``(T,)`` (1 unless ``normalize``).

    ``none``: A_t = sum_{t' >= t} gamma^(t'-t) r_t'. ``linear``: GAE (Schulman et al. 2016, Eq. 16)
    A_t = sum_k (gamma lambda)^k delta_{t+k}, delta_t = r_t + gamma b_{t+1} - b_t, with the leave-one-out linear
    baseline b fitted to the returns-to-go. ``normalize``: A <- (A - mean) / sigma per task (ProMP/MAML practice;
    this makes the inner gradient a biased estimate of grad J, see README).
    """
    if baseline not in ("none", "linear"):
        raise ValueError(f"baseline={baseline!r} is unknown; choose 'none' or 'linear'.")
    rtg = discounted_cumsum(batch.rewards, gamma) * batch.mask
    if baseline == "none":
        adv = rtg
    else:
        values = leave_one_out_baseline(batch, rtg) * batch.mask
        next_values = torch.cat([values[..., 1:], torch.zeros_like(values[..., :1])], -1)
        adv = discounted_cumsum(batch.rewards + gamma * next_values - values, gamma * gae_lambda) * batch.mask
    scale = torch.ones(adv.shape[0], dtype=adv.dtype)
    if normalize:
        count = batch.mask.sum((1, 2))
        mean = adv.sum((1, 2)) / count
        var = ((adv - mean[:, None, None]) ** 2 * batch.mask).sum((1, 2)) / count
        scale = var.sqrt() + 1e-8
        adv = (adv - mean[:, None, None]) / scale[:, None, None] * batch.mask
    return adv.detach(), scale.detach()
