"""Hand the train loaders their saved mid-epoch position on resume even when Lightning built them early."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback


class LoaderStateCallback(Callback):
    """Load the checkpointed state of stateful train loaders (:class:`framework.data.ResumableDataLoader`) before
    the resumed fit draws its first batch.

    Lightning loads those states only where it builds the train loader after restoring a checkpoint; a module that
    reads ``trainer.estimated_stepping_batches`` in ``configure_optimizers`` (``CosineAnnealingToEnd``,
    ``OneCycleLR``) makes it build the loader earlier, and the saved position is then never applied (the resumed
    epoch would start over). ``on_train_start`` runs after the restore and before the first batch; loading twice is
    harmless (Lightning clears the pending states once applied).
    """

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        trainer.fit_loop._load_combined_loader_states()  # noqa: SLF001 - Lightning has no public hook for this
