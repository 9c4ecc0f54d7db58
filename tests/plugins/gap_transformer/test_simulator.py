"""The simulator's knobs switch their effects on and off: the OU rate fluctuation (the gap effect) decorrelates
with the time gap as exp(-gap / tau) and is constant without it (then the latent score is exactly the linear
random-effects trajectory), the biomarkers lead only with ``lead`` > 0, missingness depends on the state only with
``informative_missingness`` > 0, and the regular schedule has the documented gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework_plugins.gap_transformer.synthetic import SimulatorConfig, simulate_cohort


def _pairs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gap, W at the earlier visit, W at the later visit) for every pair of visits of a participant."""
    gaps, first, second = [], [], []
    for _, g in frame.groupby("RID"):
        t, w = g["Years_bl"].to_numpy(), g["W"].to_numpy()
        i, j = np.triu_indices(len(t), 1)
        gaps.append(t[j] - t[i])
        first.append(w[i])
        second.append(w[j])
    return np.concatenate(gaps), np.concatenate(first), np.concatenate(second)


@pytest.mark.parametrize("gap_effect", [True, False])
def test_the_rate_fluctuation_decorrelates_with_the_gap_only_with_the_gap_effect(gap_effect):
    cfg = SimulatorConfig(gap_effect=gap_effect, informative_missingness=0.0)
    gaps, first, second = _pairs(simulate_cohort(1500, seed=1, config=cfg))
    for lo, hi in ((0.3, 0.7), (1.5, 2.5), (3.0, 4.5)):
        sel = (gaps >= lo) & (gaps < hi)
        r = np.corrcoef(first[sel], second[sel])[0, 1]
        expected = np.exp(-gaps[sel].mean() / cfg.tau) if gap_effect else 1.0
        assert abs(r - expected) < 0.06, (lo, hi, r, expected)


def test_without_gap_effect_and_acceleration_the_latent_score_is_the_linear_random_effects_trajectory():
    frame = simulate_cohort(200, seed=2, config=SimulatorConfig(gap_effect=False, acceleration=0.0))
    assert (frame.groupby("RID")["W"].nunique() == 1).all()
    t = frame["Years_bl"].to_numpy()
    linear = frame["B0"] + (frame["B1"] + frame["W"]) * t
    np.testing.assert_allclose(frame["LATENT"], linear, atol=2e-5)  # Years_bl is written to 1e-6
    accelerated = simulate_cohort(200, seed=2, config=SimulatorConfig(gap_effect=False))
    assert (accelerated["LATENT"] - linear > 0.5).any()  # the acceleration term is really there when on


@pytest.mark.parametrize("lead", [0.0, 1.0])
def test_biomarkers_carry_the_current_rate_only_with_lead(lead):
    frame = simulate_cohort(800, seed=3, config=SimulatorConfig(lead=lead))
    seen = frame["AV45"].notna()
    r = np.corrcoef(frame.loc[seen, "AV45"], frame.loc[seen, "B1"] + frame.loc[seen, "W"])[0, 1]
    assert (abs(r) < 0.06) if lead == 0 else (r > 0.5), r


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_scans_are_missing_by_state_only_with_informative_missingness(strength):
    frame = simulate_cohort(1500, seed=4, config=SimulatorConfig(informative_missingness=strength))
    sick = frame["LATENT"] > frame["LATENT"].quantile(0.75)
    well = frame["LATENT"] < frame["LATENT"].quantile(0.25)
    gap = frame.loc[well, "FDG"].notna().mean() - frame.loc[sick, "FDG"].notna().mean()
    assert (abs(gap) < 0.04) if strength == 0 else (gap > 0.1), gap


def test_regular_schedule_and_determinism():
    cfg = SimulatorConfig(irregular_visits=False)
    frame = simulate_cohort(50, seed=5, config=cfg)
    gaps = frame.groupby("RID")["Years_bl"].diff().dropna()
    assert (gaps.between(0.35, 0.65) | gaps.between(0.85, 1.15)).all()
    pd.testing.assert_frame_equal(frame, simulate_cohort(50, seed=5, config=cfg))
    irregular = simulate_cohort(50, seed=5).groupby("RID")["Years_bl"].diff().dropna()
    off_schedule = ~(irregular.between(0.35, 0.65) | irregular.between(0.85, 1.15))
    assert off_schedule.mean() > 0.4


@pytest.mark.parametrize(("field", "value"), [("tau", 0.0), ("dropout", 1.0), ("noise", -1.0)])
def test_bad_knobs_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"simulator.{field}"):
        SimulatorConfig(**{field: value})
