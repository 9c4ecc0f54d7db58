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


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e400", "Infinity"])
def test_non_finite_values_are_named(tmp_path, cell):
    raw = simulate_cohort(5, seed=0)
    raw["FAQ"] = raw["FAQ"].astype(object)
    raw.loc[2, "FAQ"] = cell
    raw.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=rf"column FAQ has the non-(finite|numeric) value '{cell}' at row 2"):
        load_adni_csv(tmp_path / "bad.csv")


def test_fractional_participant_ids_are_refused_not_merged(tmp_path):
    raw = simulate_cohort(5, seed=0)
    raw["RID"] = raw["RID"].astype(float)
    raw.loc[raw["RID"] == raw["RID"].iloc[-1], "RID"] += 0.5
    raw.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="column RID has .*participant ids must be whole numbers"):
        load_adni_csv(tmp_path / "bad.csv")


def test_dates_must_be_iso_and_are_never_guessed_row_by_row(tmp_path):
    raw = simulate_cohort(3, seed=2).drop(columns=["Years_bl"])
    raw["EXAMDATE"] = raw["EXAMDATE"].astype(object)
    raw.loc[1, "EXAMDATE"] = "02.11.06"
    raw.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(ValueError, match=r"EXAMDATE has '02.11.06' at row 1; dates must be written YYYY-MM-DD"):
        load_adni_csv(tmp_path / "a.csv")


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_with_another_separator_is_named_as_such(tmp_path, sep, name):
    simulate_cohort(3, seed=0).to_csv(tmp_path / "a.csv", index=False, sep=sep)
    with pytest.raises(ValueError, match=f"lacks the required columns .*separated by {name}"):
        load_adni_csv(tmp_path / "a.csv")


def test_statics_come_only_from_visits_at_or_before_each_visit():
    """A static covariate missing at baseline is not filled from a later visit, and changing the statics of later
    visits changes nothing at or before them."""
    raw = simulate_cohort(30, seed=3)
    first_rid = raw["RID"].iloc[0]
    rows = raw.index[raw["RID"] == first_rid]
    raw.loc[rows[0], ["AGE", "APOE4"]] = np.nan
    clean = clean_cohort(raw)
    mine = clean[clean["RID"] == first_rid]
    assert np.isnan(mine["AGE"].iloc[0]) and np.isnan(mine["APOE4"].iloc[0])
    assert mine["AGE"].iloc[1] == raw.loc[rows[1], "AGE"]
    later = raw.copy()
    cut = later.groupby("RID")["Years_bl"].transform("median")
    shifted = later["Years_bl"] > cut
    later.loc[shifted, ["AGE", "PTEDUCAT", "APOE4"]] += 7.0
    later.loc[shifted, "PTGENDER"] = later.loc[shifted, "PTGENDER"].map({"Male": "Female", "Female": "Male"})
    changed = clean_cohort(later)
    early = ~(changed["YEARS"].to_numpy() > clean.groupby("RID")["YEARS"].transform("median").to_numpy() + 1e-9)
    static = ["AGE", "MALE", "PTEDUCAT", "APOE4"]
    pd.testing.assert_frame_equal(clean.loc[early, static], changed.loc[early, static])
