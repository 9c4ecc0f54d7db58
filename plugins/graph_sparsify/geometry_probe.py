"""Log representation-geometry probes (Gram error, CKA, kNN overlap, centroid shift, covariance change) between
paired representations that a LightningModule exposes, at the end of every validation (and test) epoch."""

from __future__ import annotations

from typing import Protocol

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from framework_plugins.graph_sparsify.geometry import geometry_report


class PairedRepresentations(Protocol):
    def geometry_pairs(self) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], torch.Tensor | None]:
        """({name: (reference X (n, d), perturbed Y (n, d))}, labels (n,) or None)."""
        ...


class GeometryProbe(Callback):
    """Logs ``<stage>/geometry/<name>/<probe>`` for each pair returned by ``pl_module.geometry_pairs()`` (see
    :class:`PairedRepresentations`), with probes from :func:`framework_plugins.graph_sparsify.geometry.geometry_report`
    (kNN overlap at ``k``). Runs at the validation of epochs every_n_epochs - 1, 2 every_n_epochs - 1, ... and at
    every test; skips the sanity check.

    Args:
        k: neighbours per node of the kNN-overlap probe (``knn_jaccard``).
        every_n_epochs: probe at the validation of every n-th epoch (>= 1; the test is always probed).
    """

    def __init__(self, k: int = 10, every_n_epochs: int = 1) -> None:
        self.k, self.every_n_epochs = k, every_n_epochs

    def _probe(self, stage: str, pl_module: pl.LightningModule) -> None:
        if not hasattr(pl_module, "geometry_pairs"):
            raise ValueError(
                f"GeometryProbe needs {type(pl_module).__name__}.geometry_pairs() returning "
                "({name: (X, Y)}, labels); remove the callback or implement it."
            )
        pairs, labels = pl_module.geometry_pairs()
        for name, (x, y) in pairs.items():
            for probe, value in geometry_report(x, y, labels, self.k).items():
                pl_module.log(f"{stage}/geometry/{name}/{probe}", value, sync_dist=False)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        self._probe("val", pl_module)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._probe("test", pl_module)
