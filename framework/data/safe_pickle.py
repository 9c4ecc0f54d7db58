"""Reading pickled dataset files (CIFAR-10 python batches, Planetoid raw files) without running their code.

``pickle.load`` calls whatever function a file names, so a crafted dataset file runs code on load. The unpickler
here resolves only the classes a caller allows (numpy arrays by default); any other global refuses the file before
anything from it is called.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# what pickled numpy arrays name: numpy 1 writers, numpy 2 writers, the arrays' class, dtype and scalars, and the
# bytes constructor of protocol-2 pickles written by Python 3 (``_codecs.encode(text, "latin1")``, as torch allows)
NUMPY_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # protocol 5
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class UnsafePickleError(ValueError):
    """A pickled data file names a global outside the allowed set (it could run code); nothing of it was called."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, allowed: frozenset[tuple[str, str]], path: Path, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.allowed, self.path = allowed, path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise UnsafePickleError(
                f"{self.path} was refused: it names {module}.{name}, which a plain data file does not contain (it "
                f"could run code on load); use the original dataset file."
            )
        with (
            warnings.catch_warnings()
        ):  # numpy.core and scipy.sparse.csr are deprecated aliases, still what old files name
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def load_data_pickle(path: str | Path, allowed: Iterable[tuple[str, str]] = (), encoding: str = "ASCII") -> Any:
    """Unpickle the data file ``path`` allowing only the globals in ``allowed`` plus :data:`NUMPY_GLOBALS`.

    Builtin containers and scalars (dict, list, tuple, str, bytes, numbers) need no global and always load.
    ``encoding`` is pickle's for Python 2 strings (``"bytes"`` for CIFAR-10, ``"latin1"`` for Planetoid). Raises
    :class:`UnsafePickleError` naming the file and the global for anything else, and ``ValueError`` for a file
    that is not a pickle at all.
    """
    path = Path(path)
    with path.open("rb") as fh:
        try:
            return _RestrictedUnpickler(fh, NUMPY_GLOBALS | frozenset(allowed), path, encoding=encoding).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
            raise ValueError(f"{path} is not a readable pickled data file ({type(err).__name__}: {err}).") from err
