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
DATE_FORMAT = "%Y-%m-%d"
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
    """Finite floats from a column that may hold censored strings: ``">1700"`` -> 1700.0, ``"<8"`` -> 8.0 (clipped
    to the bound), blank -> NaN. Any other non-numeric entry, and any non-finite one (``inf``, ``-inf``, ``nan``
    written out, ``1e400``), raises ``ValueError`` naming the column, row and value."""
    text = series.astype("string").str.strip().str.lstrip("<>").replace("", pd.NA)
    out = pd.to_numeric(text, errors="coerce").astype(float)
    bad = ~np.isfinite(out) & text.notna()
    if bad.any():
        row = bad.idxmax()
        raise ValueError(
            f"column {column} has the {'non-finite' if pd.notna(out[row]) else 'non-numeric'} value {series[row]!r} "
            f"at row {row}; fix or blank that cell (censored values must look like '>1700' or '<8')."
        )
    return out


def participant_ids(series: pd.Series) -> pd.Series:
    """Integer participant ids from the RID column; a missing or fractional id raises ``ValueError`` naming the
    row (truncating ``1.5`` to 1 would merge two participants)."""
    values = to_numeric(series, "RID")
    bad = values.isna() | (values != np.floor(values))
    if bad.any():
        row = bad.idxmax()
        raise ValueError(f"column RID has {series[row]!r} at row {row}; participant ids must be whole numbers.")
    return values.astype("int64")


def visit_years(frame: pd.DataFrame) -> pd.Series:
    """Years since each participant's first visit: ``Years_bl`` when present, else (EXAMDATE - first EXAMDATE) /
    365.25 days, with every date read as ISO ``YYYY-MM-DD`` (ADNIMERGE's format; no per-row format guessing)."""
    if "Years_bl" in frame.columns:
        return to_numeric(frame["Years_bl"], "Years_bl")
    if "EXAMDATE" not in frame.columns:
        raise ValueError("the cohort has neither a Years_bl nor an EXAMDATE column; one of them gives visit times.")
    dates = pd.to_datetime(frame["EXAMDATE"].astype("string").str.strip(), format=DATE_FORMAT, errors="coerce")
    if dates.isna().any():
        row = dates.isna().idxmax()
        raise ValueError(
            f"column EXAMDATE has {frame['EXAMDATE'][row]!r} at row {row}; dates must be written YYYY-MM-DD as in "
            f"ADNIMERGE (a date such as 02.11.06 is ambiguous: convert the column, or give Years_bl instead)."
        )
    return (dates - dates.groupby(frame["RID"]).transform("min")).dt.days / 365.25


def clean_cohort(raw: pd.DataFrame, source: str = "cohort") -> pd.DataFrame:
    """ADNIMERGE/TADPOLE-schema rows -> the clean frame described in the module docstring.

    Checks that every ``REQUIRED`` column exists (the error lists all missing ones), parses finite numbers (censored
    CSF strings clipped to their bound) and whole-number RIDs, maps diagnoses, converts visit times to years, sorts
    visits by time and merges duplicated (RID, time) visits by taking, per column, the first non-missing value.
    Static covariates come from the visits at or before each visit only (:func:`first_value_so_far`), so no later
    row can change an anchor's inputs.
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
    clean = pd.DataFrame({"RID": participant_ids(raw["RID"]), "YEARS": visit_years(raw)})
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
    clean = clean.reset_index(drop=True)
    for column in STATIC:
        clean[column] = first_value_so_far(clean[column], clean["RID"])
    return clean


def first_value_so_far(values: pd.Series, rid: pd.Series) -> pd.Series:
    """Per visit, the participant's first non-missing value among the visits at or before it (NaN before the first
    one): a static covariate (AGE is age at the first visit in ADNIMERGE) that never reads a later visit.

    Shapes: ``values`` and ``rid`` (n_visits,), sorted by RID then time; returns (n_visits,)."""
    first = values.notna() & (values.notna().groupby(rid).cumsum() == 1)
    return values.where(first).groupby(rid).ffill()
