"""Checks for real datasets that must be put on disk by the user (nothing is ever downloaded)."""

from __future__ import annotations

from pathlib import Path


def require_file(path: str | Path, what: str, how_to_get: str) -> Path:
    """Return ``path`` if it is an existing file, else raise a ``FileNotFoundError`` that says where to put it.

    Args:
        path: where the loader expects the file.
        what: a human name for the file ("ADNIMERGE.csv from ADNI").
        how_to_get: where the user obtains it (this framework never downloads data).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found at {str(path)!r}. This framework does not download data: {how_to_get} "
            f"and place it at {path.resolve()}, or point the data config's path field to where it is."
        )
    return path
