"""Interrupted runs resume, NaN losses stop training cleanly, bad configs and bad checkpoints get clear errors."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from framework.checkpoint import CheckpointError, load_checkpoint_safely
from framework.cli import main
from framework.registry import config_dir

QUICK = config_dir("flow_matching") / "quick.yaml"
TOY = ["--model=framework.testing.toy.ToyRegression", "--data=framework.testing.toy.ToyRegressionData"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


@pytest.mark.slow
def test_sigkill_mid_fit_resumes_from_last_ckpt(tmp_path):
    """Kill -9 a running fit; `fit --ckpt_path last` restores it (global step continues, same run dir)."""
    steps_per_epoch = 4
    cmd = [
        sys.executable,
        "-m",
        "framework",
        "fit",
        "--config",
        str(QUICK),
        *QUIET,
        f"--trainer.limit_train_batches={steps_per_epoch}",
        "--trainer.limit_val_batches=1",
        "--trainer.max_epochs=100000",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "runs" / "flow_matching" / "quick" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not last.is_file():
        time.sleep(0.2)
    time.sleep(1.0)  # let it train further and rewrite last.ckpt a few times
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint_safely(last)  # still a complete checkpoint (atomic writes)
    resume_epochs = killed_at["epoch"] + 3

    limits = [f"--trainer.limit_train_batches={steps_per_epoch}", "--trainer.limit_val_batches=1"]
    cli = main(
        ["fit", "--config", str(QUICK), *QUIET, *limits, f"--trainer.max_epochs={resume_epochs}", "--ckpt_path=last"]
    )
    assert cli.run_dir == last.parents[1], "resume must reuse the interrupted run's directory"
    assert cli.trainer.ckpt_path == str(last)
    assert cli.trainer.global_step == resume_epochs * steps_per_epoch
    assert not (tmp_path / "runs" / "flow_matching" / "quick" / "version_1").exists()


def test_ckpt_path_last_without_a_run_is_an_error_not_a_fresh_start(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(QUICK), "--ckpt_path=last"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "ckpt_path='last'" in err and "runs/flow_matching/quick" in err
    assert "Traceback" not in err


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "nan"
    args = [
        "fit",
        *TOY,
        *QUIET,
        "--model.nan_at_step=7",
        "--checkpoint.every_n_train_steps=3",
        "--trainer.max_epochs=5",
        f"--run_dir={run_dir}",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert (
        "the training loss is not finite (nan) on finite input data" in err
        and "global step 7" in err
        and "last.ckpt" in err
        and "gradient_clip_val" in err
    )
    ckpt = load_checkpoint_safely(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 6
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model.init_args.hiden=3"], "hiden"),
        (["--model=FlowMatchin"], "FlowMatchin"),
        (["--trainer.max_epoch=3"], "max_epoch"),
    ],
)
def test_config_typos_give_a_clear_error(args, needle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(QUICK), *args])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert "usage:" not in err and needle in err.strip().splitlines()[-1]  # one line, no 60-line usage first


def test_a_value_an_argument_check_refuses_is_one_line_naming_the_key(tmp_path, capsys):
    args = ["fit", "--config", str(QUICK), "--trainer.logger=CSVLogger", f"--run_dir={tmp_path / 'r'}"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--model.init_args.optimizer.init_args.lr=-1"])  # torch.optim's own check
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert (
        err.strip().splitlines()[-1]
        == "framework: error: model.init_args.optimizer.init_args.lr: Invalid learning rate: -1.0"
    )


def test_only_deliberate_argument_checks_count_as_user_errors():
    import numpy as np

    from framework.config_keys import raised_by_argument_check
    from framework.data.toys import toy_2d

    with pytest.raises(ValueError) as library:
        toy_2d("nope", 10, 0)
    with pytest.raises(ValueError) as elsewhere:
        np.zeros(3).reshape(2)
    assert raised_by_argument_check(library.value) and not raised_by_argument_check(elsewhere.value)


def test_typo_in_a_yaml_key_gives_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(QUICK.read_text().replace("sample_steps:", "sample_stepz:"))
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(bad)])
    err = capsys.readouterr().err
    assert "sample_stepz" in err and "Traceback" not in err


class _Exploit:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_random_bytes_checkpoint_is_refused(tmp_path, capsys):
    bad = tmp_path / "random.ckpt"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint_safely(bad)
    with pytest.raises(SystemExit):
        main(["test", "--config", str(QUICK), f"--ckpt_path={bad}"])
    assert "random.ckpt" in capsys.readouterr().err


def test_pickle_with_code_is_refused_and_not_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Exploit(marker)}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint_safely(evil)
    with pytest.raises(SystemExit):
        main(["test", "--config", str(QUICK), f"--ckpt_path={evil}"])
    assert "refused" in capsys.readouterr().err
    evil_raw = tmp_path / "evil_raw.ckpt"
    evil_raw.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(CheckpointError):
        load_checkpoint_safely(evil_raw)
    assert not marker.exists(), "the checkpoint's code ran"


def test_torch_file_that_is_not_a_lightning_checkpoint_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_checkpoint_safely(path)


def test_truncated_checkpoint_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    main(["fit", *TOY, *QUIET, "--trainer.max_epochs=1", f"--run_dir={run_dir}"])
    good = run_dir / "checkpoints" / "last.ckpt"
    assert load_checkpoint_safely(good)["global_step"] > 0
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint_safely(cut)


def _bad_cohort_csv(tmp_path: Path) -> str:
    path = tmp_path / "ADNIMERGE.csv"
    path.write_text("RID,VISCODE,DX\n1,bl,MCI\n")
    return f"--data.init_args.path={path}"


@pytest.mark.parametrize(
    ("plugin", "args", "last_line"),
    [
        ("flow_matching", ["--model.init_args.hidden=0"], "model.init_args.hidden: hidden=0: VelocityMLP needs"),
        ("flow_matching", ["--data.init_args.batch_size=0"], "data.init_args.batch_size: batch_size=0 must be"),
        ("flow_matching", ["--model.init_args.dim=3"], "model.init_args.dim=3 but the data is 2-dimensional"),
        ("flow_matching", ["--data=DriftingData"], "FlowMatching cannot train on DriftingData"),
        (
            "flow_matching",
            ["--model.init_args.optimizer.init_args.lr=1e300"],
            "model.init_args.optimizer.init_args.lr: lr=1e+300 is not representable in the parameters' float32",
        ),
        ("flow_matching", ["--trainer.logger=false"], "Cannot use `LearningRateMonitor` callback with `Trainer` that"),
        (
            "moe_transformer",
            ["--model.init_args.optimizer=torch.optim.Muon"],
            "model.init_args.optimizer: torch.optim.Muon takes only 2-D parameters and this model has 18 others",
        ),
        ("gap_transformer", ["--data.init_args.val_fraction=1.5"], "data.init_args.val_fraction: val_fraction=1.5"),
        ("gap_transformer", ["--data.init_args.source=csv", _bad_cohort_csv], "lacks the required columns"),
    ],
)
def test_user_errors_are_one_line_naming_key_value_and_fix(plugin, args, last_line, tmp_path, capsys):
    """Each of these is a user's mistake: one line on stderr (after Lightning's own info lines), no traceback."""
    args = [a(tmp_path) if callable(a) else a for a in args]
    config = config_dir(plugin) / "quick.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), *args, "--trainer.fast_dev_run=1", f"--run_dir={tmp_path / 'r'}"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("framework: error: ") and last_line in err.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_data_size_ddp_cannot_split_is_one_line_per_process_naming_the_key(tmp_path):
    """Full-batch decoupled descent on 1999 samples over 2 DDP processes: the padded sampler repeats a sample, and
    each process stops with one line naming data.init_args.n_train (no traceback; the two processes' lines may
    interleave on the shared stderr)."""
    cmd = [sys.executable, "-m", "framework", "fit", "--config", str(config_dir("decoupled_descent") / "quick.yaml")]
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu", "--trainer.max_epochs=1"]
    args = [*ddp, "--data.init_args.n_train=1999", "--trainer.logger=CSVLogger", f"--run_dir={tmp_path / 'r'}"]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*cmd, *args, *QUIET], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    named = proc.stderr.count("framework: error: data.init_args.n_train: n_train=1999: decoupled descent is full")
    assert named >= 1 and named == proc.stderr.count("framework: error:"), proc.stderr[-2000:]
