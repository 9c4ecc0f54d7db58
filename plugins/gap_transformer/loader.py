"""Reader for a user-supplied ADNIMERGE.csv or TADPOLE_D1_D2.csv (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from framework.data import require_file
from framework_plugins.gap_transformer.schema import REQUIRED, clean_cohort

HOW_TO_GET = (
    "request access at https://adni.loni.usc.edu (Study Data > Tabular Data: ADNIMERGE.csv, or the TADPOLE "
    "challenge's TADPOLE_D1_D2.csv), download it yourself"
)


def load_adni_csv(path: str | Path) -> pd.DataFrame:
    """The clean cohort frame (see :mod:`framework_plugins.gap_transformer.schema`) of an ADNIMERGE or TADPOLE CSV.

    Raises ``FileNotFoundError`` (where to put the file) when it is absent and ``ValueError`` naming the column /
    row / value when it is empty, lacks columns (a file separated by semicolons or tabs is named as such), or holds
    non-numeric or non-finite values, fractional RIDs or dates not written YYYY-MM-DD.
    """
    path = require_file(path, "ADNIMERGE.csv (or TADPOLE_D1_D2.csv)", HOW_TO_GET)
    try:
        header = pd.read_csv(path, nrows=0).columns
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path} is empty; expected an ADNIMERGE-style CSV with columns {list(REQUIRED)}.") from err
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        separators = [name for sep, name in ((";", "semicolons"), ("\t", "tabs")) if sep in "".join(map(str, header))]
        hint = f" It looks separated by {separators[0]}: save it comma-separated." if separators else ""
        raise ValueError(f"{path} lacks the required columns {missing} (its header has {len(header)} columns).{hint}")
    raw = pd.read_csv(path, usecols=lambda c: c in {*REQUIRED, "Years_bl", "EXAMDATE"}, dtype=str, low_memory=False)
    return clean_cohort(raw, source=str(path))
