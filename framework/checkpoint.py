"""Refuse files that are not safe, complete Lightning checkpoints before anything loads them."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

REQUIRED_KEYS = ("state_dict", "pytorch-lightning_version", "global_step", "epoch")


class CheckpointError(ValueError):
    """A file given as a checkpoint is missing, corrupt, not a Lightning checkpoint, or unsafe to unpickle."""


def load_checkpoint_safely(path: str | Path) -> dict[str, Any]:
    """Load ``path`` with ``torch.load(weights_only=True)`` and check it is a complete Lightning checkpoint.

    Every member of the torch zip archive is checked against its CRC-32 first, so a bit flipped on disk or in a copy
    is refused instead of loading silently wrong weights.

    ``weights_only=True`` restricts unpickling to tensors and plain containers, so a pickle that carries code
    (``__reduce__`` to ``os.system`` and the like) is refused instead of executed.

    Raises:
        CheckpointError: naming the path, what is wrong, and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={str(path)!r}: no such file. Pass the path of an existing .ckpt file.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"ckpt_path={str(path)!r} is not a readable checkpoint: it is not a torch zip archive (truncated, "
            "random bytes, or a raw pickle). Pick another file, e.g. the run's checkpoints/last.ckpt."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # every member's CRC-32: torch.load itself does not check them
    except (zipfile.BadZipFile, OSError, RuntimeError) as err:
        damaged = f"({type(err).__name__}: {err})"
    if damaged is not None:
        raise CheckpointError(
            f"ckpt_path={str(path)!r} is damaged: {damaged} fails its CRC-32 check (a flipped bit or a partial "
            "copy). Pick another file, e.g. an earlier epoch=*.ckpt of the run, or copy the file again."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        culprit = next((ln.strip() for ln in str(err).splitlines() if "GLOBAL" in ln or "global" in ln), "")
        reason = culprit or "an object that torch.load(weights_only=True) does not allow"
        raise CheckpointError(
            f"ckpt_path={str(path)!r} was refused: it contains objects that are not plain weights ({reason}). "
            "Loading it could run arbitrary code; load only checkpoints from this framework or a source you trust."
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(
            f"ckpt_path={str(path)!r} is not a readable checkpoint ({type(err).__name__}: {str(err)[:200]}). "
            "It may be truncated or not a checkpoint at all; pick another file, e.g. the run's checkpoints/last.ckpt."
        ) from err
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
        raise CheckpointError(
            f"ckpt_path={str(path)!r} is a torch file but not a Lightning checkpoint (missing keys {missing}). "
            "Pass a checkpoint written by `framework fit` (runs/<name>/version_<k>/checkpoints/*.ckpt)."
        )
    return ckpt
