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
    row / value when it is empty, lacks columns or holds non-numeric values in numeric columns.
    """
    path = require_file(path, "ADNIMERGE.csv (or TADPOLE_D1_D2.csv)", HOW_TO_GET)
    try:
        raw = pd.read_csv(path, usecols=lambda c: c in {*REQUIRED, "Years_bl", "EXAMDATE"}, dtype=str, low_memory=False)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path} is empty; expected an ADNIMERGE-style CSV with columns {list(REQUIRED)}.") from err
    return clean_cohort(raw, source=str(path))
