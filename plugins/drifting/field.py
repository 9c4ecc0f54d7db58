"""Drifting fields V = V+_p - V-_q (Deng et al. 2026, "Generative Modeling via Drifting", Eqs. 8-12, Alg. 2).

Shapes: queries x: (n, d), positives (data) y_pos: (n_pos, d), negatives (generated) y_neg: (n_neg, d).
"""

from __future__ import annotations

import torch

from framework_plugins.drifting.kernels import KernelName, log_kernel

SELF_PENALTY = 1e6  # added to the logits' distance of x_i to itself when the negatives are the queries (Alg. 2)


def mean_shift_field(
    x: torch.Tensor, y_pos: torch.Tensor, y_neg: torch.Tensor, kernel: KernelName, ell: float
) -> torch.Tensor:
    """The population form estimated with samples: V(x) = sum_j k(x, y+_j)(y+_j - x) / sum_j k(x, y+_j)
    - sum_j k(x, y-_j)(y-_j - x) / sum_j k(x, y-_j)  (Eqs. 8-10). Zero when the two sample sets coincide."""

    def shift(y: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(log_kernel(torch.cdist(x, y), kernel, ell), dim=1)
        return w @ y - x

    return shift(y_pos) - shift(y_neg)


def batch_field(
    x: torch.Tensor,
    y_pos: torch.Tensor,
    y_neg: torch.Tensor,
    kernel: KernelName,
    ell: float,
    neg_is_x: bool = False,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """The batch estimator of Alg. 2 with a doubly-normalised kernel over the concatenation [pos | neg]:

        L = log k(|x_i - y_j|)  (self-pairs pushed out with +1e6 on the distance when ``neg_is_x``)
        A = sqrt(softmax_row(L) * softmax_col(L))           (row: over all y; column: over all queries x)
        W+ = A+ * rowsum(A-),  W- = A- * rowsum(A+),  V = W+ y+ - W- y-

    Anti-symmetric by construction, V(x; A, B) = -V(x; B, A), and V(x; A, A) = 0. ``chunk_size`` computes it in
    blocks of queries with two streaming passes (column log-sum-exp first), so memory is O(chunk * (n_pos+n_neg)).
    """
    targets = torch.cat([y_pos, y_neg])
    n_pos = len(y_pos)
    chunk = chunk_size or len(x)

    def logits(start: int) -> torch.Tensor:
        block = x[start : start + chunk]
        dist = torch.cdist(block, targets)
        if neg_is_x:
            rows = torch.arange(len(block), device=x.device)
            dist[rows, n_pos + start + rows] += SELF_PENALTY
        return log_kernel(dist, kernel, ell)

    starts = range(0, len(x), chunk)
    # pass 1 (chunked only): log-sum-exp over all queries for every column
    col_lse = torch.stack([logits(s).logsumexp(0) for s in starts]).logsumexp(0) if chunk < len(x) else None
    out = []
    for s in starts:  # pass 2
        lg = logits(s)
        col = lg - (lg.logsumexp(0, keepdim=True) if col_lse is None else col_lse)
        a = (0.5 * (lg.log_softmax(1) + col)).exp()
        a_pos, a_neg = a[:, :n_pos], a[:, n_pos:]
        w_pos = a_pos * a_neg.sum(1, keepdim=True)
        w_neg = a_neg * a_pos.sum(1, keepdim=True)
        out.append(w_pos @ y_pos - w_neg @ y_neg)
    return torch.cat(out)


def normalized_drift_loss(
    x: torch.Tensor,
    y_pos: torch.Tensor,
    kernel: KernelName,
    temperatures: tuple[float, ...],
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The multi-temperature recipe of the official code: distances measured in units of their batch mean
    (feature normalisation, stop-gradient), a field per temperature tau divided by its RMS (drift normalisation),
    the normalised fields summed; loss = MSE(x, stopgrad(x + V_total)).

    Returns (loss, raw_sq): ``loss`` is roughly constant (~ number of temperatures) by construction and is NOT a
    convergence signal; ``raw_sq`` = mean ||V_tau||^2 of the unnormalised fields, averaged over temperatures, is.
    """
    xd = x.detach()
    with torch.no_grad():
        scale = torch.cdist(xd, torch.cat([y_pos, xd])).mean().clamp_min(1e-12)
        total, raw = torch.zeros_like(xd), []
        for tau in temperatures:
            v = batch_field(xd / scale, y_pos / scale, xd / scale, kernel, tau, neg_is_x=True, chunk_size=chunk_size)
            v = v * scale
            raw.append(v.pow(2).sum(1).mean())
            total += v / raw[-1].sqrt().clamp_min(1e-12)
    loss = (x - (xd + total)).pow(2).sum(1).mean()
    return loss, torch.stack(raw).mean()


def kernel_overlap(x: torch.Tensor, y: torch.Tensor, kernel: KernelName, ell: float) -> torch.Tensor:
    """Phi(q) = E_{x~q, y~p} k(|x - y|) estimated from samples. Used (as this project's assumption, not a result of
    the paper) as the missing-mass monitor: its ratio to Phi(p) stays near 1 as q -> p and drops towards the
    retained mass c when a fraction 1 - c of q escapes to infinity."""
    return log_kernel(torch.cdist(x, y), kernel, ell).exp().mean()
