"""Per-step baselines for SG-MRL's score-function term (variance reduction that keeps the estimator unbiased).

The score term of SG-MRL, written per step of each inner batch D_k (trajectory n, step t, alive mask m):

    sum_k sum_{n,t} m_{k,n,t} (J_hat(D_o) - b_{k,n,t}) / sigma  grad log pi_{theta_k(theta)}(a_{k,n,t} | s_{k,n,t}).

Why any b of the kind below keeps it unbiased: given theta_k (that is, given D_0..D_{k-1}), the action a_{k,n,t} is
drawn from pi_{theta_k}(. | s_{k,n,t}), so E[grad log pi_{theta_k}(a_{k,n,t} | s_{k,n,t}) | s_{k,n,t}, X] = 0 for
every X independent of a_{k,n,t} given s_{k,n,t} and theta_k; the chain-rule factor d theta_k / d theta is a
function of D_0..D_{k-1} only. Hence E[b_{k,n,t} grad log pi(...)] = 0 whenever b_{k,n,t} depends only on
s_{k,n,t}, the step index t, the *other* trajectories of D_k (i.i.d. given theta_k), the earlier inner batches
and the *other* tasks of the meta-batch. A b that looks at a_{k,n,t} or anything after it (the trajectory's own
return, D_o, whose policy theta_K depends on a_{k,n,t}) does not (the negative control of the tests).

- ``inner_batch``: b_{k,n} = J_hat(D_k without tau_n), the per-step return of the other N - 1 trajectories of the
  same inner batch (0 when N = 1): an estimate of the task's pre-update return J(theta_k) that costs no rollout
  (the ``pre_update`` baseline samples an extra batch for the same purpose).
- ``learned``: b_{k,n,t} = phi_{k,n,t} . w_{k,-i} for task i, with the ProMP/rllab linear features of the state
  and time [s, s^2, t/100, (t/100)^2, (t/100)^3, 1] (:func:`~framework_plugins.meta_rl.advantages.linear_features`)
  plus the ``inner_batch`` return J_hat(D_k without tau_n), and w_{k,-i} the ridge least-squares fit of the other
  tasks' J_hat_j(D_o) on their features phi_{j,k,n,t} (one row per alive step): a time- and state-dependent
  predictor of the post-update return, learned across the meta-batch, never from task i's own data.

Both reduce the variance of the term by making J_hat(D_o) - b small: its size multiplies a sum of N H zero-mean
score vectors. They do not remove the noise of J_hat(D_o) itself, which no baseline may depend on.
"""

from __future__ import annotations

import torch

from framework_plugins.meta_rl.advantages import linear_features
from framework_plugins.meta_rl.rollout import Trajectories

RIDGE = 1e-6  # relative to the mean diagonal of the Gram matrix (one-hot states make the features collinear)


def trajectory_returns(batch: Trajectories, gamma: float) -> torch.Tensor:
    """J_hat(tau_n) = (1 / H) sum_t gamma^t r_{n,t} per trajectory ``(T, N)``."""
    discount = gamma ** torch.arange(batch.horizon, dtype=batch.rewards.dtype)
    return (discount * batch.rewards).sum(-1) / batch.horizon


def leave_one_trajectory_out_return(batch: Trajectories, gamma: float) -> torch.Tensor:
    """J_hat(D without tau_n) = mean_{m != n} J_hat(tau_m) ``(T, N)`` (zeros when N = 1)."""
    per_traj = trajectory_returns(batch, gamma)
    n = per_traj.shape[1]
    if n == 1:
        return torch.zeros_like(per_traj)
    return (per_traj.sum(1, keepdim=True) - per_traj) / (n - 1)


def score_features(batch: Trajectories, gamma: float) -> torch.Tensor:
    """phi ``(T, N, H, F)``: the linear state/time features and J_hat(D without tau_n), zero after termination."""
    loo = leave_one_trajectory_out_return(batch, gamma)[..., None].expand(-1, -1, batch.horizon)
    return torch.cat([linear_features(batch), (loo * batch.mask).unsqueeze(-1)], dim=-1)


def leave_one_task_out_weights(features: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """w_{-i} ``(T, F)``: ridge least squares of targets_j ``(T,)`` on the rows features_{j,n,t} ``(T, N, H, F)``
    with mask_{j,n,t} = 1, over the tasks j != i: w_{-i} = (G - G_i + lambda I)^{-1} (c - c_i), G_j = sum phi
    phi^T, c_j = sum phi y_j, lambda = RIDGE * mean diag(G - G_i) (float64; zeros when T = 1)."""
    if features.shape[0] == 1:
        return torch.zeros(1, features.shape[-1], dtype=features.dtype)
    phi = (features * mask.unsqueeze(-1)).double()
    gram_j = torch.einsum("tnhf,tnhg->tfg", phi, phi)
    cross_j = phi.sum((1, 2)) * targets.double()[:, None]
    gram = gram_j.sum(0) - gram_j
    ridge = RIDGE * torch.diagonal(gram, dim1=-2, dim2=-1).mean(-1) + 1e-12
    eye = torch.eye(phi.shape[-1], dtype=torch.float64)
    w = torch.linalg.solve(gram + ridge[:, None, None] * eye, (cross_j.sum(0) - cross_j).unsqueeze(-1))
    return w.squeeze(-1).to(features.dtype)


def learned_baseline(
    batch: Trajectories, targets: torch.Tensor, gamma: float, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """b ``(T, N, H)`` = phi . w_{-i} for an inner batch D_k ``(T, N, H)`` and the tasks' J_hat(D_o) ``(T,)``.
    ``weights``: w ``(F,)`` or ``(T, F)`` given in place of the leave-one-task-out fit (for exact expectations over
    one task, whose fit would be over the other tasks: the estimate is linear in w, so a constant w gives it)."""
    phi = score_features(batch, gamma)
    if weights is None:
        weights = leave_one_task_out_weights(phi, targets, batch.mask)
    return torch.einsum("tnhf,tf->tnh", phi, weights.expand(phi.shape[0], -1))
