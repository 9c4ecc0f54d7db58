"""The `framework` command: plugin listing, short names, run directories, loggers, third-party plugins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from framework.cli import dump_parsed, main, resolve_run_dir
from framework.registry import config_dir

QUICK = config_dir("flow_matching") / "quick.yaml"
SHORT = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "third_party_plugin"


def test_plugins_lists_models_datamodules_and_configs(capsys):
    main(["plugins"])
    out = capsys.readouterr().out
    assert "flow_matching" in out and "FlowMatching" in out and "FlowMatchingData" in out
    assert "quick.yaml" in out


def test_python_dash_m_framework_works():
    proc = subprocess.run([sys.executable, "-m", "framework", "plugins"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "FlowMatching" in proc.stdout


def test_console_script_exits_zero_after_a_fit(tmp_path):
    """The installed ``framework`` script (not only ``python -m``) exits 0 and prints no stray object after a fit."""
    script = Path(sys.executable).parent / "framework"
    if not script.is_file():
        pytest.skip(f"no console script next to {sys.executable} (package not pip-installed here)")
    proc = subprocess.run(
        [str(script), "fit", "--config", str(QUICK), *SHORT, f"--run_dir={tmp_path / 'r'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FrameworkCLI object" not in proc.stderr + proc.stdout


def test_short_class_names_resolve_without_a_config(tmp_path):
    cli = main(["fit", "--model=FlowMatching", "--data=FlowMatchingData", *SHORT, f"--run_dir={tmp_path / 'r'}"])
    assert type(cli.model).__name__ == "FlowMatching"
    assert (tmp_path / "r" / "config.yaml").is_file()


def test_run_dirs_are_versioned_and_resume_picks_the_newest(tmp_path):
    base = Path("runs") / "x" / "y"
    assert resolve_run_dir(None, "x/y", resume_last=False) == base / "version_0"
    for k in (0, 1, 3):
        (base / f"version_{k}" / "checkpoints").mkdir(parents=True)
    (base / "version_1" / "checkpoints" / "last.ckpt").touch()
    assert resolve_run_dir(None, "x/y", resume_last=False) == base / "version_4"
    assert resolve_run_dir(None, "x/y", resume_last=True) == base / "version_1"
    assert resolve_run_dir("elsewhere", "x/y", resume_last=True) == Path("elsewhere")


def test_csv_logger_is_one_flag_away_and_records_the_resolved_config(tmp_path, capsys):
    run_dir = tmp_path / "csv"
    (run_dir / "wandb").mkdir(parents=True)  # e.g. left by an earlier W&B-logged command in this run dir
    main(["fit", "--config", str(QUICK), *SHORT, "--trainer.logger=CSVLogger", f"--run_dir={run_dir}"])
    out = capsys.readouterr().out
    assert "== fit finished" in out and "wandb sync" not in out
    assert (run_dir / "metrics.csv").is_file()
    hparams_text = (run_dir / "hparams.yaml").read_text()
    hparams = yaml.safe_load(hparams_text)
    assert hparams["model"]["dim"] == 2 and hparams["run"]["job_type"] == "fit" and hparams["run"]["group"] is None
    assert "_instantiator" not in hparams_text and "init_args" not in hparams_text
    assert "lr-AdamW/decay" in (run_dir / "metrics.csv").read_text().splitlines()[0]
    main(
        [
            "test",
            "--config",
            str(QUICK),
            *SHORT,
            "--trainer.logger=CSVLogger",
            f"--run_dir={run_dir}",
            "--ckpt_path=last",
            "--trainer.limit_test_batches=1",
        ]
    )
    assert "val/loss" in (run_dir / "metrics.csv").read_text().splitlines()[0], "test must not clobber fit logs"
    assert "test/loss" in (run_dir / "test" / "metrics.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("plugin", ["flow_matching", "topofisher", "moe_transformer"])
def test_the_unvalidated_dump_of_a_parsed_config_equals_jsonargparses_validated_dump(tmp_path, plugin):
    """dump_parsed skips jsonargparse's re-validation of an already parsed config: same YAML, nested classes too."""
    cli = main(["fit", "--config", str(config_dir(plugin) / "quick.yaml"), "--trainer.fast_dev_run=true",
                "--trainer.logger=false", "--trainer.callbacks=[]", f"--run_dir={tmp_path}"])  # fmt: skip
    validated = cli.parser.dump(cli.config, skip_none=False, format="yaml", skip_link_targets=False)
    assert dump_parsed(cli.parser, cli.config) == validated and "class_path" in validated


def test_a_command_builds_only_its_subcommands_parser_and_help_lists_all_four(tmp_path, capsys):
    cli = main(["fit", "--config", str(QUICK), *SHORT, "--trainer.logger=CSVLogger", f"--run_dir={tmp_path}"])
    assert list(cli._subcommand_parsers) == ["fit"] and cli.trainer.state.finished
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "{fit,validate,test,predict}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["test", "--help"])
    described = capsys.readouterr().out  # each subcommand's own description (they once all showed fit's)
    assert "evaluation epoch over the test set" in described and "Runs the full optimization" not in described
    with pytest.raises(SystemExit) as exit_info:
        main(["fitt", "--config", str(QUICK)])
    assert exit_info.value.code != 0 and "choose from 'fit', 'validate', 'test', 'predict'" in capsys.readouterr().err


def test_tensorboard_logger_writes_into_the_run_dir(tmp_path):
    run_dir = tmp_path / "tb"
    main(["fit", "--config", str(QUICK), *SHORT, "--trainer.logger=TensorBoardLogger", f"--run_dir={run_dir}"])
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_wandb_offline_is_the_default_logger(tmp_path):
    run_dir = tmp_path / "wb"
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    proc = subprocess.run(
        [sys.executable, "-m", "framework", "fit", "--config", str(QUICK), *SHORT, f"--run_dir={run_dir}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    run_id = json.loads((run_dir / "invocations.jsonl").read_text())["wandb_run_id"]
    assert offline_run.name.endswith(f"-{run_id}") and (offline_run / f"run-{run_id}.wandb").is_file()
    assert f"wandb sync {offline_run}`" in proc.stdout


def test_seed_is_fixed_by_default_and_overridable(tmp_path):
    a = main(["fit", "--config", str(QUICK), *SHORT, f"--run_dir={tmp_path / 'a'}"])
    b = main(["fit", "--config", str(QUICK), *SHORT, f"--run_dir={tmp_path / 'b'}"])
    c = main(["fit", "--config", str(QUICK), *SHORT, f"--run_dir={tmp_path / 'c'}", "--seed_everything=7"])
    pa, pb, pc = (next(cli.model.parameters()).detach() for cli in (a, b, c))
    assert (pa == pb).all() and not (pa == pc).all()
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["seed_everything"] == 7


def test_any_torch_optimizer_and_scheduler_from_the_command_line(tmp_path):
    cli = main(
        [
            "fit",
            "--config",
            str(QUICK),
            *SHORT,
            f"--run_dir={tmp_path / 'sgd'}",
            "--model.init_args.optimizer=torch.optim.SGD",
            "--model.init_args.optimizer.lr=0.05",
            "--model.init_args.optimizer.momentum=0.9",
            "--model.init_args.lr_scheduler=torch.optim.lr_scheduler.StepLR",
            "--model.init_args.lr_scheduler.step_size=1",
            "--model.init_args.lr_scheduler.gamma=0.5",
        ]
    )
    optimizer = cli.trainer.optimizers[0]
    assert type(optimizer).__name__ == "SGD"
    assert {g["name"] for g in optimizer.param_groups} == {"decay", "no_decay"}
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**2)  # stepped once per training step


def test_data_dim_mismatch_is_one_line_naming_the_field(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(QUICK), *SHORT, "--model.init_args.dim=3", f"--run_dir={tmp_path / 'x'}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("framework: error: model.init_args.dim=3 but the data is 2-dim")


def _install_example_as_distribution(site: Path) -> None:
    """What `pip install examples/third_party_plugin` produces: the package plus a dist-info with entry points."""
    shutil.copytree(EXAMPLE / "framework_demo_plugin", site / "framework_demo_plugin")
    info = site / "framework_demo_plugin-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: framework-demo-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        '[framework.plugins]\ndemo_regression = "framework_demo_plugin"\n'.replace('"', "")
    )


def test_third_party_plugin_registers_through_the_entry_point(tmp_path):
    site = tmp_path / "site"
    _install_example_as_distribution(site)
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "disabled"}
    listed = subprocess.run(
        [sys.executable, "-m", "framework", "plugins"], capture_output=True, text=True, env=env, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert "demo_regression" in listed.stdout and "DemoRegression" in listed.stdout
    config = site / "framework_demo_plugin" / "configs" / "quick.yaml"
    assert "framework_demo_plugin/configs/quick.yaml" in listed.stdout
    fitted = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework",
            "fit",
            "--config",
            str(config),
            *SHORT,
            "--model=DemoRegression",
            "--run_dir=demo",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    assert (tmp_path / "demo" / "checkpoints" / "last.ckpt").is_file()
