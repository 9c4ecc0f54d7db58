"""The statistics of an experiment report: per-variant mean and sd over seeds, paired differences with t intervals.

Paired means per seed: variant and reference ran with the same seed (same init, split and simulated data, as the
experiment's ``seed.sets`` states), so the difference d_s = m_variant(s) - m_reference(s) removes the between-seed
variation that unpaired intervals carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    """n values, their mean and sample standard deviation (ddof 1; NaN for n < 2)."""

    n: int
    mean: float
    sd: float


@dataclass(frozen=True)
class PairedDifference:
    """mean d_s over the n seeds both ran, its sd, the two-sided t interval at ``confidence`` and the seeds on which
    the variant is better (strictly, in the metric's direction)."""

    n: int
    mean: float
    sd: float
    low: float
    high: float
    wins: int
    confidence: float


def summarize(values: list[float]) -> Summary:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Summary(0, math.nan, math.nan)
    return Summary(int(x.size), float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else math.nan)


def t_interval(mean: float, sd: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """mean -+ t_{(1+c)/2, n-1} sd / sqrt(n): the interval for a mean from n values (NaN for n < 2)."""
    if n < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def paired_difference(
    variant: dict[int, float], reference: dict[int, float], direction: str = "min", confidence: float = 0.95
) -> PairedDifference:
    """Paired t statistics of variant - reference over the seeds present in both.

    Args:
        variant, reference: seed -> metric value.
        direction: ``min`` (smaller is better) or ``max``; decides what a win is.
    """
    seeds = sorted(set(variant) & set(reference))
    d = np.array([variant[s] - reference[s] for s in seeds], dtype=np.float64)
    summary = summarize(list(d))
    low, high = t_interval(summary.mean, summary.sd, summary.n, confidence)
    wins = int(np.sum(d < 0)) if direction == "min" else int(np.sum(d > 0))
    return PairedDifference(summary.n, summary.mean, summary.sd, low, high, wins, confidence)
