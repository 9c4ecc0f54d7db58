"""A real text corpus that exists offline everywhere: the Python standard library's own ``.py`` sources."""

from __future__ import annotations

import sysconfig
import zlib
from functools import cache
from pathlib import Path

import torch

SPLITS = ("train", "val", "test")


def stdlib_files(root: Path | None = None) -> list[Path]:
    """Every ``.py`` file of the standard library (site-packages excluded), in sorted relative-path order."""
    return list(_sorted_py_files(Path(root or sysconfig.get_paths()["stdlib"])))


@cache
def _sorted_py_files(root: Path) -> tuple[Path, ...]:
    if not root.is_dir():
        raise FileNotFoundError(
            f"root={str(root)!r}: no such directory; pass the directory of the Python standard library (.py files)."
        )
    files = (p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    return tuple(sorted(files, key=lambda p: p.relative_to(root).as_posix()))


def split_of(relative_path: str) -> str:
    """Deterministic split by file: crc32(path) mod 20 = 0 -> test, 1 -> val, else train (so ~5% / 5% / 90%)."""
    bucket = zlib.crc32(relative_path.encode()) % 20
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


def load_split(split: str, max_bytes: int, root: Path | None = None) -> torch.Tensor:
    """Concatenated bytes of the files in ``split`` (files joined by a NUL byte), at most ``max_bytes``. (n,) uint8."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; choose one of {SPLITS}")
    root = Path(root or sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in stdlib_files(root):
        if split_of(path.relative_to(root).as_posix()) != split:
            continue
        data = path.read_bytes() + b"\0"
        chunks.append(data[: max_bytes - total])
        total += len(chunks[-1])
        if total >= max_bytes:
            break
    return torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.uint8)


def windows(data: torch.Tensor, block_size: int) -> torch.Tensor:
    """Non-overlapping windows of ``block_size + 1`` bytes as int64, (n_windows, block_size + 1): input x = w[:, :-1],
    next-byte target y = w[:, 1:]."""
    n = (len(data) - 1) // block_size
    if n < 1:
        raise ValueError(f"corpus of {len(data)} bytes is shorter than block_size + 1 = {block_size + 1}")
    idx = torch.arange(n)[:, None] * block_size + torch.arange(block_size + 1)[None]
    return data[idx].long()
