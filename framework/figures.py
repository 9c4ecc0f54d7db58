"""Figures go to the run directory (PNG) and to every logger that takes images.

Plugins draw inside :func:`figure` (or hand a finished figure to :func:`log_figure`): the figure is closed on every
rank, and saved and logged on rank zero only, so DDP workers neither leak figures nor write files.

**One scheme for every figure.** A figure's name is snake_case (``[a-z0-9_]+``, no stage prefix: ``samples``,
``adaptation_curve``). Each invocation writes its figures into its own folder,
``<run_dir>/figures/<job>-<n>/<name>.png``: ``job`` is ``fit``, ``resume`` (a fit that continues a checkpoint),
``validate``, ``test`` or ``predict`` and ``n`` counts that job's invocations in the run dir from 1, so a second
``test`` writes ``figures/test-2/`` beside ``figures/test-1/`` instead of overwriting it. The logger key is
``figures/<name>`` (W&B: one W&B run per invocation, so the keys do not collide across jobs). Plugins write their
figures at the end of fit (from the last validation) and at the end of test.

Curves over tasks or seeds carry a band (:func:`mean_band`), colour maps a colour bar (:func:`image_grid`,
``fig.colorbar``).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import lightning.pytorch as pl
import numpy as np

NAME = re.compile(r"[a-z0-9_]+")
"""What a figure name may be: snake_case, no slash (the folder says the job, the name the figure)."""

_FOLDERS: weakref.WeakKeyDictionary[Any, dict[str, Path]] = weakref.WeakKeyDictionary()
"""The figure folder each trainer writes per job: chosen at its first figure of the job, reused for the rest."""


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the headless Agg backend (no display needed, safe in DDP worker processes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _logging_step(trainer: pl.Trainer) -> int:
    """The step Lightning logs metrics at (in a test of a checkpoint: the checkpoint's, which the CLI sets)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def job_of(trainer: Any) -> str:
    """The job a trainer runs now: its stage (``fit``, ``validate``, ``test``, ``predict``), ``resume`` for a fit from
    a checkpoint; ``run`` when it runs none (a figure drawn outside a stage)."""
    state = getattr(trainer, "state", None)
    fn = getattr(getattr(state, "fn", None), "value", None)
    if fn is None:
        return "run"
    return "resume" if fn == "fit" and getattr(trainer, "ckpt_path", None) else str(fn)


def figure_dir(trainer: Any) -> Path:
    """``<run_dir>/figures/<job>-<n>``: this invocation's figure folder (created). The first figure of a job picks
    the next free ``n`` for that job; the trainer keeps it for the job's other figures."""
    job = job_of(trainer)
    try:
        folders = _FOLDERS.setdefault(trainer, {})
    except TypeError:  # an object that takes no weak reference: no memory, one scan per figure
        folders = {}
    if job not in folders:
        root = Path(trainer.default_root_dir) / "figures"
        taken = [p.name.rpartition("-")[2] for p in root.glob(f"{job}-*") if p.is_dir()]
        n = 1 + max((int(t) for t in taken if t.isdigit()), default=0)
        folders[job] = root / f"{job}-{n}"
    folders[job].mkdir(parents=True, exist_ok=True)
    return folders[job]


def _folder_order(path: Path) -> tuple[str, int, str]:
    """Sort key of a figure ``<job>-<n>/<name>.png``: job, then n as a number, then name."""
    job, _, n = path.parent.name.rpartition("-")
    return job, int(n) if n.isdigit() else 0, path.name


def find_figures(run_dir: str | Path, name: str = "*") -> list[Path]:
    """The PNGs called ``name`` (a glob) that the invocations of ``run_dir`` wrote, by job, then oldest first."""
    return sorted((Path(run_dir) / "figures").glob(f"*-*/{name}.png"), key=_folder_order)


def log_figure(trainer: pl.Trainer, name: str, figure: Any) -> Path | None:
    """Save ``figure`` as ``<run_dir>/figures/<job>-<n>/<name>.png`` and log it under ``figures/<name>`` to W&B
    (``wandb.Image``) or TensorBoard (``add_figure``) on rank zero; other loggers get the file only. Closes the figure
    on every rank.

    Raises:
        ValueError: ``name`` is not snake_case (``[a-z0-9_]+``).

    Returns:
        The PNG path on rank zero, None on the other ranks.
    """
    try:
        if not NAME.fullmatch(name):
            raise ValueError(f"figure name {name!r}: use snake_case [a-z0-9_]+ (the folder names the job)")
        if not trainer.is_global_zero:
            return None
        path = figure_dir(trainer) / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        key = f"figures/{name}"
        for logger in trainer.loggers:
            kind = type(logger).__name__
            if kind == "WandbLogger":
                logger.log_image(key=key, images=[str(path)], step=_logging_step(trainer))
            elif kind == "TensorBoardLogger":
                logger.experiment.add_figure(key, figure, global_step=_logging_step(trainer), close=False)
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


def mean_band(ax: Any, x: Any, curves: Any, label: str, over: str = "tasks", **kwargs: Any) -> None:
    """The mean of ``curves`` (array ``(n, len(x))``, one row per task or seed) against ``x`` with a band of
    +-1.96 standard errors (a 95% interval of the mean; none for one row); ``over`` names the rows in the legend."""
    rows = np.asarray(curves, dtype=float).reshape(-1, len(x))
    mean = rows.mean(0)
    line = ax.plot(x, mean, label=f"{label} (mean of {len(rows)} {over}, 95% CI)", **kwargs)[0]
    if len(rows) > 1:
        half = 1.96 * rows.std(0, ddof=1) / np.sqrt(len(rows))
        ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.25, lw=0)


def scatter_samples(ax: Any, samples: Any, data: Any, label: str) -> None:
    """2-D held-out points and generated ``samples`` (tensors ``(n, 2)``) overlaid on one axis."""
    ax.scatter(*data.cpu().T, s=2, alpha=0.4, label="held-out")
    ax.scatter(*samples.cpu().T, s=2, alpha=0.4, label=label)
    ax.legend(markerscale=4)


def image_grid(axes: Any, samples: Any, side: int) -> None:
    """The first ``axes.size`` rows of ``samples`` ``(n, side * side)`` as grey images in [-1, 1], one per axis, with
    one colour bar for the grid."""
    image = None
    for ax, img in zip(axes.flat, samples[: axes.size].cpu(), strict=False):
        image = ax.imshow(img.reshape(side, side).clamp(-1, 1), cmap="gray_r", vmin=-1, vmax=1)
        ax.axis("off")
    if image is not None:
        image.figure.colorbar(image, ax=list(axes.flat), shrink=0.8, label="pixel value")
