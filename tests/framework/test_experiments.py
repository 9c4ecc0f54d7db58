"""Experiments: the file format, the runner (skip, resume after SIGKILL, failures), tuning, statistics and reports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from scipy import stats

from framework.callbacks import read_history
from framework.cli import FrameworkCLI
from framework.experiments.executors import LocalExecutor
from framework.experiments.report import embed, latest_runs, missing_runs, summarize_experiment, write_report
from framework.experiments.runner import read_results, run_experiment
from framework.experiments.spec import ExperimentError, load_experiment, run_args
from framework.experiments.stats import paired_difference, summarize
from framework.experiments.tune import OptunaPruning, run_study

BASE = {
    "trainer": {"max_epochs": 2, "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger"}},
    "model": {
        "class_path": "framework.testing.toy.ToyRegression",
        "init_args": {"hidden": 8, "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.05}}},
    },
    "data": {"class_path": "framework.testing.toy.ToyRegressionData", "init_args": {"n": 64}},
}


def write_experiment(tmp_path: Path, **fields: object) -> Path:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    spec = {
        "base": "base.yaml",
        "seed": {"values": [0, 1], "sets": ["seed_everything", "data.init_args.seed"]},
        "variants": {"sgd": [], "wide": [{"model.init_args.hidden": 16}]},
        "reference": "sgd",
        "metrics": {"test/loss": "min"},
        "smoke": {"seeds": [0], "set": {"trainer.max_epochs": 1}},
        **fields,
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


# -- the file format --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"reference": "adam"}, "reference='adam'"),
        ({"metrics": {"test/loss": "lowest"}}, "metrics.test/loss='lowest'"),
        ({"tune": {"metric": "test/loss", "trials": 2, "space": {"a": {"low": 0, "high": 1}}}}, "validation data only"),
        (
            {"variants": {"a": {"space": {"x": {"low": 0, "high": 1}}}, "b": []}, "reference": "a"},
            "add a tune: section",
        ),
        ({"variants": {"a": ["missing.yaml"]}, "reference": None}, "no such config file"),
        ({"colour": "red"}, "known keys are"),
    ],
)
def test_malformed_experiment_files_name_the_field(tmp_path: Path, fields: dict, expected: str) -> None:
    with pytest.raises(ExperimentError, match=expected.replace("(", r"\(").replace("[", r"\[")):
        load_experiment(write_experiment(tmp_path, **fields))


def test_every_variant_must_search_the_same_number_of_hyperparameters(tmp_path: Path) -> None:
    path = write_experiment(
        tmp_path,
        variants={"a": {"space": {"x": {"low": 0, "high": 1}, "y": {"low": 0, "high": 1}}}, "b": []},
        reference="a",
        tune={"metric": "val/loss", "trials": 2, "space": {"z": {"low": 0, "high": 1}}},
    )
    with pytest.raises(ExperimentError, match="same number of hyperparameters"):
        load_experiment(path)


def test_smoke_size_replaces_seeds_and_adds_overrides(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, variants={"long": [{"trainer.max_epochs": 50}]}, reference="long")
    exp = load_experiment(path, smoke=True)
    assert exp.seeds == (0,) and exp.smoke_overrides == {"trainer.max_epochs": 1}
    args = run_args(exp, exp.variants[0], 0)
    assert "--trainer.max_epochs=1" in args and "--trainer.max_epochs=50" not in args  # smoke wins over a variant
    assert load_experiment(write_experiment(tmp_path)).seeds == (0, 1)


# -- statistics --------------------------------------------------------------------------------------------------
def test_paired_difference_matches_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(1.0, 0.3, size=7)
    var = ref - 0.1 + rng.normal(0, 0.05, size=7)
    d = paired_difference(dict(enumerate(var)), dict(enumerate(ref)), "min")
    ci = stats.ttest_rel(var, ref).confidence_interval(0.95)
    assert d.n == 7 and d.mean == pytest.approx(np.mean(var - ref))
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert d.wins == int(np.sum(var < ref))
    assert paired_difference(dict(enumerate(var)), dict(enumerate(ref)), "max").wins == int(np.sum(var > ref))


def test_paired_difference_uses_only_seeds_both_ran() -> None:
    d = paired_difference({0: 1.0, 1: 2.0, 2: 5.0}, {1: 1.0, 2: 1.0, 3: 9.0})
    assert d.n == 2 and d.mean == pytest.approx(2.5) and d.sd == pytest.approx(np.std([1.0, 4.0], ddof=1))
    assert summarize([3.0]).n == 1 and np.isnan(summarize([3.0]).sd)


def test_report_numbers_figures_and_page(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    exp = {
        "name": "e", "plugin": "p", "file": "e.yaml", "title": "T", "description": "", "variants": ["a", "b"],
        "reference": "a", "metrics": {"test/m": "max"}, "curves": [], "paper": {"b": {"test/m": 0.5}},
        "seeds": [0, 1, 2, 3], "seed_keys": ["seed_everything"], "seed_controls": "", "tune": None, "spaces": {},
        "analysis": None, "smoke": False,
    }  # fmt: skip
    (tmp_path / "experiment.json").write_text(json.dumps(exp))
    values = {(v, s): float(rng.normal()) for v in "ab" for s in range(4)}
    lines = [{"variant": v, "seed": s, "status": "ok", "metrics": {"test/m": x}} for (v, s), x in values.items()]
    lines.append({"variant": "b", "seed": 3, "status": "failed", "error": "boom", "metrics": {}})  # latest wins
    lines.append({"variant": "c", "seed": 0, "status": "ok", "metrics": {"test/m": 9.0}})  # not a variant any more
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    page = tmp_path / "page" / "p.md"
    page.parent.mkdir()
    page.write_text("intro\n<!-- experiment:e -->\nold\n<!-- /experiment:e -->\noutro\n")
    write_report(tmp_path, page)
    summary = json.loads((tmp_path / "summary.json").read_text())["metrics"]["test/m"]["variants"]
    a, b = [values[("a", s)] for s in range(4)], [values[("b", s)] for s in range(3)]
    assert summary["a"]["mean"] == pytest.approx(np.mean(a)) and summary["b"]["n"] == 3
    paired = summary["b"]["paired_vs_reference"]
    ci = stats.ttest_rel(b, a[:3]).confidence_interval(0.95)
    assert paired["ci95"] == pytest.approx([ci.low, ci.high]) and paired["wins"] == sum(x > y for x, y in zip(b, a))
    text = page.read_text()
    assert text.startswith("intro\n<!-- experiment:e -->\n## T") and text.endswith("<!-- /experiment:e -->\noutro\n")
    assert "old" not in text and "](../test_m.png)" in text and "| b | 3 |" in text and "| 0.5 |" in text
    assert "boom" in (tmp_path / "report.md").read_text() and (tmp_path / "test_m.png").stat().st_size > 0
    with pytest.raises(ExperimentError, match="add the markers"):
        embed(tmp_path / "report.md", "other", "x")


def test_latest_record_per_run_wins() -> None:
    exp = {"variants": ["a"], "seeds": [0], "reference": None, "metrics": {"m": "min"}}
    runs = latest_runs([{"variant": "a", "seed": 0, "status": "ok", "metrics": {"m": 1.0}},
                        {"variant": "a", "seed": 0, "status": "ok", "metrics": {"m": 2.0}}], exp)  # fmt: skip
    assert summarize_experiment(exp, runs)["m"]["variants"]["a"]["mean"] == 2.0


def test_records_of_an_older_version_of_the_file_are_not_reported() -> None:
    exp = {"variants": ["a"], "seeds": [0, 1], "reference": None, "metrics": {"m": "min"}, "planned": {"a/0": "new"}}
    records = [{"variant": "a", "seed": 0, "digest": "new", "status": "ok", "metrics": {"m": 1.0}},
               {"variant": "a", "seed": 0, "digest": "old", "status": "ok", "metrics": {"m": 5.0}},
               {"variant": "a", "seed": 1, "digest": "old", "status": "ok", "metrics": {"m": 5.0}}]  # fmt: skip
    runs = latest_runs(records, exp)
    assert list(runs) == [("a", 0)] and runs[("a", 0)]["metrics"]["m"] == 1.0
    assert missing_runs(exp, runs) == ["a/1"]


# -- the runner ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_runner_records_failures_skips_finished_and_tags_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    path = write_experiment(tmp_path, variants={"sgd": [], "broken": [{"model.init_args.hidden": -1}]})
    out, failed = run_experiment(path, tmp_path / "out", jobs=2)
    records = read_results(out)
    assert failed == 2 and len(records) == 4
    broken = [r for r in records if r["variant"] == "broken"]
    assert all(r["status"] == "failed" and r["error"].startswith("ConfigValueError: model") for r in broken)
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == 2 and all(np.isfinite(r["metrics"]["test/loss"]) for r in ok)
    assert all(set(r) >= {"digest", "git_commit", "versions", "wall_s", "run_dir"} for r in ok)
    hparams = yaml.safe_load((Path(ok[0]["run_dir"]) / "hparams.yaml").read_text())
    assert hparams["experiment"] == {"experiment": "exp", "variant": "sgd", "seed": ok[0]["seed"]}

    _, failed = run_experiment(path, tmp_path / "out", jobs=2)  # the ok runs are skipped, the failed retried
    again = read_results(out)
    assert failed == 2 and len(again) == 6 and again[:4] == records
    assert {r["variant"] for r in again[4:]} == {"broken"}


@pytest.mark.slow
def test_sigkill_mid_experiment_then_rerun_redoes_nothing_finished(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, seed={"values": [0, 1, 2], "sets": ["seed_everything"]})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "framework", "experiment", "run", str(path), "--out", str(out), "--no-report"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while len(read_results(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker, mid-run
    proc.wait()
    before = read_results(out)
    assert 2 <= len(before) < 6, proc.stderr.read().decode()[-2000:]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    after = read_results(out)
    assert after[: len(before)] == before  # finished runs are neither redone nor rewritten
    keys = [(r["variant"], r["seed"]) for r in after]
    assert len(keys) == len(set(keys)) == 6 and all(r["status"] == "ok" for r in after)


def test_a_worker_that_dies_without_a_result_is_a_failure_naming_its_last_log_line(tmp_path: Path) -> None:
    """The forked worker's own stderr (file descriptor 2) lands in log.txt and explains the failure."""
    task = {"kind": "nonsense", "result": str(tmp_path / "result.json"), "log": str(tmp_path / "log.txt"),
            "record": {"variant": "v", "seed": 3}}  # fmt: skip
    results = []
    LocalExecutor(jobs=1).run([task], lambda t, r: results.append(r))
    (result,) = results
    assert result["status"] == "failed" and result["variant"] == "v" and result["seed"] == 3
    assert "exited with status 1" in result["error"] and "kind 'nonsense' is unknown" in result["error"]


def test_the_fork_server_preload_imports_every_registered_plugin_and_wandb() -> None:
    """What a forked run finds already imported (it inherits the server's modules): checked in a fresh interpreter,
    which has imported nothing before the preload module."""
    code = (
        "import sys; from importlib.metadata import entry_points; import framework.experiments.preload; "
        "from framework.registry import ENTRY_POINT_GROUP; "
        "names = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)] + ['wandb']; "
        "print([n for n in names if n not in sys.modules], len(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]" and int(out[1]) >= 9, out  # none missing, of the 8 plugins + wandb


@pytest.mark.slow
def test_submitit_local_executor_runs_the_cluster_code_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    path = write_experiment(tmp_path, variants={"sgd": [], "broken": [{"model.init_args.hidden": -1}]})
    out, failed = run_experiment(path, tmp_path / "out", smoke=True, executor="submitit-local")
    records = {r["variant"]: r for r in read_results(out)}
    assert failed == 1 and records["sgd"]["status"] == "ok" and "model" in records["broken"]["error"]
    assert (out / "submitit").is_dir()


# -- tuning -------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tuning_resumes_from_sqlite_and_best_yaml_is_a_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    args = ["--config", str(tmp_path / "base.yaml"), "--trainer.max_epochs=1"]
    space = {"model.init_args.optimizer.init_args.lr": {"low": "1e-3", "high": 0.3, "log": True}}
    first = run_study(args, space, "val/loss", 2, tmp_path / "tune", study_name="s")
    second = run_study(args, space, "val/loss", 3, tmp_path / "tune", study_name="s")
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'tune' / 'study.db'}")
    assert first["trials"] == 2 and second["trials"] == 3 and len(study.trials) == 3  # two kept, one added
    lrs = [t.params["model.init_args.optimizer.init_args.lr"] for t in study.trials]
    assert all(1e-3 <= lr <= 0.3 for lr in lrs) and len(set(lrs)) == 3  # a resumed sampler does not repeat itself
    assert second["value"] == min(t.value for t in study.trials)
    cli = FrameworkCLI(args=[*args, "--config", second["best"], f"--run_dir={tmp_path / 'r'}"], run=False)
    assert cli.config.model.init_args.optimizer.init_args.lr == pytest.approx(second["params"][next(iter(space))])
    with pytest.raises(ExperimentError, match="validation data only"):
        run_study(args, space, "test/loss", 1, tmp_path / "t2")


@pytest.mark.slow
def test_pruning_callback_stops_a_trial_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # every positive loss is pruned
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        FrameworkCLI(
            args=["fit", "--config", str(tmp_path / "base.yaml"), f"--run_dir={tmp_path / 'r'}"],
            extra_callbacks=[OptunaPruning(trial, "val/loss")],
        )
    assert trial.storage.get_trial(trial._trial_id).intermediate_values  # reported before pruning
    with pytest.raises(KeyError, match="val/missing"):
        FrameworkCLI(
            args=["fit", "--config", str(tmp_path / "base.yaml"), f"--run_dir={tmp_path / 'r2'}"],
            extra_callbacks=[OptunaPruning(study.ask(), "val/missing")],
        )


# -- early stopping ------------------------------------------------------------------------------------------------
DIVERGING = {"model.init_args.optimizer.init_args.lr": 1.0, "trainer.max_epochs": 6}  # val/loss rises after epoch 0


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ({"metric": "test/loss", "patience": 2}, "early_stopping.metric='test/loss'"),
        ({"metric": "val/loss", "patience": 0}, "early_stopping.patience=0"),
        ({"metric": "val/loss", "patience": 2, "mode": "lowest"}, "early_stopping.mode='lowest'"),
        ({"metric": "val/loss"}, "early_stopping="),
    ],
)
def test_malformed_early_stopping_names_the_field(tmp_path: Path, stop: dict, expected: str) -> None:
    with pytest.raises(ExperimentError, match=expected.replace("(", r"\(")):
        load_experiment(write_experiment(tmp_path, early_stopping=stop))


@pytest.mark.slow
def test_early_stopping_tests_the_best_checkpoint_and_tunes_on_the_best_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SGD at lr 1 the toy regression diverges after its first validation (step 2, two batches an epoch): the run
    must stop after ``patience`` worse validations, test the step-2 weights, and a tuning trial must score the best
    validation value, not the last."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    stop = {"metric": "val/loss", "mode": "min", "patience": 2}
    seed = {"values": [0], "sets": ["seed_everything", "data.init_args.seed"]}
    path = write_experiment(
        tmp_path, set=DIVERGING, seed=seed, variants={"sgd": []}, reference=None, early_stopping=stop
    )
    out, failed = run_experiment(path, tmp_path / "out")
    (record,) = read_results(out)
    history = read_history(Path(record["run_dir"]), "val/loss")
    assert failed == 0 and [step for step, _ in history] == [2, 4, 6]  # stopped after two worse validations
    assert history[0][1] < history[1][1] < history[2][1]
    assert record["selected"]["step"] == 2 and record["selected"]["stopped_step"] == 6
    assert record["selected"]["value"] == pytest.approx(history[0][1])
    # the tested weights are the step-2 ones: their test loss is far below the last weights' (an independent test)
    last = FrameworkCLI(args=["test", *run_args(load_experiment(path), load_experiment(path).variants[0], 0),
                              f"--run_dir={record['run_dir']}", "--ckpt_path=last"])  # fmt: skip
    assert record["metrics"]["test/loss"] < 1e-2 * float(last.trainer.callback_metrics["test/loss"])
    report = write_report(out, figures=False).read_text()
    assert "stops early on `val/loss`" in report and "Selected steps 2-2-2" in report

    base = ["--config", str(tmp_path / "base.yaml"), *(f"--{k}={v}" for k, v in DIVERGING.items())]
    base += ["--seed_everything=0", "--data.init_args.seed=0"]
    args = [*base, *load_experiment(path).early_stopping.args()]
    space = {"trainer.max_epochs": {"choices": [6]}}
    best = run_study(args, space, "val/loss", 1, tmp_path / "best", study_name="b", objective="best")
    last = run_study(base, space, "val/loss", 1, tmp_path / "last", study_name="l")
    assert best["value"] == pytest.approx(history[0][1], rel=1e-6)
    assert last["value"] > 1e3 * best["value"]  # the last validation of a run trained to the end


# -- where a file lives and what it needs -------------------------------------------------------------------------
def test_a_real_data_experiment_belongs_to_its_plugin_and_is_not_built_in(tmp_path: Path) -> None:
    from framework.registry import PluginInfo

    folder = tmp_path / "configs" / "graphs" / "real_data" / "experiments"
    folder.mkdir(parents=True)
    path = write_experiment(tmp_path)
    moved = folder / "cora.yaml"
    moved.write_text(path.read_text().replace("base.yaml", str(tmp_path / "base.yaml")))
    exp = load_experiment(moved)
    assert exp.plugin == "graphs" and exp.file == "configs/graphs/real_data/experiments/cora.yaml"
    builtin = tmp_path / "configs" / "graphs" / "experiments" / "sbm.yaml"
    info = PluginInfo(
        name="graphs", module="m", experiments=(moved, builtin), config_dir=tmp_path / "configs" / "graphs"
    )
    assert info.builtin_data_experiments() == (builtin,)


def test_an_experiment_that_requires_a_missing_module_is_refused_naming_it(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, requires=["yaml", "no_such_module_xyz"])
    assert load_experiment(path).missing_modules() == ["no_such_module_xyz"]
    with pytest.raises(ExperimentError, match=r"requires=\['yaml', 'no_such_module_xyz'\]: no_such_module_xyz"):
        run_experiment(path, tmp_path / "out", smoke=True)
    assert not (tmp_path / "out").exists()  # refused before anything is written
    with pytest.raises(ExperimentError, match="requires="):
        load_experiment(write_experiment(tmp_path, requires=["not a module"]))


@pytest.mark.slow
def test_a_grid_search_runs_every_point_once_and_keeps_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    args = ["--config", str(tmp_path / "base.yaml"), "--trainer.max_epochs=1"]
    lrs = [0.001, 0.01, 0.1]
    space = {"model.init_args.optimizer.init_args.lr": {"choices": lrs}}
    result = run_study(args, space, "val/loss", 3, tmp_path / "grid", study_name="g", sampler="grid")
    study = optuna.load_study(study_name="g", storage=f"sqlite:///{tmp_path / 'grid' / 'study.db'}")
    tried = sorted(t.params["model.init_args.optimizer.init_args.lr"] for t in study.trials)
    assert tried == lrs and result["value"] == min(t.value for t in study.trials)
    with pytest.raises(ExperimentError, match="this grid has 3 points"):
        run_study(args, space, "val/loss", 4, tmp_path / "g2", study_name="g2", sampler="grid")


@pytest.mark.parametrize(
    ("tune", "expected"),
    [
        ({"trials": 2, "space": {"a": {"choices": [1, 2, 3]}}}, "tune.trials=2: a grid search runs each of its 3"),
        ({"trials": 2, "space": {"a": {"choices": [1, 2]}}, "sampler": "grid"}, None),
        ({"trials": 2, "space": {"a": {"low": 0, "high": 1}}}, "needs {choices"),
        ({"trials": 2, "space": {"a": {"choices": [1, 2]}}, "sampler": "random"}, "tune.sampler='random'"),
    ],
)
def test_a_malformed_grid_search_names_the_field(tmp_path: Path, tune: dict, expected: str | None) -> None:
    """The last case is well formed: a variant with a one-point grid (a fixed control) runs it once."""
    control = {"configs": [], "space": {"a": {"choices": [0]}}}
    fields = {"tune": {"metric": "val/loss", "sampler": "grid", **tune}, "variants": {"sgd": [], "control": control}}
    if expected is None:
        exp = load_experiment(write_experiment(tmp_path, **fields))
        assert {v.name: exp.trials_for(v) for v in exp.variants} == {"sgd": 2, "control": 1}
        return
    with pytest.raises(ExperimentError, match=re.escape(expected)):
        load_experiment(write_experiment(tmp_path, **fields))
