"""A seeded simulator of ADNIMERGE-schema cohorts (same columns and value conventions as the real file).

Structure (reference-note values; "chosen" = a design choice of this project, not data):
- schedule bl, m06, m12, m18, m24, then yearly to m120; an MRI-only m03 for half the participants; exam dates
  jittered by N(0, 0.5 month); after m24 each yearly visit is the last with probability ``attrition`` (chosen,
  0.35 gives ~8.5 rows per participant like the paper's cohort);
- demographics AGE ~ N(73.5, 7), 60% male, PTEDUCAT ~ N(16, 2.8) in [6, 20], APOE4 in {0, 1, 2} w.p. .53/.39/.08;
- a latent severity z ~ N(0, 1) drives amyloid (AV45, CSF ABETA/TAU/PTAU), hippocampal volume and FDG;
- slope classes stable / slow / fast (base shares 57/22/21%), shifted by APOE4, amyloid and an amyloid x
  low-hippocampus interaction (a nonlinear history effect by construction); slopes 0.1+-0.1, 0.5+-0.2, 1.5+-0.4 /yr;
- CDRSB_ij = b0_i + s_i t + 0.15 s_i t^2 + eps, eps ~ N(0, 0.5), b0 ~ N(1.0 + 0.6 class, 0.8) clipped >= 0.5
  (mean ~1.6 as in ADNI-1 MCI), rounded to 0.5,
  in [0, 18]: the 24-month change s (2.6 + 0.6 t) depends on the slope, which only the history reveals;
- MMSE = 28.5 - 0.9 CDRSB + N(0, 1.2), ADAS13 = 10 + 3 CDRSB + N(0, 4), FAQ = 1.2 CDRSB + N(0, 2);
- DX = MCI until CDRSB >= 4.5, Dementia from then on; missingness per visit: cognition 5%, MRI 30%, FDG 74%,
  AV45 80%, CSF 80%; ABETA/TAU/PTAU written as strings censored at their assay bounds (">1700", "<8").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework_plugins.gap_transformer.schema import FEATURES

MONTHS = (0, 6, 12, 18, 24, 36, 48, 60, 72, 84, 96, 108, 120)
SLOPES = ((0.1, 0.1), (0.5, 0.2), (1.5, 0.4))  # (mean, sd) per class: stable, slow, fast
MISSING = {"cognition": 0.05, "mri": 0.30, "FDG": 0.74, "AV45": 0.80, "csf": 0.80}
CSF_BOUNDS = {"ABETA": (200.0, 1700.0), "TAU": (80.0, 1300.0), "PTAU": (8.0, 120.0)}


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


def simulate_cohort(n_participants: int = 858, seed: int = 0, attrition: float = 0.35) -> pd.DataFrame:
    """A raw ADNIMERGE-schema frame of ``n_participants`` simulated participants (one row per visit).

    Columns: RID, PTID, VISCODE, EXAMDATE, EXAMDATE_bl, Years_bl, Month_bl, Month, M, DX_bl, DX, AGE, PTGENDER,
    PTEDUCAT, APOE4, CDRSB, MMSE, ADAS13, FAQ, Hippocampus, Ventricles, WholeBrain, ICV, FDG, AV45, ABETA, TAU,
    PTAU, plus the simulation truth ``SLOPE_CLASS`` (0 stable, 1 slow, 2 fast), which loaders ignore.
    """
    if n_participants < 1:
        raise ValueError(f"n_participants={n_participants} must be >= 1.")
    if not 0.0 <= attrition < 1.0:
        raise ValueError(f"attrition={attrition} must be a per-visit dropout probability in [0, 1).")
    rng = np.random.default_rng(seed)
    n = n_participants
    age = np.clip(rng.normal(73.5, 7.0, n), 55, 90)
    male = rng.random(n) < 0.6
    educ = np.clip(np.round(rng.normal(16, 2.8, n)), 6, 20)
    apoe4 = rng.choice(3, size=n, p=[0.53, 0.39, 0.08])
    z = rng.normal(size=n)
    amyloid = rng.random(n) < 1 / (1 + np.exp(-(-0.4 + 0.9 * apoe4 + 0.9 * z)))
    hippo_z = -0.6 * z + 0.8 * rng.normal(size=n)
    low_hippo = hippo_z > 0.5  # hippo_z is atrophy: larger = smaller hippocampus
    logits = np.log([0.57, 0.22, 0.21]) + np.stack(
        [np.zeros(n), 0.3 * apoe4 + 0.6 * amyloid, 0.5 * apoe4 + 0.8 * amyloid + 1.5 * (amyloid & low_hippo)], 1
    )
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    cls = (rng.random(n)[:, None] > probs.cumsum(1)).sum(1)
    mean, sd = np.array(SLOPES).T
    slope = np.clip(rng.normal(mean[cls], sd[cls]), 0.0, None)
    b0 = np.clip(rng.normal(1.0 + 0.6 * cls, 0.8), 0.5, None)  # mean ~1.6 (ADNI-1 MCI); sicker start in faster classes
    atrophy = np.array([0.01, 0.02, 0.04])[cls]  # hippocampal loss per year
    hippo0 = 6800.0 - 1100.0 * hippo_z
    icv = rng.normal(1.5e6, 1.5e5, n)
    enrol = pd.Timestamp("2006-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")

    rows: list[dict[str, object]] = []
    for i in range(n):
        months = list(MONTHS[:5])
        for m in MONTHS[5:]:
            months.append(m)
            if rng.random() < attrition:
                break
        mri_only = {3} if rng.random() < 0.5 else set()
        dementia = False
        for m in sorted([*months, *mri_only]):
            days = 0 if m == 0 else int(round((m + rng.normal(0, 0.5)) * 30.4375))
            t = days / 365.25
            row: dict[str, object] = {
                "RID": i + 1,
                "PTID": f"{(i % 900) + 1:03d}_S_{i + 1:04d}",
                "VISCODE": "bl" if m == 0 else f"m{m:02d}",
                "M": m,
                "Month": m,
            }
            row["EXAMDATE"] = (enrol[i] + pd.Timedelta(days=days)).strftime("%Y-%m-%d")
            row["EXAMDATE_bl"] = enrol[i].strftime("%Y-%m-%d")
            row.update(Years_bl=round(t, 6), Month_bl=round(12 * t, 4), AGE=round(age[i], 1))
            row.update(PTGENDER="Male" if male[i] else "Female", PTEDUCAT=educ[i], APOE4=apoe4[i])
            row["SLOPE_CLASS"] = cls[i]
            if m not in mri_only:
                cdr = b0[i] + slope[i] * t + 0.15 * slope[i] * t**2 + rng.normal(0, 0.5)
                cdr = float(np.clip(np.round(2 * cdr) / 2, 0, 18))
                dementia = dementia or cdr >= 4.5
                row["DX"] = "Dementia" if dementia else "MCI"
                cog = {
                    "CDRSB": cdr,
                    "MMSE": float(np.clip(np.round(28.5 - 0.9 * cdr + rng.normal(0, 1.2)), 0, 30)),
                    "ADAS13": float(np.clip(round(10 + 3 * cdr + rng.normal(0, 4), 2), 0, 85)),
                    "FAQ": float(np.clip(np.round(1.2 * cdr + rng.normal(0, 2)), 0, 30)),
                }
                row.update(
                    {k: (v if rng.random() >= MISSING["cognition"] or k == "CDRSB" else np.nan) for k, v in cog.items()}
                )
                if rng.random() < MISSING["FDG"]:
                    row["FDG"] = np.nan
                else:
                    row["FDG"] = round(1.25 - 0.06 * z[i] - 0.02 * slope[i] * t + rng.normal(0, 0.08), 4)
                row["AV45"] = round(1.05 + 0.35 * amyloid[i] + 0.06 * z[i] + rng.normal(0, 0.08), 4)
                if rng.random() < MISSING["AV45"]:
                    row["AV45"] = np.nan
                csf = rng.random() < MISSING["csf"]
                row["_csf"] = (
                    np.nan if csf else 1100 - 550 * amyloid[i] + rng.normal(0, 180),
                    np.nan if csf else 260 + 90 * z[i] + 40 * amyloid[i] + rng.normal(0, 60),
                    np.nan if csf else 24 + 9 * z[i] + 5 * amyloid[i] + rng.normal(0, 6),
                )
            if m in mri_only or rng.random() >= MISSING["mri"]:
                shrink = (1 - atrophy[i]) ** t
                row["Hippocampus"] = round(hippo0[i] * shrink + rng.normal(0, 150), 0)
                row["Ventricles"] = round(35000 * (1 + 3 * atrophy[i]) ** t + 4000 * z[i] + rng.normal(0, 2000), 0)
                row["WholeBrain"] = round(1.0e6 * (1 - atrophy[i] / 4) ** t + rng.normal(0, 2e4), 0)
                row["ICV"] = round(icv[i] + rng.normal(0, 1e4), 0)
            rows.append(row)
    frame = pd.DataFrame(rows)
    csf = np.array([r if isinstance(r, tuple) else (np.nan,) * 3 for r in frame.pop("_csf")], dtype=float)
    for j, (name, (low, high)) in enumerate(CSF_BOUNDS.items()):
        frame[name] = _censor(csf[:, j], low, high)
    frame["DX_bl"] = frame.groupby("RID")["DX"].transform("first").map({"MCI": "LMCI", "Dementia": "AD"})
    columns = [
        "RID",
        "PTID",
        "VISCODE",
        "EXAMDATE",
        "EXAMDATE_bl",
        "Years_bl",
        "Month_bl",
        "Month",
        "M",
        "DX_bl",
        "DX",
        "AGE",
        "PTGENDER",
        "PTEDUCAT",
        "APOE4",
        *FEATURES,
        "SLOPE_CLASS",
    ]
    return frame.reindex(columns=columns)
