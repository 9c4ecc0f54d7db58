"""Figures go to the run directory (PNG) and to every logger that takes images.

Plugins draw inside :func:`figure` (or hand a finished figure to :func:`log_figure`): the figure is closed on every
rank, and saved and logged on rank zero only, so DDP workers neither leak figures nor write files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import lightning.pytorch as pl


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the headless Agg backend (no display needed, safe in DDP worker processes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _logging_step(trainer: pl.Trainer) -> int:
    """The step Lightning logs metrics at (in a test of a checkpoint: the checkpoint's, which the CLI sets)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def log_figure(trainer: pl.Trainer, name: str, figure: Any) -> Path | None:
    """Save ``figure`` as ``<run_dir>/figures/<name>.png`` and log it to W&B (``wandb.Image``) or TensorBoard
    (``add_figure``) on rank zero; other loggers get the file only. Closes the figure on every rank.

    Returns:
        The PNG path on rank zero, None on the other ranks.
    """
    try:
        if not trainer.is_global_zero:
            return None
        path = Path(trainer.default_root_dir) / "figures" / f"{name.replace('/', '_')}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110, bbox_inches="tight")
        for logger in trainer.loggers:
            kind = type(logger).__name__
            if kind == "WandbLogger":
                logger.log_image(key=name, images=[str(path)], step=_logging_step(trainer))
            elif kind == "TensorBoardLogger":
                logger.experiment.add_figure(name, figure, global_step=_logging_step(trainer), close=False)
        return path
    finally:
        pyplot().close(figure)


@contextmanager
def figure(trainer: pl.Trainer, name: str, *args: Any, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
    """``with figure(trainer, "samples", figsize=(4, 4)) as (fig, ax):`` draws on ``plt.subplots(*args, **kwargs)``;
    a clean exit saves and logs it on rank zero (:func:`log_figure`), and it is closed on every rank either way."""
    plt = pyplot()
    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield fig, axes
    except BaseException:
        plt.close(fig)
        raise
    log_figure(trainer, name, fig)


def scatter_samples(ax: Any, samples: Any, data: Any, label: str) -> None:
    """2-D held-out points and generated ``samples`` (tensors ``(n, 2)``) overlaid on one axis."""
    ax.scatter(*data.cpu().T, s=2, alpha=0.4, label="held-out")
    ax.scatter(*samples.cpu().T, s=2, alpha=0.4, label=label)
    ax.legend(markerscale=4)


def image_grid(axes: Any, samples: Any, side: int) -> None:
    """The first ``axes.size`` rows of ``samples`` ``(n, side * side)`` as grey images in [-1, 1], one per axis."""
    for ax, img in zip(axes.flat, samples[: axes.size].cpu(), strict=False):
        ax.imshow(img.reshape(side, side).clamp(-1, 1), cmap="gray_r")
        ax.axis("off")
