"""Shapes a model takes from its datamodule (``dim``, ``block_size``) are linked: a config may leave the model's value
out (it is set from the data), and one that states it must agree or the command stops with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framework.cli import FrameworkCLI, main
from framework.config_keys import ConfigValueError
from framework.registry import config_dir

QUICK = config_dir("flow_matching") / "quick.yaml"
FAST = [
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--model.init_args.eval_samples=64",
    "--model.init_args.w2_steps=[1]",
]


def without_model_dim(tmp_path: Path) -> Path:
    """quick.yaml with ``model.init_args.dim`` removed and the data in 3 dimensions."""
    config = yaml.safe_load(QUICK.read_text())
    del config["model"]["init_args"]["dim"]
    config["data"]["init_args"]["dim"] = 3
    path = tmp_path / "no_model_dim.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_config_without_the_model_dim_trains_with_the_data_dim_and_resumes(tmp_path: Path) -> None:
    config, run_dir = without_model_dim(tmp_path), tmp_path / "run"
    cli = main(["fit", "--config", str(config), "--run_dir", str(run_dir), "--trainer.max_epochs=1", *FAST])
    assert cli.model.hparams.dim == 3
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["init_args"]["dim"] == 3  # the recipe
    resumed = main(
        ["fit", "--config", str(config), "--run_dir", str(run_dir), "--trainer.max_epochs=2", "--ckpt_path", "last"]
        + FAST
    )
    assert resumed.trainer.current_epoch == 2  # the resume is not refused as a changed model setting


def test_a_stated_model_dim_that_disagrees_with_the_data_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(QUICK), "--model.init_args.dim=3", "--run_dir", str(tmp_path / "r"), *FAST])
    assert exit_info.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("framework: error")]
    assert len(err) == 1
    assert "model.init_args.dim=3 but the data is 2-dimensional (data.init_args.dim=2)" in err[0]


def test_block_size_is_linked_and_a_model_without_the_argument_gets_no_linked_value(tmp_path: Path) -> None:
    moe = ["--config", str(config_dir("moe_transformer") / "quick.yaml"), "--run_dir", str(tmp_path / "m")]
    with pytest.raises(
        ConfigValueError, match=r"model.init_args.block_size=32 but .* 64 tokens long \(data.init_args.block_size=64\)"
    ):
        FrameworkCLI(args=[*moe, "--model.init_args.block_size=32"], run=False)
    # decoupled_descent's datamodule has a `dim` but its model no such argument: nothing is linked or recorded
    decoupled = FrameworkCLI(
        args=["--config", str(config_dir("decoupled_descent") / "quick.yaml"), "--run_dir", str(tmp_path / "d")],
        run=False,
    )
    assert decoupled.datamodule.dim == decoupled.model.hparams.n_features
    assert "dim" not in decoupled.model.hparams and "block_size" not in decoupled.model.hparams
