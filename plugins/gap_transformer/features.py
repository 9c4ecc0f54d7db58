"""Anchor covariates and simple history summaries: the inputs of the least-squares and boosted-tree baselines.

From one anchor's history (values (V, F) z-scored, mask (V, F), times (V,) <= 0, visit_valid (V,), static (S,)):

- ``last_f``: the most recent observed value of measure f (0 = the training mean if never observed);
- ``age_f``: years since that observation (-t of the last observed visit; ``NEVER`` if never observed);
- ``slope``: the least-squares slope of CDR-SB (z units per year) over the observed history visits (0 with < 2);
- ``gap``: years from the previous visit to the anchor (``NEVER`` without a previous visit); ``visits``: count;
- the static covariates.

So P = 2 F + 3 + S columns, in that order (:func:`feature_names`).
"""

from __future__ import annotations

import torch

from framework_plugins.gap_transformer.schema import FEATURES, STATIC, TARGET

NEVER = 10.0  # years: stands for "never observed" in the age / gap columns


def feature_names() -> list[str]:
    """The P column names of :func:`history_features`."""
    return [f"last_{f}" for f in FEATURES] + [f"age_{f}" for f in FEATURES] + ["slope", "gap", "visits", *STATIC]


def history_features(
    values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor, visit_valid: torch.Tensor, static: torch.Tensor
) -> torch.Tensor:
    """(B, V, F), (B, V, F), (B, V), (B, V), (B, S) -> (B, 2F + 3 + S) float64 (module docstring)."""
    observed = mask > 0
    v = values.shape[1]
    position = torch.arange(v, device=values.device).view(1, v, 1).expand_as(observed)
    last_idx = torch.where(observed, position, -1).amax(1)  # (B, F), -1 if never
    seen = last_idx >= 0
    take = last_idx.clamp(min=0).unsqueeze(1)
    last = values.gather(1, take).squeeze(1).where(seen, 0.0)
    age = (0.0 - times.unsqueeze(-1).expand_as(values).gather(1, take).squeeze(1)).where(seen, NEVER)
    y_obs = observed[:, :, FEATURES.index(TARGET)].to(values.dtype)
    y = values[:, :, FEATURES.index(TARGET)]
    n = y_obs.sum(1)
    t_mean = (y_obs * times).sum(1) / n.clamp(min=1)
    y_mean = (y_obs * y).sum(1) / n.clamp(min=1)
    sxx = (y_obs * (times - t_mean[:, None]) ** 2).sum(1)
    sxy = (y_obs * (times - t_mean[:, None]) * (y - y_mean[:, None])).sum(1)
    slope = torch.where(sxx > 1e-12, sxy / sxx.clamp(min=1e-12), 0.0)
    count = visit_valid.sum(1)
    previous = times.gather(1, (count - 2).clamp(min=0).unsqueeze(1)).squeeze(1)
    gap = torch.where(count >= 2, 0.0 - previous, NEVER)
    columns = [last, age, slope[:, None], gap[:, None], count[:, None].to(values.dtype), static]
    return torch.cat([c.to(torch.float64) for c in columns], dim=1)
