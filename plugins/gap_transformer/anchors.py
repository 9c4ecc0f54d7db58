"""Anchors and 24-month CDR-SB change labels, exactly as the paper defines them, with leakage-free histories.

An anchor is a visit with DX = MCI and an observed CDR-SB. Its label is CDRSB(v*) - CDRSB(anchor), where v* is the
later visit with an observed CDR-SB whose distance from the anchor, 12 * (t_v - t_a) months, lies in the closed
window [18, 30] and is closest to 24 months (ties: the earlier visit). Anchors without such a visit are excluded.
The inputs of an anchor are only the visits at or before it (t_v <= t_a): the last ``max_visits`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from framework_plugins.gap_transformer.schema import FEATURES, STATIC, TARGET

TOLERANCE_MONTHS = 1e-4  # visit times are rounded to 1e-6 years


@dataclass
class Anchors:
    """All anchors of a cohort (N anchors, V = max_visits, F = len(FEATURES), S = len(STATIC)).

    Attributes:
        rid: (N,) participant ids; years: (N,) anchor time in years since baseline; label_years: (N,) time of v*.
        y: (N,) 24-month CDR-SB change (the regression target).
        values: (N, V, F) raw measures of the history visits, NaN = not measured; padded visits are all NaN.
        times: (N, V) visit time minus anchor time in years (<= 0; 0 at the anchor visit and on padding).
        visit_valid: (N, V) True for real visits; visits are in time order, padding at the end.
        static: (N, S) AGE at the anchor, MALE, PTEDUCAT, APOE4.
        last_observed: (N, F) each measure's most recent value at or before the anchor (NaN if never measured),
            the anchor-level covariates of the LME.
        report: counts of participants and RIDs without a usable anchor (never dropped silently).
    """

    rid: np.ndarray
    years: np.ndarray
    label_years: np.ndarray
    y: np.ndarray
    values: np.ndarray
    times: np.ndarray
    visit_valid: np.ndarray
    static: np.ndarray
    last_observed: np.ndarray
    report: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def covariates(self) -> pd.DataFrame:
        """(N, F + S + 1) anchor-level table: ``last_observed`` measures, static covariates and ``YEARS`` (the
        anchor time since baseline), named by column."""
        table = pd.DataFrame(self.last_observed, columns=list(FEATURES))
        for j, name in enumerate(STATIC):
            table[name] = self.static[:, j]
        table["YEARS"] = self.years
        return table


def label_visit(
    times: np.ndarray, cdrsb: np.ndarray, anchor: int, window: tuple[float, float] = (18.0, 30.0), horizon: float = 24.0
) -> int | None:
    """Index of v* for the visit ``anchor`` (see module docstring), or None when no visit qualifies.

    times: (n_visits,) sorted years; cdrsb: (n_visits,) with NaN where unobserved."""
    months = 12.0 * (times - times[anchor])
    ok = (months >= window[0] - TOLERANCE_MONTHS) & (months <= window[1] + TOLERANCE_MONTHS) & ~np.isnan(cdrsb)
    ok[: anchor + 1] = False
    if not ok.any():
        return None
    candidates = np.flatnonzero(ok)
    return int(candidates[np.argmin(np.abs(months[candidates] - horizon))])  # argmin: first (earlier) on ties


def build_anchors(
    clean: pd.DataFrame, max_visits: int = 10, window: tuple[float, float] = (18.0, 30.0), horizon: float = 24.0
) -> Anchors:
    """Anchors, labels and histories of a clean cohort frame (see :mod:`framework_plugins.gap_transformer.schema`)."""
    if max_visits < 1:
        raise ValueError(f"max_visits={max_visits} must be >= 1 (history visits kept per anchor).")
    n_feat = len(FEATURES)
    target_col = FEATURES.index(TARGET)
    out: dict[str, list] = {
        k: [] for k in ("rid", "years", "label_years", "y", "values", "times", "valid", "static", "last")
    }
    no_mci, no_label = [], []
    all_rid = clean["RID"].to_numpy()
    all_times = clean["YEARS"].to_numpy(float)
    all_values = clean[list(FEATURES)].to_numpy(float)
    all_carried = clean.groupby("RID", sort=False)[list(FEATURES)].ffill().to_numpy(float)  # LOCF per participant
    all_dx = clean["DX"].to_numpy(object)
    all_static = clean[list(STATIC)].to_numpy(float)
    bounds = np.flatnonzero(np.r_[True, all_rid[1:] != all_rid[:-1], True])  # clean frames are sorted by RID
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        rid, times, values, carried = all_rid[lo], all_times[lo:hi], all_values[lo:hi], all_carried[lo:hi]
        dx, static = all_dx[lo:hi], all_static[lo:hi]
        cdrsb = values[:, target_col]
        candidates = np.flatnonzero((dx == "MCI") & ~np.isnan(cdrsb))
        if candidates.size == 0:
            no_mci.append(int(rid))
            continue
        found = False
        for a in candidates:
            v = label_visit(times, cdrsb, a, window, horizon)
            if v is None:
                continue
            found = True
            start = max(0, a + 1 - max_visits)
            hist = np.full((max_visits, n_feat), np.nan)
            hist[: a + 1 - start] = values[start : a + 1]
            rel = np.zeros(max_visits)
            rel[: a + 1 - start] = times[start : a + 1] - times[a]
            valid = np.arange(max_visits) < a + 1 - start
            out["rid"].append(int(rid))
            out["years"].append(times[a])
            out["label_years"].append(times[v])
            out["y"].append(cdrsb[v] - cdrsb[a])
            out["values"].append(hist)
            out["times"].append(rel)
            out["valid"].append(valid)
            out["static"].append(np.array([static[a, 0] + times[a], *static[a, 1:]]))  # AGE at the anchor
            out["last"].append(carried[a])
        if not found:
            no_label.append(int(rid))
    n_participants = clean["RID"].nunique()
    report = {
        "participants": n_participants,
        "participants_with_anchors": n_participants - len(no_mci) - len(no_label),
        "anchors": len(out["y"]),
        "rows": len(clean),
        "no_mci_visit": no_mci,
        "no_visit_in_window": no_label,
    }
    if not out["y"]:
        raise ValueError(
            f"the cohort has no usable anchor (MCI visit with a CDR-SB {window[0]:g}-{window[1]:g} "
            f"months later): {report['participants']} participants, none qualifies."
        )
    return Anchors(
        rid=np.array(out["rid"]),
        years=np.array(out["years"]),
        label_years=np.array(out["label_years"]),
        y=np.array(out["y"]),
        values=np.stack(out["values"]),
        times=np.stack(out["times"]),
        visit_valid=np.stack(out["valid"]),
        static=np.stack(out["static"]),
        last_observed=np.stack(out["last"]),
        report=report,
    )
