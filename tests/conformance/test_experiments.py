"""Every experiment file of every plugin runs end to end in its smoke size, through the real runner and report."""

from __future__ import annotations

import json

import pytest

from framework.experiments.report import write_report
from framework.experiments.runner import read_results, run_experiment
from framework.experiments.spec import load_experiment
from framework.registry import all_experiments, load_plugins

EXPERIMENTS = all_experiments()
BUILTIN_DATA = [path for info in load_plugins() for path in info.builtin_data_experiments()]


def _id(path) -> str:
    return f"{load_experiment(path).plugin}/{path.stem}"


def test_every_plugin_ships_experiment_files():
    """The paper experiments of every built-in plugin are experiment files (there are no reproduce scripts)."""
    builtin = [info for info in load_plugins() if info.module.startswith("framework_plugins.")]
    plugins = {info.name for info in builtin if info.config_dir is not None and info.missing is None}
    covered = {load_experiment(path).plugin for path in EXPERIMENTS}
    assert plugins <= covered, f"plugins without configs/<name>/experiments/*.yaml: {sorted(plugins - covered)}"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=_id)
def test_experiment_file_parses(path):
    full, smoke = load_experiment(path), load_experiment(path, smoke=True)
    assert len(full.seeds) >= len(smoke.seeds) >= 1 and full.metrics


@pytest.mark.slow
@pytest.mark.parametrize("path", BUILTIN_DATA, ids=_id)
def test_experiment_runs_in_smoke_size(path, tmp_path, monkeypatch):
    """Experiment files below a ``real_data/`` folder need the user's files and are only parsed; one that
    ``requires`` a module this environment lacks (mujoco) is skipped, naming it."""
    missing = load_experiment(path).missing_modules()
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    out, failed = run_experiment(path, tmp_path / "out", smoke=True, jobs=2)
    records = read_results(out)
    assert failed == 0, [r.get("error") for r in records if r["status"] != "ok"]
    exp = load_experiment(path, smoke=True)
    assert len(records) == len(exp.variants) * len(exp.seeds)
    write_report(out)
    summary = json.loads((out / "summary.json").read_text())["metrics"]
    for metric in exp.metrics:
        assert all(v["n"] == len(exp.seeds) for v in summary[metric]["variants"].values()), metric
