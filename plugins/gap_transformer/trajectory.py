"""The conditional trajectory LME: CDR-SB over time with a random intercept and slope per participant, predicted
for an anchor from that participant's own visits at or before the anchor (the BLUP).

Model (visit level, participant i, visit j, t_ij years since the first visit, x_i static covariates standardised
with the training fold's mean / SD):

    CDRSB_ij = beta_0 + beta_t t_ij + x_i^T beta_x + (x_i t_ij)^T beta_xt + b_0i + b_1i t_ij + eps_ij,
    (b_0i, b_1i) ~ N(0, D) (D 2x2 unstructured),  eps_ij ~ N(0, sigma^2),

fitted by REML (statsmodels MixedLM) on every CDR-SB visit of the training participants. For an anchor at t_a with
observed visits y_o (design X_o, Z_o = [1, t], only t <= t_a) the prediction of the change to t_a + h is

    y_ref = x_h^T beta + z_h^T b_hat - CDRSB(t_a),   b_hat = D Z_o^T V^{-1} (y_o - X_o beta),  V = Z_o D Z_o^T + s^2 I,

i.e. the conditional mean E[CDRSB(t_a + h) | y_o] of the joint normal minus the observed anchor score.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework_plugins.gap_transformer.schema import TARGET


@dataclass(frozen=True)
class TrajectoryLME:
    """A fitted random intercept + slope model. ``beta``: fixed effects in the order of :meth:`design`'s columns;
    ``cov_re``: D (2, 2); ``sigma2``: residual variance; ``center`` / ``scale``: of the ``covariates``."""

    covariates: tuple[str, ...]
    beta: np.ndarray
    cov_re: np.ndarray
    sigma2: float
    center: np.ndarray
    scale: np.ndarray

    def design(self, times: np.ndarray, static: np.ndarray) -> np.ndarray:
        """(n, 2 + 2p) fixed-effects design [1, t, x, x t] for times (n,) and raw static covariates (n, p) (a
        missing covariate is imputed by the training mean, i.e. 0 after standardising)."""
        x = np.nan_to_num((static - self.center) / self.scale)
        return np.column_stack([np.ones(len(times)), times, x, x * times[:, None]])

    def blup(self, times: np.ndarray, static: np.ndarray, y: np.ndarray) -> np.ndarray:
        """b_hat = D Z^T V^{-1} (y - X beta) (2,) from one participant's observed visits (times, static, y)."""
        z = np.column_stack([np.ones(len(times)), times])
        v = z @ self.cov_re @ z.T + self.sigma2 * np.eye(len(times))
        return self.cov_re @ z.T @ np.linalg.solve(v, y - self.design(times, static) @ self.beta)

    def predict_change(
        self, history: list[tuple[np.ndarray, np.ndarray]], anchor_years: np.ndarray, static: np.ndarray, horizon: float
    ) -> np.ndarray:
        """y_ref (N,) for N anchors: ``history[n]`` = (times (k,), CDR-SB (k,)) of the observed visits at or before
        anchor n (the last one is the anchor), ``anchor_years`` (N,), ``static`` (N, p) raw covariates."""
        out = np.empty(len(anchor_years))
        for n, (times, y) in enumerate(history):
            s = np.repeat(static[n : n + 1], len(times), axis=0)
            b = self.blup(times, s, y)
            t_h = np.array([anchor_years[n] + horizon])
            out[n] = (self.design(t_h, static[n : n + 1]) @ self.beta)[0] + b @ np.r_[1.0, t_h] - y[-1]
        return out


def fit_trajectory_lme(visits: pd.DataFrame, covariates: tuple[str, ...]) -> TrajectoryLME:
    """REML fit of the module's model on ``visits`` (columns RID, YEARS, CDRSB, *covariates; rows with a missing
    CDR-SB are dropped) of the training participants."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    missing = [c for c in covariates if c not in visits.columns]
    if missing:
        raise ValueError(f"trajectory_covariates {missing} are not visit columns; choose from {list(visits.columns)}.")
    rows = visits[visits[TARGET].notna()]
    raw = rows[list(covariates)].to_numpy(float)
    center, scale = np.nanmean(raw, 0), np.nanstd(raw, 0)
    scale = np.where(scale > 0, scale, 1.0)
    times = rows["YEARS"].to_numpy(float)
    partial = TrajectoryLME(tuple(covariates), np.zeros(0), np.eye(2), 1.0, center, scale)
    x = partial.design(times, raw)
    z = np.column_stack([np.ones(len(times)), times])
    with warnings.catch_warnings():
        for category in (ConvergenceWarning, RuntimeWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        result = sm.MixedLM(rows[TARGET].to_numpy(float), x, groups=rows["RID"].to_numpy(), exog_re=z).fit(
            reml=True, method="lbfgs"
        )
    return TrajectoryLME(
        covariates=tuple(covariates),
        beta=np.asarray(result.fe_params, float),
        cov_re=np.asarray(result.cov_re, float),
        sigma2=float(result.scale),
        center=center,
        scale=scale,
    )


def anchor_histories(
    clean: pd.DataFrame, rid: np.ndarray, years: np.ndarray, covariates: tuple[str, ...]
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """For N anchors (``rid``, ``years``): the (times, CDR-SB) of the participant's observed CDR-SB visits at or
    before the anchor, and the static ``covariates`` (N, p) read from the anchor's own row (the clean frame's static
    columns use only visits at or before each row, so nothing after the anchor is read)."""
    rids = clean["RID"].to_numpy()
    times, scores = clean["YEARS"].to_numpy(float), clean[TARGET].to_numpy(float)
    table = clean[list(covariates)].to_numpy(float)
    lo, hi = np.searchsorted(rids, rid, "left"), np.searchsorted(rids, rid, "right")  # clean is sorted by RID
    history, static = [], np.empty((len(rid), len(covariates)))
    for n, (start, stop, t) in enumerate(zip(lo, hi, years, strict=True)):
        upto = start + np.searchsorted(times[start:stop], t, "right")  # rows at or before the anchor
        keep = ~np.isnan(scores[start:upto])
        history.append((times[start:upto][keep], scores[start:upto][keep]))
        static[n] = table[upto - 1]  # the anchor's own row
    return history, static
