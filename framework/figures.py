"""Figures go to the run directory (PNG) and to every logger that takes images."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only


@rank_zero_only
def log_figure(trainer: pl.Trainer, name: str, figure: matplotlib.figure.Figure) -> Path:  # noqa: F821
    """Save ``figure`` as ``<run_dir>/figures/<name>.png`` and log it to W&B (``wandb.Image``) or TensorBoard
    (``add_figure``); other loggers get the file only. Closes the figure. Returns the PNG path."""
    import matplotlib.pyplot as plt

    path = Path(trainer.default_root_dir) / "figures" / f"{name.replace('/', '_')}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    for logger in trainer.loggers:
        kind = type(logger).__name__
        if kind == "WandbLogger":
            logger.log_image(key=name, images=[str(path)], step=trainer.global_step)
        elif kind == "TensorBoardLogger":
            logger.experiment.add_figure(name, figure, global_step=trainer.global_step)
    plt.close(figure)
    return path
