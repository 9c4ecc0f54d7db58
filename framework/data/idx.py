"""The IDX format of MNIST-style image and label files, read with every header field checked."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_UNSIGNED_BYTE = 0x08


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """The uint8 array stored in an IDX file (optionally gzip-compressed, by its ``.gz`` suffix).

    Layout: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions D, D big-endian uint32
    sizes, then prod(sizes) data bytes. Raises ``ValueError`` naming the file when the magic, the number of
    dimensions (``ndim``: 3 for images, 1 for labels) or the data length disagree with the header.

    Shapes: returns (s_1, ..., s_D) with D = ``ndim``.
    """
    path = Path(path)
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != _UNSIGNED_BYTE:
        raise ValueError(
            f"{path} is not an unsigned-byte IDX file (magic {raw[:4].hex() or 'empty'}, expected 000008xx)."
        )
    if raw[3] != ndim:
        kind = {1: "a labels file", 3: "an images file"}.get(raw[3], f"a {raw[3]}-dimensional array")
        raise ValueError(
            f"{path} is {kind} (IDX with {raw[3]} dimensions), expected {ndim} dimensions; check the name."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated inside its IDX header ({len(raw)} bytes).")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(
            f"{path} has {len(raw)} bytes but its IDX header {shape} needs {expected}; the file is truncated or "
            f"not what its header says: download it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_images_and_labels(images: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An IDX images file and its labels file, checked to hold one label per image.

    Shapes: returns images (n, height, width) uint8 and labels (n,) uint8."""
    pixels, classes = read_idx(images, 3), read_idx(labels, 1)
    if len(pixels) != len(classes):
        raise ValueError(f"{images} holds {len(pixels)} images but {labels} holds {len(classes)} labels.")
    return pixels, classes
