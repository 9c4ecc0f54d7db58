"""Readers of user-supplied dataset files: IDX headers checked against the data, pickles that cannot run code."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import scipy.sparse as sp

from framework.data import UnsafePickleError, load_data_pickle, read_idx, read_idx_images_and_labels


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding written independently with struct: magic 0 0 8 D, D big-endian sizes, the bytes."""
    return struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.fixture
def mnist_like(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8), rng.integers(0, 10, 5, dtype=np.uint8)
    (tmp_path / "images").write_bytes(idx_bytes(images))
    with gzip.open(tmp_path / "labels.gz", "wb") as fh:
        fh.write(idx_bytes(labels))
    return tmp_path, images, labels


def test_idx_reads_what_an_independent_writer_wrote(mnist_like):
    root, images, labels = mnist_like
    got_images, got_labels = read_idx_images_and_labels(root / "images", root / "labels.gz")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_idx_refuses_a_labels_file_given_as_images_and_the_reverse(mnist_like):
    root, _, _ = mnist_like
    with pytest.raises(ValueError, match="is a labels file"):
        read_idx_images_and_labels(root / "labels.gz", root / "labels.gz")
    with pytest.raises(ValueError, match="is an images file"):
        read_idx_images_and_labels(root / "images", root / "images")


def test_idx_refuses_bad_magic_truncation_trailing_bytes_and_count_mismatch(mnist_like, tmp_path):
    root, images, labels = mnist_like
    good = (root / "images").read_bytes()
    cases = {
        "magic": (b"\x00\x00\x0d\x03" + good[4:], "not an unsigned-byte IDX file"),
        "short": (good[:-1], "truncated"),
        "long": (good + b"\x00", "has 77 bytes but its IDX header"),
        "empty": (b"", "magic empty"),
    }
    for name, (content, needle) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=needle):
            read_idx(tmp_path / name, 3)
    (tmp_path / "four_labels").write_bytes(idx_bytes(labels[:4]))
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        read_idx_images_and_labels(root / "images", tmp_path / "four_labels")


class _Exploit:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_data_pickles_load_numpy_builtins_and_allowed_classes(tmp_path, protocol):
    data = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3], "name": "batch", "s": 1.5}
    (tmp_path / "batch").write_bytes(pickle.dumps(data, protocol=protocol))
    got = load_data_pickle(tmp_path / "batch", encoding="bytes")
    np.testing.assert_array_equal(got[b"data"], data[b"data"])
    assert got[b"labels"] == [1, 2, 3] and got["name"] == "batch" and got["s"] == 1.5
    matrix = sp.csr_matrix(np.eye(3))
    (tmp_path / "csr").write_bytes(pickle.dumps(matrix, protocol=protocol))
    with pytest.raises(UnsafePickleError, match="csr_matrix"):
        load_data_pickle(tmp_path / "csr")  # not allowed unless the caller names it
    allowed = {("scipy.sparse._csr", "csr_matrix")}
    assert (load_data_pickle(tmp_path / "csr", allowed) != matrix).nnz == 0


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_a_data_pickle_carrying_code_is_refused_before_it_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    for i, payload in enumerate([_Exploit(marker), {b"data": [_Exploit(marker)]}]):
        path = tmp_path / f"evil{i}"
        path.write_bytes(pickle.dumps(payload, protocol=protocol))
        with pytest.raises(UnsafePickleError, match=rf"evil{i} was refused: it names posix\.system"):
            load_data_pickle(path, encoding="bytes")
    assert not marker.exists(), "the data file's code ran"


def test_a_file_that_is_not_a_pickle_is_a_value_error(tmp_path):
    (tmp_path / "text").write_text("RID,VISCODE\n1,bl\n")
    with pytest.raises(ValueError, match="not a readable pickled data file"):
        load_data_pickle(tmp_path / "text")
