"""What a run loads or overwrites is what the user asked for: one fit per run dir, resumes that keep their settings,
checkpoints of the right model, an explicit choice of weights for evaluation, and damaged files refused."""

from __future__ import annotations

import errno
from pathlib import Path

import lightning.pytorch as pl
import pytest

from framework.callbacks import AtomicModelCheckpoint
from framework.checkpoint import CheckpointError, load_checkpoint_safely
from framework.cli import main
from framework.registry import config_dir
from framework.testing.toy import ToyRegression, ToyRegressionData

TOY = ["--model=framework.testing.toy.ToyRegression", "--data=framework.testing.toy.ToyRegressionData"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.logger=CSVLogger"]
SGD = ["--model.init_args.optimizer=SGD", "--model.init_args.optimizer.init_args.lr=0.05"]


def _fit(run_dir, *extra: str):
    return main(["fit", *TOY, *QUIET, *SGD, "--trainer.max_epochs=1", f"--run_dir={run_dir}", *extra])


def _error(capsys, args: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    return err


def test_a_second_fit_into_a_run_dir_is_refused_and_last_stays_the_newest(tmp_path, capsys):
    run_dir = tmp_path / "run"
    steps_per_epoch = _fit(run_dir).trainer.global_step
    err = _error(capsys, ["fit", *TOY, *QUIET, *SGD, f"--run_dir={run_dir}"])
    assert "already holds a fit" in err and "--ckpt_path last" in err
    # a resume that changes a checkpoint setting still writes last.ckpt (no last-v1.ckpt beside a stale one)
    _fit(run_dir, "--trainer.max_epochs=2", "--checkpoint.every_n_train_steps=4", "--ckpt_path=last")
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("last*")) == ["last.ckpt"]
    assert load_checkpoint_safely(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 2 * steps_per_epoch


def test_last_is_the_newest_also_when_the_monitored_metric_got_worse(tmp_path):
    """SGD at lr 1 diverges after the first epoch, so val/loss never improves again: last.ckpt must still hold the
    final step (Lightning alone leaves it at the best one), and the best checkpoint stays the first epoch's."""
    run_dir = tmp_path / "run"
    args = ["--model.init_args.optimizer.init_args.lr=1.0", "--data.init_args.n=64", "--trainer.max_epochs=3"]
    args += ["--checkpoint.monitor=val/loss"]
    trainer = _fit(run_dir, *args).trainer
    assert trainer.global_step == 3 * (trainer.global_step // 3) > 0
    assert load_checkpoint_safely(run_dir / "checkpoints" / "last.ckpt")["global_step"] == trainer.global_step
    best = load_checkpoint_safely(trainer.checkpoint_callback.best_model_path)
    assert best["global_step"] == trainer.global_step // 3


def test_resuming_with_a_changed_hyperparameter_is_refused_naming_it(tmp_path, capsys):
    run_dir = tmp_path / "run"
    steps_per_epoch = _fit(run_dir).trainer.global_step
    args = ["fit", *TOY, *QUIET, *SGD, f"--run_dir={run_dir}", "--ckpt_path=last", "--trainer.max_epochs=2"]
    err = _error(capsys, [*args, "--model.init_args.optimizer.init_args.lr=0.01"])
    assert "model.init_args.optimizer.init_args.lr: checkpoint 0.05, config 0.01" in err
    err = _error(capsys, [*args, "--data.init_args.batch_size=8"])
    assert "data.init_args.batch_size: checkpoint 32, config 8" in err
    assert main(args).trainer.global_step == 2 * steps_per_epoch  # unchanged settings (and a longer run) resume


def test_evaluating_needs_an_explicit_choice_of_weights(tmp_path, capsys):
    run_dir = tmp_path / "run"
    _fit(run_dir)
    for command in ("test", "validate", "predict"):
        err = _error(capsys, [command, *TOY, *QUIET, f"--run_dir={run_dir}"])
        assert "ckpt_path is not set" in err and "--ckpt_path untrained" in err
    cli = main(["test", *TOY, *QUIET, f"--run_dir={tmp_path / 'fresh'}", "--ckpt_path=untrained"])
    assert cli.trainer.ckpt_path is None and "test/loss" in cli.trainer.callback_metrics


def test_checkpoint_values_that_replace_the_config_are_named(tmp_path, capsys):
    run_dir = tmp_path / "run"
    _fit(run_dir)
    capsys.readouterr()
    cli = main(["test", *TOY, *QUIET, f"--run_dir={run_dir}", "--ckpt_path=last", "--model.init_args.hidden=64"])
    assert cli.model.hparams.hidden == 16  # the weights decide the architecture
    assert "model.init_args.hidden: checkpoint 16, config 64" in capsys.readouterr().err


def test_a_checkpoint_of_another_model_class_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "run"
    _fit(run_dir)
    quick = config_dir("flow_matching") / "quick.yaml"
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    err = _error(capsys, ["test", "--config", str(quick), *QUIET, f"--run_dir={tmp_path / 't'}", f"--ckpt_path={ckpt}"])
    assert "holds a framework.testing.toy.ToyRegression checkpoint" in err and "FlowMatching" in err


def test_a_flipped_bit_inside_a_tensor_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    _fit(run_dir)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    data = bytearray(ckpt.read_bytes())
    weights = load_checkpoint_safely(ckpt)["state_dict"]["net.0.weight"].numpy().tobytes()
    offset = bytes(data).index(weights[:32])  # torch stores tensor data uncompressed
    data[offset + 5] ^= 0x10
    bad = tmp_path / "flipped.ckpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its CRC-32 check"):
        load_checkpoint_safely(bad)


def test_a_full_disk_while_checkpointing_is_one_error_and_leaves_no_partial_file(tmp_path, monkeypatch):
    ckpt_dir = tmp_path / "ckpt"
    callback = AtomicModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_train_steps=2)
    trainer = pl.Trainer(max_steps=6, logger=False, enable_progress_bar=False, callbacks=[callback])
    real_save = trainer.save_checkpoint

    def save_until_the_disk_fills(path, weights_only=False):
        if trainer.global_step < 4:
            return real_save(path, weights_only)
        Path(path).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer, "save_checkpoint", save_until_the_disk_fills)
    with pytest.raises(CheckpointError, match="could not write checkpoint .*No space left on device"):
        trainer.fit(ToyRegression(), ToyRegressionData(n=64))
    assert not list(ckpt_dir.glob("*.tmp"))
    assert load_checkpoint_safely(ckpt_dir / "last.ckpt")["global_step"] == 2  # the last complete one, intact


def test_a_resume_removes_partial_files_of_a_killed_write(tmp_path):
    run_dir = tmp_path / "run"
    _fit(run_dir)
    stale = run_dir / "checkpoints" / "last.ckpt.tmp"
    stale.write_bytes(b"half")
    _fit(run_dir, "--trainer.max_epochs=2", "--ckpt_path=last")
    assert not stale.exists() and (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(("text", "needle"), [("", "holds nothing (the file is empty)"), ("- 1\n", "holds a list"),
                                              ("trainer: [\n", "not valid YAML at line 2")])  # fmt: skip
def test_a_config_file_that_is_not_a_mapping_is_one_line(tmp_path, capsys, text, needle):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    err = _error(capsys, ["fit", "--config", str(path)])
    assert err.strip().splitlines()[-1] == next(ln for ln in err.splitlines() if needle in ln)
