"""W&B tracking read back from the offline ``.wandb`` transaction logs: one run per command, one group per run dir,
job types, test metrics at the checkpoint's step, lineage in the config, nothing lost for ``wandb sync``."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import wandb
from wandb.proto import wandb_internal_pb2

from framework.callbacks.metric_history import HISTORY_FILE
from framework.cli import main
from framework.registry import config_dir

QUICK = config_dir("flow_matching") / "quick.yaml"
FAST = [
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.limit_test_batches=1",
    "--trainer.limit_predict_batches=1",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--model.init_args.eval_samples=64",  # small test metrics: the point here is what reaches W&B
    "--model.init_args.sample_steps=4",
    "--model.init_args.w2_steps=[1,2]",
    "--model.init_args.lipschitz_points=8",
]
BLOCK = 32 * 1024  # the .wandb file is a LevelDB-style log: 32 KiB blocks of (crc32c, length, type) + chunk records


@dataclass
class OfflineRun:
    """What one offline ``run-<id>.wandb`` file holds."""

    run_id: str
    group: str
    job_type: str
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def _records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every protobuf Record of a ``.wandb`` file (the header, then chunks joined across block boundaries)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending, pos = pending + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4) and pending:  # FULL or LAST chunk completes a record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def read_offline_run(path: Path) -> OfflineRun:
    """The run record, config updates and history rows of one finished ``.wandb`` file, values decoded from JSON."""
    run: OfflineRun | None = None
    records = _records(path)
    assert records and records[-1].WhichOneof("record_type") == "exit", f"{path} is unfinished"
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = OfflineRun(record.run.run_id, record.run.run_group, record.run.job_type)
        elif kind == "config" and run is not None:
            run.config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history" and run is not None:
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            run.history.append(row)
    assert run is not None, f"{path} holds no run record"
    return run


def offline_runs(run_dir: Path) -> dict[str, OfflineRun]:
    """Every offline run under ``run_dir/wandb``, by job type (each job type occurs once here)."""
    wandb.teardown()  # wandb.finish() returns before wandb-core has written a run's last records; this waits
    runs = [read_offline_run(path) for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))]
    by_job = {run.job_type: run for run in runs}
    assert len(by_job) == len(runs), [run.job_type for run in runs]
    return by_job


@pytest.fixture
def offline_wandb(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """W&B offline for one test. W&B reads its environment once per session, so a session an earlier test started
    (with the suite's WANDB_MODE=disabled) is torn down first."""
    wandb.teardown()
    monkeypatch.setenv("WANDB_MODE", "offline")
    yield
    wandb.teardown()


def _series(run: OfflineRun, key: str) -> list[tuple[int, float]]:
    return [(row["trainer/global_step"], row[key]) for row in run.history if key in row]


def test_every_command_is_its_own_run_in_one_group_and_nothing_is_lost(tmp_path, offline_wandb, capsys):
    run_dir = tmp_path / "wb"
    common = ["--config", str(QUICK), *FAST, f"--run_dir={run_dir}"]
    main(["fit", *common, "--trainer.max_epochs=1"])
    fit_hint = capsys.readouterr().out
    tested = main(["test", *common, "--ckpt_path=last"])
    validated = main(["validate", *common, "--ckpt_path=last"])
    main(["fit", *common, "--trainer.max_epochs=2", "--ckpt_path=last"])
    main(["predict", *common, "--ckpt_path=last"])
    runs = offline_runs(run_dir)
    jobs = ("fit", "test", "validate", "resume", "predict")
    fit, test, validate, resume, predict = (runs[job] for job in jobs)

    # one run per command, distinct ids, one group, the ids the invocation record names
    assert len({run.run_id for run in runs.values()}) == len(jobs)
    assert {run.group for run in runs.values()} == {(run_dir / "wandb_group.txt").read_text()}
    record = [json.loads(line) for line in (run_dir / "invocations.jsonl").read_text().splitlines()]
    assert [(line["command"], line["wandb_run_id"]) for line in record] == [(job, runs[job].run_id) for job in jobs]
    offline_dir = next((run_dir / "wandb").glob(f"offline-run-*-{fit.run_id}"))
    assert f"wandb sync {offline_dir}`" in fit_hint and f"wandb sync {run_dir / 'wandb'}/offline-run-*" in fit_hint

    # steps: monotone within each run; the resume continues where the fit stopped; evaluation at the checkpoint
    for run in runs.values():
        steps = [row["_step"] for row in run.history]
        assert steps == list(range(len(steps))), run.job_type
        global_steps = [row["trainer/global_step"] for row in run.history]
        assert global_steps == sorted(global_steps), run.job_type
    fit_ckpt_step, final_step = record[1]["ckpt_step"], record[4]["ckpt_step"]
    assert fit_ckpt_step == 2 and final_step == 4
    assert {row["trainer/global_step"] for row in test.history + validate.history} == {fit_ckpt_step}
    assert _series(validate, "val/loss") == [
        (fit_ckpt_step, pytest.approx(float(validated.trainer.callback_metrics["val/loss"])))
    ]
    assert min(step for step, _ in _series(resume, "train/loss")) >= fit_ckpt_step
    assert _series(predict, "predict/batches") == [(final_step, 1)]

    # nothing lost: every train step, every validation and every test metric is in the runs
    assert [step for step, _ in _series(fit, "train/loss") + _series(resume, "train/loss")] == [0, 1, 2, 3]
    history = [json.loads(line) for line in (run_dir / HISTORY_FILE).read_text().splitlines()]
    assert [v for _, v in _series(fit, "val/loss") + _series(resume, "val/loss")] == pytest.approx(
        [row["val/loss"] for row in history]
    )
    test_metrics = {k: float(v) for k, v in tested.trainer.callback_metrics.items() if k.startswith("test/")}
    logged = {k: v for row in test.history for k, v in row.items() if k.startswith("test/")}
    assert len(test_metrics) > 5 and logged == pytest.approx(test_metrics)

    # the config: readable sections, no Lightning internals, lineage of every command that loaded a checkpoint
    assert fit.config["model"]["class"].endswith("FlowMatching") and fit.config["model"]["dim"] == 2
    assert fit.config["model"]["optimizer"]["class"] == "torch.optim.AdamW"
    assert fit.config["data"]["class"].endswith("FlowMatchingData")
    assert not [key for key in fit.config if key.startswith("_") and key != "_wandb"]
    assert fit.config["run"]["parent_run_id"] is None and fit.config["run"]["ckpt_path"] is None
    for child, parent in ((test, fit), (validate, fit), (resume, fit), (predict, resume)):
        assert child.config["run"]["parent_run_id"] == parent.run_id, child.job_type
        assert child.config["run"]["ckpt_path"] == str(run_dir / "checkpoints" / "last.ckpt")


def test_an_id_that_yaml_reads_as_a_number_stays_a_string_and_an_experiment_groups_its_runs(
    tmp_path, offline_wandb, monkeypatch
):
    monkeypatch.setenv("WANDB_RUN_GROUP", "optimizers")  # what `framework experiment run` sets for its runs
    monkeypatch.setattr("framework.cli.new_run_id", lambda: "6239e636")  # ~1% of random 8-hex ids look like this
    run_dir = tmp_path / "wb"
    main(["fit", "--config", str(QUICK), *FAST, "--trainer.max_epochs=1", f"--run_dir={run_dir}"])
    (run,) = offline_runs(run_dir).values()
    assert run.run_id == "6239e636" and run.config["run"]["wandb_run_id"] == "6239e636"
    assert run.group == run.config["run"]["group"] == "optimizers" and not (run_dir / "wandb_group.txt").exists()
    assert run.config["trainer"]["logger"]["id"] == "6239e636"
    assert json.loads((run_dir / "invocations.jsonl").read_text())["wandb_run_id"] == "6239e636"
