"""The ADNIMERGE columns this plugin reads, and the cleaning shared by the real loader and the simulator.

A *clean* cohort frame has one row per (RID, visit time), sorted by RID then ``YEARS``, with columns
``RID, YEARS, DX`` (``CN`` / ``MCI`` / ``Dementia`` / NaN), the static covariates ``STATIC`` and the longitudinal
measures ``FEATURES`` (float, NaN = not measured).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "CDRSB"
FEATURES = (
    "CDRSB",
    "MMSE",
    "ADAS13",
    "FAQ",
    "Hippocampus",
    "Ventricles",
    "WholeBrain",
    "ICV",
    "FDG",
    "AV45",
    "ABETA",
    "TAU",
    "PTAU",
)
STATIC = ("AGE", "MALE", "PTEDUCAT", "APOE4")
REQUIRED = ("RID", "VISCODE", "DX", "AGE", "PTGENDER", "PTEDUCAT", "APOE4", *FEATURES)
CENSORED = ("ABETA", "TAU", "PTAU")  # stored as strings such as ">1700" or "<8"
DX_MAP = {
    "CN": "CN",
    "NL": "CN",
    "SMC": "CN",
    "MCI": "MCI",
    "EMCI": "MCI",
    "LMCI": "MCI",
    "DEMENTIA": "Dementia",
    "AD": "Dementia",
}


def map_diagnosis(value: object) -> str | float:
    """ADNIMERGE (``CN/MCI/Dementia``) and TADPOLE DXCHANGE strings (``NL``, ``MCI to Dementia``, ``NL to MCI``):
    the last token is the current diagnosis; ``NL``/``SMC`` -> CN, ``EMCI``/``LMCI`` -> MCI, ``AD`` -> Dementia.
    Missing stays NaN; an unknown label raises ``ValueError``."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return np.nan
    token = str(value).strip().split()[-1].upper()
    if token not in DX_MAP:
        raise ValueError(f"column DX has unknown diagnosis {value!r}; expected one of {sorted(set(DX_MAP))}.")
    return DX_MAP[token]


def to_numeric(series: pd.Series, column: str) -> pd.Series:
    """Floats from a column that may hold censored strings: ``">1700"`` -> 1700.0, ``"<8"`` -> 8.0 (clipped to the
    bound), blank -> NaN. Any other non-numeric entry raises ``ValueError`` naming the column, row and value."""
    text = series.astype("string").str.strip().str.lstrip("<>").replace("", pd.NA)
    out = pd.to_numeric(text, errors="coerce")
    bad = out.isna() & text.notna()
    if bad.any():
        row = bad.idxmax()
        raise ValueError(
            f"column {column} has the non-numeric value {series[row]!r} at row {row}; fix or blank that cell "
            f"(censored values must look like '>1700' or '<8')."
        )
    return out.astype(float)


def visit_years(frame: pd.DataFrame) -> pd.Series:
    """Years since each participant's first visit: ``Years_bl`` when present, else (EXAMDATE - first EXAMDATE) /
    365.25 days."""
    if "Years_bl" in frame.columns:
        return to_numeric(frame["Years_bl"], "Years_bl")
    if "EXAMDATE" not in frame.columns:
        raise ValueError("the cohort has neither a Years_bl nor an EXAMDATE column; one of them gives visit times.")
    dates = pd.to_datetime(frame["EXAMDATE"], errors="coerce")
    if dates.isna().any():
        row = dates.isna().idxmax()
        raise ValueError(f"column EXAMDATE has the unparsable date {frame['EXAMDATE'][row]!r} at row {row}.")
    return (dates - dates.groupby(frame["RID"]).transform("min")).dt.days / 365.25


def clean_cohort(raw: pd.DataFrame, source: str = "cohort") -> pd.DataFrame:
    """ADNIMERGE/TADPOLE-schema rows -> the clean frame described in the module docstring.

    Checks that every ``REQUIRED`` column exists (the error lists all missing ones), parses numbers (censored CSF
    strings clipped to their bound), maps diagnoses, converts visit times to years, sorts visits by time and merges
    duplicated (RID, time) visits by taking, per column, the first non-missing value.
    """
    if raw.empty:
        raise ValueError(f"{source} has no rows; expected one row per visit with columns {list(REQUIRED)}.")
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{source} lacks the required columns {missing}; it must have the ADNIMERGE columns "
            f"{list(REQUIRED)} plus Years_bl or EXAMDATE."
        )
    raw = raw.reset_index(drop=True)
    clean = pd.DataFrame({"RID": to_numeric(raw["RID"], "RID").astype("int64"), "YEARS": visit_years(raw)})
    clean["DX"] = raw["DX"].map(map_diagnosis)
    clean["AGE"] = to_numeric(raw["AGE"], "AGE")
    gender = raw["PTGENDER"].astype("string").str.strip().str.lower()
    unknown = gender.notna() & ~gender.isin(["male", "female"])
    if unknown.any():
        row = unknown.idxmax()
        raise ValueError(f"column PTGENDER has {raw['PTGENDER'][row]!r} at row {row}; expected Male or Female.")
    clean["MALE"] = (gender == "male").astype(float).where(gender.notna())
    for column in ("PTEDUCAT", "APOE4", *FEATURES):
        clean[column] = to_numeric(raw[column], column)
    if clean["YEARS"].isna().any():
        row = clean["YEARS"].isna().idxmax()
        raise ValueError(f"{source} row {row} (RID {clean['RID'][row]}) has no visit time (Years_bl/EXAMDATE).")
    clean["YEARS"] = clean["YEARS"].round(6)
    clean = clean.sort_values(["RID", "YEARS"], kind="stable")
    clean = clean.groupby(["RID", "YEARS"], as_index=False, sort=True).first()
    # static covariates: the baseline value, carried to every visit (AGE is age at the first visit)
    for column in ("AGE", "MALE", "PTEDUCAT", "APOE4"):
        clean[column] = clean.groupby("RID")[column].transform("first")
    return clean.reset_index(drop=True)
