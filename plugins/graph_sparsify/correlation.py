"""Correlation and regression statistics of the sweep analysis (numpy only; tested against ``scipy.stats``).

Pearson r = sum x_c y_c / sqrt(sum x_c^2 sum y_c^2) (x_c = x - mean x); Spearman rho = Pearson r of the ranks (ties
get their average rank); a 95% interval for r by Fisher's z: tanh(atanh r -+ z_{0.975} / sqrt(n - 3)). Partial
correlation of x and y given covariates Z: the Pearson r of the residuals of x and of y after least squares on
[1, Z]. Simple regression y = a + b x: b = sum x_c y_c / sum x_c^2 with the t interval b -+ t_{0.975, n-2} se(b),
se(b)^2 = sum e^2 / ((n - 2) sum x_c^2). Within-group slope (fixed effects): the same with x and y centred per group
and n - g - 1 residual degrees of freedom for g groups (the slope of x in y ~ x + group dummies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri, stdtrit

Z975 = float(ndtri(0.975))


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient r over n points with its 95% Fisher-z interval [low, high] (nan for n < 4)."""

    r: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Slope:
    """y = intercept + slope x by least squares over n points, with the 95% t interval of the slope."""

    slope: float
    intercept: float
    low: float
    high: float
    n: int


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two equally long 1-d arrays (nan if either is constant)."""
    xc, yc = np.asarray(x, float) - np.mean(x), np.asarray(y, float) - np.mean(y)
    denom = math.sqrt(float(xc @ xc) * float(yc @ yc))
    return float(xc @ yc) / denom if denom > 0 else math.nan


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the entries of x, ties sharing their average rank."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    average = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    out = np.empty(len(x))
    out[order] = np.repeat(average, ends - starts)
    return out


def fisher_interval(r: float, n: int) -> tuple[float, float]:
    """95% interval of a correlation from Fisher's z transform (nan for n < 4 or |r| = 1)."""
    if n < 4 or not abs(r) < 1:
        return math.nan, math.nan
    z, half = math.atanh(r), Z975 / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def correlation(x: np.ndarray, y: np.ndarray, method: str = "pearson") -> Correlation:
    """Pearson or Spearman (``method``) correlation of x and y with its Fisher-z interval."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method={method!r}: choose pearson or spearman.")
    if method == "spearman":
        x, y = ranks(x), ranks(y)
    r = pearson(x, y)
    return Correlation(r, *fisher_interval(r, len(x)), len(x))


def residuals(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """y minus its least-squares fit on [1, z] (z: (n,) or (n, p))."""
    design = np.column_stack([np.ones(len(y)), np.asarray(z, float).reshape(len(y), -1)])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return np.asarray(y, float) - design @ coef


def partial_correlation(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Correlation:
    """Pearson r of x and y given covariates z (residuals on [1, z]); the interval uses n - p (p covariates)."""
    z = np.asarray(z, float).reshape(len(x), -1)
    r = pearson(residuals(np.asarray(x, float), z), residuals(np.asarray(y, float), z))
    low, high = fisher_interval(r, len(x) - z.shape[1])
    return Correlation(r, low, high, len(x))


def regression(x: np.ndarray, y: np.ndarray) -> Slope:
    """Least squares y = a + b x with the 95% t interval of b (nan for fewer than 3 points or constant x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    if n < 3 or sxx == 0:
        return Slope(math.nan, math.nan, math.nan, math.nan, n)
    b = float(xc @ (y - y.mean())) / sxx
    a = float(y.mean() - b * x.mean())
    e = y - a - b * x
    half = float(stdtrit(n - 2, 0.975)) * math.sqrt(float(e @ e) / ((n - 2) * sxx))
    return Slope(b, a, b - half, b + half, n)


def within_slope(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Slope:
    """Slope of y on x from the variation inside groups only (y ~ b x + one intercept per group), with its 95% t
    interval on n - g - 1 degrees of freedom (nan when x does not vary inside any group or n - g - 1 < 1); the
    returned intercept is nan (there is one per group)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    _, label = np.unique(np.asarray(groups), return_inverse=True, axis=0)
    label = label.ravel()
    g = int(label.max()) + 1
    counts = np.bincount(label, minlength=g)
    xd = x - (np.bincount(label, x, g) / counts)[label]
    yd = y - (np.bincount(label, y, g) / counts)[label]
    sxx, dof = float(xd @ xd), len(x) - g - 1
    if sxx == 0 or dof < 1:
        return Slope(math.nan, math.nan, math.nan, math.nan, len(x))
    b = float(xd @ yd) / sxx
    e = yd - b * xd
    half = float(stdtrit(dof, 0.975)) * math.sqrt(float(e @ e) / (dof * sxx))
    return Slope(b, math.nan, b - half, b + half, len(x))
