"""Datamodules of one config in one process simulate once and share the diagrams of equal keys: the fit, test and
predict of a run compute each simulation and each diagram once, and any change of what they depend on (data
config, filtration parameters) computes them again."""

from __future__ import annotations

import hashlib

import pytest
import torch

from framework.registry import config_dir
from framework.testing.conformance import run as run_cli
from framework_plugins.topofisher import datamodule
from framework_plugins.topofisher.simulators import GRF
from framework_plugins.topofisher.summaries import TopologicalSummary

# a frozen smoothing (diagrams cached) at a small size; the conformance suite's TINY trainer limits come with run_cli
FROZEN = (
    "--model.init_args.cache_diagrams=true",
    "--model.init_args.summary.init_args.filtration.init_args.learnable=false",
    "--data.init_args.n_train=64",
    "--data.init_args.n_val=32",
    "--data.init_args.n_test=32",
    "--model.init_args.moped_sims=64",
    "--model.init_args.standardize_sims=32",
    "--trainer.max_epochs=1",
)


@pytest.fixture
def counted(monkeypatch):
    """Counts GRF simulation calls and records a digest of every simulation whose diagrams are computed."""
    calls = {"simulate": 0, "diagrams": []}
    seed_matched, diagram_tensors = GRF.seed_matched, TopologicalSummary.diagram_tensors

    def counting_seed_matched(self, seeds):
        calls["simulate"] += 1
        return seed_matched(self, seeds)

    def recording_diagram_tensors(self, items):
        calls["diagrams"] += [hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in items]
        return diagram_tensors(self, items)

    monkeypatch.setattr(GRF, "seed_matched", counting_seed_matched)
    monkeypatch.setattr(TopologicalSummary, "diagram_tensors", recording_diagram_tensors)
    monkeypatch.setattr(datamodule, "_LAST_SIMULATED", {})
    return calls


def run(subcommand: str, run_dir, *overrides: str):
    return run_cli(subcommand, config_dir("topofisher") / "quick.yaml", *FROZEN, f"--run_dir={run_dir}", *overrides)


def test_fit_test_and_predict_of_one_config_simulate_and_compute_each_diagram_once(counted, tmp_path):
    fit = run("fit", tmp_path / "run")
    after_fit = len(counted["diagrams"])
    assert counted["simulate"] == 3 and after_fit > 0  # train, val, test splits
    test = run("test", tmp_path / "run", "--ckpt_path=last")
    run("predict", tmp_path / "predict", f"--ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}")
    assert counted["simulate"] == 3, "the test or predict run simulated again"
    assert len(counted["diagrams"]) > after_fit, "the test split's diagrams were never computed"
    assert len(set(counted["diagrams"])) == len(counted["diagrams"]), "a diagram was computed twice"
    assert test.datamodule.splits["train"][0] is fit.datamodule.splits["train"][0]
    # a fresh process state computes the same test metrics: sharing changes no number
    shared = {k: float(v) for k, v in test.trainer.callback_metrics.items() if k.startswith("test/")}
    datamodule._LAST_SIMULATED.clear()
    alone = run("test", tmp_path / "run", "--ckpt_path=last")
    assert counted["simulate"] == 6
    assert shared == {k: float(v) for k, v in alone.trainer.callback_metrics.items() if k.startswith("test/")}


@pytest.mark.parametrize(
    "change",
    ["--data.init_args.seed=1", "--data.init_args.n_test=48", "--data.init_args.simulator.init_args.dtheta=[0.2,0.1]"],
)
def test_another_data_config_simulates_again(counted, tmp_path, change):
    run("fit", tmp_path / "a")
    run("fit", tmp_path / "b", change)
    assert counted["simulate"] == 6


def test_the_diagram_key_follows_the_summary_config_and_the_filtration_state(counted, tmp_path):
    first = run("fit", tmp_path / "a")
    key = first.model.diagram_key()
    assert key is not None and run("fit", tmp_path / "b").model.diagram_key() == key
    scale = run("fit", tmp_path / "c", "--model.init_args.summary.init_args.filtration.init_args.scale=0.7")
    assert scale.model.diagram_key() != key
    with torch.no_grad():
        next(iter(first.model.summary.filtration.state_dict().values())).add_(1.0)
    assert first.model.diagram_key() != key
    # the other-scale run reused the simulations but computed its own diagrams
    assert counted["simulate"] == 3
    assert len(set(counted["diagrams"])) < len(counted["diagrams"])  # same simulations, new diagrams
