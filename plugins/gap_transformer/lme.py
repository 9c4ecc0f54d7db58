"""The LME reference: statsmodels MixedLM with a random intercept per participant, fixed effects chosen by BIC.

Model (anchor level): y_ia = x_ia^T beta + b_i + eps_ia, b_i ~ N(0, sigma_b^2), eps ~ N(0, sigma^2), where y is the
24-month CDR-SB change and x the anchor covariates (each measure's last value at or before the anchor, standardised
with training-fold means/SDs; a value never observed is imputed by the training mean, so every candidate model is
fitted on identical rows). Selection: forward stepwise from ``forced`` covariates, adding the candidate that lowers
BIC = -2 llf + log(n) (p + 1) most, until none does; every fit is ML (``reml=False``: REML BIC is undefined).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class LMEFit:
    """A fitted, selected LME. ``beta``: (1 + p,) intercept then ``covariates`` (standardised units)."""

    covariates: tuple[str, ...]
    beta: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    sigma2_b: float
    sigma2: float
    bic_path: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def design(self, table: pd.DataFrame) -> np.ndarray:
        """(n, 1 + p) design matrix [1, (x - center) / scale] with missing x imputed by the training mean."""
        x = table[list(self.covariates)].to_numpy(float)
        x = np.where(np.isnan(x), self.center, x)
        return np.column_stack([np.ones(len(x)), (x - self.center) / self.scale])

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Population (fixed-effects) prediction x^T beta: the BLUP of a participant never seen in training."""
        return self.design(table) @ self.beta

    def predict_blup(
        self, table: pd.DataFrame, y: np.ndarray, rid: np.ndarray, years: np.ndarray, label_years: np.ndarray
    ) -> np.ndarray:
        """x^T beta + b_hat with b_hat = sigma_b^2 / (sigma_b^2 + sigma^2 / n) * mean(y - x^T beta) over the n
        anchors of the same participant whose *outcome* visit is at or before this anchor (label_years <= years),
        so no outcome after the anchor leaks in; n = 0 gives the population prediction."""
        fixed = self.predict(table)
        resid = y - fixed
        out = fixed.copy()
        for participant in np.unique(rid):
            rows = np.flatnonzero(rid == participant)
            for a in rows:
                usable = rows[label_years[rows] <= years[a]]
                if usable.size:
                    shrink = self.sigma2_b / (self.sigma2_b + self.sigma2 / usable.size)
                    out[a] += shrink * resid[usable].mean()
        return out


def _fit(y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> object:
    """ML fit of y = [1, x] beta + b_group + eps (statsmodels MixedLM, random intercept)."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        return sm.MixedLM(y, np.column_stack([np.ones(len(y)), x]), groups=groups).fit(reml=False)


def select_lme(
    table: pd.DataFrame, y: np.ndarray, groups: np.ndarray, candidates: tuple[str, ...], forced: tuple[str, ...] = ()
) -> LMEFit:
    """Forward BIC selection (module docstring) on the training-fold anchors ``table`` (n rows), targets ``y`` (n,)
    and participant ids ``groups`` (n,). Returns the selected model's ML fit."""
    names = list(dict.fromkeys([*forced, *candidates]))
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise ValueError(f"LME covariates {missing} are not anchor columns; choose from {list(table.columns)}.")
    raw = table[names].to_numpy(float)
    center = np.nanmean(raw, axis=0)
    if np.isnan(center).any():
        empty = [n for n, c in zip(names, center, strict=True) if np.isnan(c)]
        raise ValueError(
            f"LME covariates {empty} are never observed in the training fold; drop them from lme_candidates."
        )
    scale = np.nanstd(raw, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    x_all = (np.where(np.isnan(raw), center, raw) - center) / scale
    column = {n: j for j, n in enumerate(names)}

    def bic(chosen: list[str]) -> tuple[float, object]:
        result = _fit(y, x_all[:, [column[c] for c in chosen]], groups)
        return float(result.bic), result

    chosen = list(dict.fromkeys(forced))
    best, result = bic(chosen)
    path = [(tuple(chosen), best)]
    remaining = [c for c in names if c not in chosen]
    while remaining:
        trials = [(*bic([*chosen, c]), c) for c in remaining]
        score, trial_result, name = min(trials, key=lambda t: t[0])
        if not score < best:
            break
        chosen.append(name)
        remaining.remove(name)
        best, result = score, trial_result
        path.append((tuple(chosen), best))
    idx = [column[c] for c in chosen]
    return LMEFit(
        covariates=tuple(chosen),
        beta=np.asarray(result.fe_params, float),
        center=center[idx],
        scale=scale[idx],
        sigma2_b=float(np.asarray(result.cov_re)[0, 0]),
        sigma2=float(result.scale),
        bic_path=path,
    )
