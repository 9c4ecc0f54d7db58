"""A seeded simulator of ADNIMERGE-schema cohorts whose structure lets a gap-aware model matter (or not).

Participant i (all parameters in :class:`SimulatorConfig`; equations and defaults also in the plugin README):

- statics: AGE ~ N(73.5, 7) in [55, 90], 60% male, PTEDUCAT ~ N(16, 2.8) in [6, 20], APOE4 in {0, 1, 2}
  w.p. .53/.39/.08;
- random intercept and slope: b0_i ~ N(mu0, sd0^2) clipped >= 0, b1_i = max(0, mu1 + apoe_slope APOE4 + sd1 z);
- a latent rate fluctuation w_i(t), an Ornstein-Uhlenbeck process with stationary SD ``sd_w`` and time scale ``tau``
  (corr(w(t), w(t + g)) = exp(-g / tau)); with ``gap_effect`` off, w_i(t) = w_i(0) for every t (an extra random
  slope: an old observation is then exactly as informative about w as a new one);
- latent disease D_i(t) = b0_i + b1_i t + int_0^t w_i(s) ds, clinical score
  C_i(t) = D_i(t) + ``acceleration`` * softplus(D_i(t) - ``conversion``)^2 (nonlinear acceleration near conversion);
- observed CDRSB = C + N(0, (``noise`` 0.5)^2), rounded to 0.5, in [0, 18]; MMSE = 28.5 - 0.9 C + N(0, (noise 1.2)^2),
  ADAS13 = 10 + 3 C + N(0, (noise 4)^2), FAQ = 1.2 C + N(0, (noise 2)^2);
- leading biomarkers read the current rate r_i(t) = b1_i + w_i(t), standardised as s = (r - mu1) / RATE_SCALE, which
  reaches C only later: AV45 = 1.1 + 0.12 (lead s + noise e), ABETA = 900 - 250 (lead s + noise e),
  TAU = 300 + 90 (lead s + noise e), PTAU = 28 + 9 (lead s + noise e), FDG = 1.2 - 0.08 (lead s + noise e),
  e ~ N(0, 0.5^2) each; the lagging Hippocampus = 7200 - 250 D + N(0, (noise 150)^2);
  ``lead`` = 0 makes them carry no information about the rate;
- visit times: with ``irregular_visits`` gaps 0.25 + Gamma(2, 0.35) years (mean 0.95), else 0.5 for the first four
  then 1.0, each with N(0, 0.04^2) jitter; follow-up ends at ``max_years`` or at dropout;
- state-dependent missingness: after each visit dropout w.p. sigmoid(logit(``dropout``) + m (C - 3) / 2), and each
  biomarker visit (MRI p = 0.6, FDG / AV45 / CSF p = 0.25 at C = 2) is observed w.p. sigmoid(logit(p) - m (C - 2) / 2)
  (sicker participants have fewer scans); m = ``informative_missingness`` (0 = missing completely at random);
- DX = MCI until the observed CDRSB first reaches 4.5, Dementia from then on; CSF written as ADNIMERGE's censored
  strings (">1700", "<200").

The truth columns ``B0``, ``B1``, ``W`` (w_i at the visit) and ``LATENT`` (C) are written too; loaders ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework_plugins.gap_transformer.schema import FEATURES

CSF_BOUNDS = {"ABETA": (200.0, 1700.0), "TAU": (80.0, 1300.0), "PTAU": (8.0, 120.0)}
# biomarker: (mean, scale per unit of the standardised rate) for AV45, ABETA, TAU, PTAU, FDG
LEADING = {
    "AV45": (1.1, 0.12),
    "ABETA": (900.0, -250.0),
    "TAU": (300.0, 90.0),
    "PTAU": (28.0, 9.0),
    "FDG": (1.2, -0.08),
}
SCAN_P = {"mri": 0.6, "FDG": 0.25, "AV45": 0.25, "csf": 0.25}  # chance a visit has the scan (at C = 2, m = 0)
RATE_SCALE = 0.6  # the rate's spread used to standardise it for the biomarkers
GRID = 1 / 24  # years: w and its integral are simulated on this grid and read at the nearest grid point
TRUTH = ("B0", "B1", "W", "LATENT")


@dataclass(frozen=True)
class SimulatorConfig:
    """Knobs of :func:`simulate_cohort` (module docstring); every effect can be switched off.

    Args:
        gap_effect: w_i(t) an OU process (True) or constant in time (False: the negative control).
        tau: OU time scale in years (information of an observation decays as exp(-gap / tau)).
        sd_w: stationary SD of w (CDR-SB points per year).
        acceleration: gamma of the softplus(D - conversion)^2 term (0 = linear latent trajectories).
        conversion: the latent level around which progression accelerates.
        lead: weight of the current rate in the leading biomarkers (0 = uninformative biomarkers).
        informative_missingness: m, how strongly dropout and scans depend on the clinical state (0 = MCAR).
        irregular_visits: random inter-visit gaps (True) or the ADNI-like fixed schedule with small jitter.
        noise: multiplier of every measurement-noise SD (the CDRSB rounding to 0.5 stays).
        mu0, sd0: random intercept mean / SD; mu1, sd1: random slope mean / SD; apoe_slope: slope per APOE4 allele.
        dropout: per-visit dropout probability at C = 3; max_years: end of follow-up.
    """

    gap_effect: bool = True
    tau: float = 1.5
    sd_w: float = 0.8
    acceleration: float = 0.25
    conversion: float = 3.5
    lead: float = 1.0
    informative_missingness: float = 1.0
    irregular_visits: bool = True
    noise: float = 1.0
    mu0: float = 1.5
    sd0: float = 0.8
    mu1: float = 0.3
    sd1: float = 0.3
    apoe_slope: float = 0.3
    dropout: float = 0.12
    max_years: float = 8.0

    def __post_init__(self) -> None:
        for name in ("tau", "sd_w", "noise", "max_years", "sd0", "sd1"):
            if not getattr(self, name) > 0:
                raise ValueError(f"simulator.{name}={getattr(self, name)} must be > 0.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"simulator.dropout={self.dropout} must be a probability in [0, 1).")


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def latent_paths(
    n: int, cfg: SimulatorConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """APOE4, random effects and the OU path on the grid: (apoe4 (n,), b0 (n,), b1 (n,), w (n, G),
    int_0^t w (n, G)), G grid points
    0, GRID, ..., max_years. The exact OU transition w(t + h) = a w(t) + sd_w sqrt(1 - a^2) xi, a = exp(-h / tau),
    and the integral by the trapezoid rule (read at time t as int(k GRID) + w(k GRID) (t - k GRID), k the nearest grid
    point); without the gap effect w is constant in time (and the integral exactly w t)."""
    apoe4 = rng.choice(3, size=n, p=[0.53, 0.39, 0.08])
    b0 = np.clip(rng.normal(cfg.mu0, cfg.sd0, n), 0.0, None)
    b1 = np.clip(cfg.mu1 + cfg.apoe_slope * apoe4 + rng.normal(0, cfg.sd1, n), 0.0, None)
    steps = int(np.ceil(cfg.max_years / GRID)) + 1
    w = np.empty((n, steps))
    w[:, 0] = rng.normal(0, cfg.sd_w, n)
    a = np.exp(-GRID / cfg.tau) if cfg.gap_effect else 1.0
    shocks = rng.normal(0, cfg.sd_w * np.sqrt(1 - a**2), (n, steps - 1))
    for k in range(1, steps):
        w[:, k] = a * w[:, k - 1] + shocks[:, k - 1]
    integral = np.concatenate([np.zeros((n, 1)), np.cumsum(GRID * (w[:, 1:] + w[:, :-1]) / 2, axis=1)], axis=1)
    return apoe4, b0, b1, w, integral


def visit_times(cfg: SimulatorConfig, rng: np.random.Generator) -> np.ndarray:
    """Visit times in years (first 0, whole days), up to ``max_years`` (dropout is applied by the caller)."""
    if cfg.irregular_visits:
        gaps = 0.25 + rng.gamma(2.0, 0.35, 40)
    else:
        gaps = np.r_[np.full(4, 0.5), np.ones(40)] + rng.normal(0, 0.04, 44)
    times = np.round(np.r_[0.0, np.cumsum(gaps)] * 365.25) / 365.25  # whole days, as exam dates are
    return times[times <= cfg.max_years]


def _censor(values: np.ndarray, low: float, high: float) -> list[object]:
    """ADNIMERGE's CSF convention: values beyond the assay range become the strings "<low" / ">high"."""
    out: list[object] = []
    for v in values:
        if np.isnan(v):
            out.append(np.nan)
        elif v <= low:
            out.append(f"<{low:g}")
        elif v >= high:
            out.append(f">{high:g}")
        else:
            out.append(f"{v:.1f}")
    return out


def simulate_cohort(n_participants: int = 400, seed: int = 0, config: SimulatorConfig | None = None) -> pd.DataFrame:
    """A raw ADNIMERGE-schema frame of ``n_participants`` simulated participants (one row per visit).

    Columns: RID, PTID, VISCODE, EXAMDATE, Years_bl, DX_bl, DX, AGE, PTGENDER, PTEDUCAT, APOE4, the FEATURES
    (Ventricles, WholeBrain, ICV are left unmeasured), and the truth columns ``TRUTH``.
    """
    if n_participants < 1:
        raise ValueError(f"n_participants={n_participants} must be >= 1.")
    cfg = config or SimulatorConfig()
    rng = np.random.default_rng(seed)
    n = n_participants
    age = np.clip(rng.normal(73.5, 7.0, n), 55, 90)
    male = rng.random(n) < 0.6
    educ = np.clip(np.round(rng.normal(16, 2.8, n)), 6, 20)
    apoe4, b0, b1, w_grid, int_grid = latent_paths(n, cfg, rng)
    enrol = pd.Timestamp("2006-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")
    m = cfg.informative_missingness
    rows: list[dict[str, object]] = []
    for i in range(n):
        dementia = False
        for v, t in enumerate(visit_times(cfg, rng)):
            k = int(round(t / GRID))
            d = b0[i] + b1[i] * t + int_grid[i, k] + w_grid[i, k] * (t - k * GRID)
            c = d + cfg.acceleration * _softplus(d - cfg.conversion) ** 2
            s = (b1[i] + w_grid[i, k] - cfg.mu1) / RATE_SCALE
            cdr = float(np.clip(np.round(2 * (c + rng.normal(0, 0.5 * cfg.noise))) / 2, 0, 18))
            dementia = dementia or cdr >= 4.5
            row: dict[str, object] = {
                "RID": i + 1,
                "PTID": f"{(i % 900) + 1:03d}_S_{i + 1:04d}",
                "VISCODE": "bl" if v == 0 else f"v{v:02d}",
                "EXAMDATE": (enrol[i] + pd.Timedelta(days=round(t * 365.25))).strftime("%Y-%m-%d"),
                "Years_bl": round(t, 6),
                "DX": "Dementia" if dementia else "MCI",
                "AGE": round(age[i], 1),
                "PTGENDER": "Male" if male[i] else "Female",
                "PTEDUCAT": educ[i],
                "APOE4": apoe4[i],
                "CDRSB": cdr,
                "MMSE": float(np.clip(np.round(28.5 - 0.9 * c + rng.normal(0, 1.2 * cfg.noise)), 0, 30)),
                "ADAS13": float(np.clip(round(10 + 3 * c + rng.normal(0, 4 * cfg.noise), 2), 0, 85)),
                "FAQ": float(np.clip(np.round(1.2 * c + rng.normal(0, 2 * cfg.noise)), 0, 30)),
                "B0": b0[i],
                "B1": b1[i],
                "W": w_grid[i, k],
                "LATENT": c,
            }
            scan = {key: rng.random() < _sigmoid(_logit(p) - m * (c - 2) / 2) for key, p in SCAN_P.items()}
            if scan["mri"]:
                row["Hippocampus"] = round(7200 - 250 * d + rng.normal(0, 150 * cfg.noise), 0)
            for name, (mean, scale) in LEADING.items():
                measured = scan["csf"] if name in CSF_BOUNDS else scan[name]
                value = mean + scale * (cfg.lead * s + rng.normal(0, 0.5 * cfg.noise))
                row[name] = round(value, 4) if measured else np.nan
            rows.append(row)
            if rng.random() < _sigmoid(_logit(cfg.dropout) + m * (c - 3) / 2):
                break
    frame = pd.DataFrame(rows)
    for name, (low, high) in CSF_BOUNDS.items():
        frame[name] = _censor(frame[name].to_numpy(float), low, high)
    frame["DX_bl"] = frame.groupby("RID")["DX"].transform("first").map({"MCI": "LMCI", "Dementia": "AD"})
    columns = ["RID", "PTID", "VISCODE", "EXAMDATE", "Years_bl", "DX_bl", "DX", "AGE", "PTGENDER", "PTEDUCAT"]
    return frame.reindex(columns=[*columns, "APOE4", *FEATURES, *TRUTH])
