"""The ADNIMERGE/TADPOLE loader: censored strings, diagnosis vocabularies, duplicates, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework_plugins.gap_transformer.loader import load_adni_csv
from framework_plugins.gap_transformer.schema import REQUIRED, clean_cohort, map_diagnosis, to_numeric
from framework_plugins.gap_transformer.synthetic import simulate_cohort


def test_censored_csf_strings_are_clipped_to_the_bound():
    out = to_numeric(pd.Series([">1700", "<200", "845.3", None, " "]), "ABETA")
    np.testing.assert_array_equal(out.to_numpy(), [1700.0, 200.0, 845.3, np.nan, np.nan])


@pytest.mark.parametrize(
    ("raw", "mapped"),
    [
        ("CN", "CN"),
        ("NL", "CN"),
        ("MCI to Dementia", "Dementia"),
        ("NL to MCI", "MCI"),
        ("Dementia", "Dementia"),
        ("AD", "Dementia"),
        ("LMCI", "MCI"),
    ],
)
def test_diagnosis_vocabularies(raw, mapped):
    assert map_diagnosis(raw) == mapped


def test_simulated_csv_round_trips_and_duplicate_out_of_order_visits_merge(tmp_path):
    raw = simulate_cohort(20, seed=1)
    shuffled = raw.sample(frac=1.0, random_state=0)
    duplicate = raw.iloc[[0]].assign(CDRSB=np.nan, MMSE=np.nan)  # same RID and time, missing values
    path = tmp_path / "ADNIMERGE.csv"
    pd.concat([duplicate, shuffled]).to_csv(path, index=False)
    loaded = load_adni_csv(path)
    expected = clean_cohort(raw)
    assert len(loaded) == len(expected) == len(raw)
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False)
    assert (loaded.groupby("RID")["YEARS"].diff().dropna() > 0).all()
    assert loaded.loc[0, "CDRSB"] == raw.loc[0, "CDRSB"]  # first non-missing value of the duplicated visit


def test_missing_columns_are_all_named(tmp_path):
    path = tmp_path / "bad.csv"
    simulate_cohort(5, seed=0).drop(columns=["MMSE", "APOE4"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks the required columns \['APOE4', 'MMSE'\]"):
        load_adni_csv(path)


def test_non_numeric_value_is_named(tmp_path):
    raw = simulate_cohort(5, seed=0)
    raw["ADAS13"] = raw["ADAS13"].astype(object)
    raw.loc[3, "ADAS13"] = "n/a?"
    raw.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"column ADAS13 has the non-numeric value 'n/a\?' at row 3"):
        load_adni_csv(tmp_path / "bad.csv")


def test_empty_files_and_missing_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_adni_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text(",".join([*REQUIRED, "Years_bl"]) + "\n")
    with pytest.raises(ValueError, match="has no rows"):
        load_adni_csv(tmp_path / "header.csv")
    with pytest.raises(FileNotFoundError, match="does not download data"):
        load_adni_csv(tmp_path / "ADNIMERGE.csv")


def test_visit_times_from_examdate_when_years_bl_is_absent(tmp_path):
    raw = simulate_cohort(4, seed=2)
    raw.drop(columns=["Years_bl"]).to_csv(tmp_path / "a.csv", index=False)
    loaded = load_adni_csv(tmp_path / "a.csv")
    np.testing.assert_allclose(loaded["YEARS"], clean_cohort(raw)["YEARS"], atol=1e-6)
