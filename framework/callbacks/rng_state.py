"""Save and restore the global RNG streams with each checkpoint, so a resumed run continues the same random
sequence (noise draws, dropout) as an uninterrupted one."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class RNGStateCallback(Callback):
    """Checkpoint the Python, NumPy and torch (CPU and CUDA) generator states of this process.

    Lightning does not save RNG state by default; without it a run resumed from an epoch-boundary checkpoint draws
    different training noise than the uninterrupted run. The checkpoint holds rank 0's state and every rank restores
    it (ranks are seeded alike by ``seed_everything``); CUDA: the current device's generator only. The state is set
    when the checkpoint loads and again at ``on_train_start``, after the sanity check a resumed fit runs first.
    """

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "python": list(random.getstate()[1]),
            "python_version": random.getstate()[0],
            "python_gauss": random.getstate()[2],
            "numpy": _numpy_state(),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["torch_cuda"] = torch.cuda.get_rng_state()  # this process's current device only
        return state

    _restored: dict[str, Any] | None = None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict
        _apply(state_dict)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Apply the restored state again once the resumed fit's sanity check is over: that validation was not part
        of the uninterrupted run (which went on from the checkpoint's moment, possibly mid-epoch) and may draw."""
        if self._restored is not None:
            _apply(self._restored)
            self._restored = None


def _apply(state_dict: dict[str, Any]) -> None:
    """Set this process's Python, NumPy and torch generators to a :meth:`RNGStateCallback.state_dict`."""
    random.setstate((state_dict["python_version"], tuple(state_dict["python"]), state_dict["python_gauss"]))
    kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state_dict["torch"])
    if "torch_cuda" in state_dict and torch.cuda.is_available():
        torch.cuda.set_rng_state(state_dict["torch_cuda"])


def _numpy_state() -> tuple:
    """NumPy's legacy global state as plain Python types (loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return (str(kind), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss))
