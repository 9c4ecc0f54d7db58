"""Core helpers every plugin uses: LR-scheduler stepping under manual optimization (checked against Lightning's own
stepping under automatic optimization), row gathering, and figures closed on every rank, written on rank zero."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from framework.figures import figure, log_figure, pyplot
from framework.testing.toy import ToyRegression, ToyRegressionData


class ManualToy(ToyRegression):
    """ToyRegression with the same update done by hand (automatic_optimization = False)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.automatic_optimization = False

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = (self.net(x) - y).pow(2).mean()
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self.step_lr_schedulers()
        return loss.detach()


class LRTrace(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def _lr_trace(module_cls: type, scheduler, epochs: int = 4) -> list[float]:
    torch.manual_seed(0)
    model = module_cls(optimizer=partial(torch.optim.SGD, lr=0.1), lr_scheduler=scheduler)
    trace = LRTrace()
    trainer = pl.Trainer(
        max_epochs=epochs,
        limit_train_batches=3,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[trace],
        num_sanity_val_steps=0,
    )
    trainer.fit(model, ToyRegressionData(n=64, batch_size=16))
    return trace.lrs


@pytest.mark.parametrize(
    "scheduler",
    [
        partial(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5),  # interval "step"
        partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0, factor=0.5, threshold=10.0),  # "epoch"
    ],
    ids=["step_lr", "reduce_on_plateau"],
)
def test_manual_optimization_steps_schedulers_like_lightning_does_automatically(scheduler):
    manual, automatic = _lr_trace(ManualToy, scheduler), _lr_trace(ToyRegression, scheduler)
    assert manual == automatic
    assert len(set(manual)) > 2  # the schedule really moved the learning rate


def test_a_plateau_monitor_that_is_never_logged_is_named_in_the_error():
    def scheduler(optimizer):
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        plateau.monitor = "val/no_such_metric"
        return plateau

    with pytest.raises(MisconfigurationException, match=r"'val/no_such_metric'.*val/loss"):
        _lr_trace(ManualToy, scheduler, epochs=1)


def test_gather_rows_concatenates_batches_on_one_process():
    model = ToyRegression()
    batches = [torch.arange(6.0).reshape(3, 2), torch.arange(6.0, 10.0).reshape(2, 2)]
    assert torch.equal(model.gather_rows(batches), torch.arange(10.0).reshape(5, 2))
    assert model.gather_rows(batches[0]) is batches[0]


def _fake_trainer(tmp_path, rank_zero: bool) -> SimpleNamespace:
    return SimpleNamespace(is_global_zero=rank_zero, default_root_dir=str(tmp_path), loggers=[], global_step=0)


def test_figures_are_written_on_rank_zero_only_and_closed_on_every_rank(tmp_path):
    plt = pyplot()
    plt.close("all")
    with figure(_fake_trainer(tmp_path / "zero", True), "a_b", figsize=(2, 2)) as (_, ax):
        ax.plot([0, 1], [0, 1])
    assert (tmp_path / "zero" / "figures" / "run-1" / "a_b.png").is_file()  # no stage running: job "run"
    with figure(_fake_trainer(tmp_path / "one", False), "a_b") as (_, ax):
        ax.plot([0, 1], [0, 1])
    assert not (tmp_path / "one").exists()
    assert log_figure(_fake_trainer(tmp_path / "one", False), "c", plt.figure()) is None
    with pytest.raises(RuntimeError), figure(_fake_trainer(tmp_path / "err", True), "d") as _:
        raise RuntimeError("drawing failed")
    assert not (tmp_path / "err").exists()
    assert plt.get_fignums() == []


def test_cosine_to_end_is_cosine_annealing_over_the_runs_own_length():
    from framework.optim import CosineAnnealingToEnd

    epochs, batches = 4, 3  # _lr_trace: 4 epochs x 3 batches = 12 optimizer steps
    ours = _lr_trace(ToyRegression, partial(CosineAnnealingToEnd, eta_min=0.01), epochs=epochs)
    torch_cosine = partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs * batches, eta_min=0.01)
    assert ours == pytest.approx(_lr_trace(ToyRegression, torch_cosine, epochs=epochs), rel=1e-12, abs=0)
    assert ours[0] == 0.1 and ours[-1] < 0.02
    with pytest.raises(ValueError, match="trainer.max_epochs or trainer.max_steps"):
        CosineAnnealingToEnd(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)).set_total_steps(
            float("inf")
        )


def test_a_model_paired_with_the_wrong_datamodule_fails_with_one_line_naming_both(capsys):
    from framework.cli import main

    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--model=FlowMatching",
                "--data=framework.testing.toy.ToyRegressionData",
                "--trainer.max_epochs=1",
                "--trainer.logger=false",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "framework: error: FlowMatching cannot train on ToyRegressionData: it has no 'dim' "
        "(FlowMatching needs FlowMatchingInputs: dim, law)."
    )


def test_the_contract_lists_annotations_and_methods_and_accepts_a_complete_datamodule():
    from typing import Protocol

    from framework.contract import DataContractError, check_data_contract, required_members

    class Needs(Protocol):
        graph: dict
        n_train: int

        def first_items(self, split: str, n: int) -> list: ...

    assert required_members(Needs) == ["graph", "n_train", "first_items"]
    complete = SimpleNamespace(graph={}, n_train=3, first_items=lambda split, n: [])
    assert check_data_contract(object(), complete, Needs) is complete
    with pytest.raises(DataContractError, match=r"^object cannot train on SimpleNamespace: it has no 'first_items'"):
        check_data_contract(object(), SimpleNamespace(graph={}, n_train=3), Needs)
    with pytest.raises(DataContractError, match="the trainer has none"):
        check_data_contract(object(), None, Needs)


def test_the_cli_prefixes_a_library_error_with_the_config_key_that_set_the_parameter(capsys):
    from framework.cli import main

    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--model=DecoupledDescentClassifier",
                "--model.width=2",
                "--model.readout=[1.0]",
                "--data=DecoupledDescentData",
                "--trainer.logger=false",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "framework: error: model.init_args.readout: readout=[1.0] has 1 entries but width=2; give one per unit."
    )


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ("estimator='trpo' is unknown", "model.init_args.estimator"),
        ("It needs batch_size >= n_train", "data.init_args.batch_size"),
        ("lr=-1 must be positive", "model.init_args.optimizer.init_args.lr"),
        ("model.init_args.dim=3 but the data is 2-dimensional", None),  # already a config key: left alone
        ("no parameter named here", None),
    ],
)
def test_config_key_finds_the_first_parameter_a_message_names(message, key):
    from framework.config_keys import config_key

    config = {
        "model": {
            "class_path": "X",
            "init_args": {"estimator": "sgmrl", "dim": 2, "optimizer": {"init_args": {"lr": 0.1}}},
        },
        "data": {"init_args": {"batch_size": 8, "dim": 2}},
        "trainer": {"max_epochs": 1},
    }
    assert config_key(message, config) == key
