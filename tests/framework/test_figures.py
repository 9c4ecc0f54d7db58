"""Figures (framework.figures): one folder per invocation (``figures/<job>-<n>/<name>.png``), snake_case names,
bands over tasks or seeds, colour bars on colour maps, and every plugin's figures at the end of fit as well as test."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from framework.cli import main
from framework.figures import figure, find_figures, image_grid, log_figure, mean_band, pyplot
from framework.registry import all_configs, config_dir


class _Drawing(BoringModel):
    """A BoringModel that draws ``line`` (its title: the value of ``label``) at the end of fit and of test."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def _draw(self) -> None:
        with figure(self.trainer, "line", figsize=(2, 2)) as (_, ax):
            ax.plot([0, 1], [0, 1])
            ax.set_title(self.label)

    def on_fit_end(self) -> None:
        self._draw()

    def on_test_epoch_end(self) -> None:
        self._draw()


def _trainer(root: Path, max_steps: int = 2) -> pl.Trainer:
    return pl.Trainer(
        default_root_dir=root,
        max_steps=max_steps,
        limit_val_batches=1,
        limit_test_batches=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_each_invocation_writes_its_own_folder_and_a_second_test_overwrites_nothing(tmp_path):
    _trainer(tmp_path).fit(_Drawing("fit"))
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    _trainer(tmp_path).test(_Drawing("first test"), ckpt_path=str(ckpt))
    first = (tmp_path / "figures" / "test-1" / "line.png").read_bytes()
    _trainer(tmp_path).test(_Drawing("second test, another title"), ckpt_path=str(ckpt))
    _trainer(tmp_path, max_steps=4).fit(_Drawing("resume"), ckpt_path=str(ckpt))
    names = [p.relative_to(tmp_path / "figures").as_posix() for p in find_figures(tmp_path)]
    assert names == ["fit-1/line.png", "resume-1/line.png", "test-1/line.png", "test-2/line.png"]
    assert (tmp_path / "figures" / "test-1" / "line.png").read_bytes() == first
    assert (tmp_path / "figures" / "test-2" / "line.png").read_bytes() != first


def test_a_figure_name_is_snake_case_and_the_figure_is_closed_when_refused(tmp_path):
    plt = pyplot()
    plt.close("all")
    trainer = _trainer(tmp_path)
    with pytest.raises(ValueError, match="snake_case"):
        log_figure(trainer, "test/predicted", plt.figure())
    assert plt.get_fignums() == []
    assert not (tmp_path / "figures").exists()


def test_mean_band_draws_the_mean_and_a_95_percent_band_over_rows():
    plt = pyplot()
    fig, ax = plt.subplots()
    rows = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 6.0]])
    mean_band(ax, [0, 1, 2], rows, "test", over="seeds")
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [1.0, 2.0, 4.0])
    assert line.get_label() == "test (mean of 2 seeds, 95% CI)"
    (band,) = ax.collections
    upper = band.get_paths()[0].vertices[:, 1].max()
    assert upper == pytest.approx(4.0 + 1.96 * np.std([2.0, 6.0], ddof=1) / np.sqrt(2))
    mean_band(ax, [0, 1, 2], rows[:1], "one row")
    assert len(ax.collections) == 1  # one row: no band
    plt.close(fig)


def test_an_image_grid_carries_one_colour_bar():
    plt = pyplot()
    fig, axes = plt.subplots(2, 2)
    image_grid(axes, torch.linspace(-1, 1, 4 * 16).reshape(4, 16), side=4)
    assert len(fig.axes) == 5 and fig.axes[-1].get_ylabel() == "pixel value"
    plt.close(fig)


FIGURES = {  # one figure per plugin, drawn at the end of fit and again at test
    "decoupled_descent": "errors",
    "drifting": "samples",
    "flow_matching": "samples",
    "gap_transformer": "predicted_vs_observed",
    "graph_sparsify": "weight_distance",
    "meta_rl": "adaptation_curve",
    "moe_transformer": "expert_load",
    "topofisher": "fisher_ellipses",
}


def test_every_plugin_is_covered():
    assert set(FIGURES) == {c.parent.name for c in all_configs()}


@pytest.mark.parametrize("plugin", sorted(FIGURES))
def test_every_plugin_draws_its_figure_at_the_end_of_fit_and_of_test(plugin, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "--config",
        str(config_dir(plugin) / "quick.yaml"),
        f"--run_dir={run_dir}",
        "--trainer.max_epochs=1",
        "--trainer.max_steps=-1",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=2",
        "--trainer.limit_test_batches=2",
        "--trainer.logger=CSVLogger",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    main(["fit", *args])
    main(["test", *args, "--ckpt_path=last"])
    name = f"{FIGURES[plugin]}.png"
    assert [p.parent.name for p in find_figures(run_dir, FIGURES[plugin])] == ["fit-1", "test-1"], name
