"""Twin training: identical graphs give identical trajectories; a sparsified graph makes them separate."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from framework.callbacks import DecoupledProbe
from framework_plugins.graph_sparsify import GeometryProbe, GraphSparsifyData, TwinSparsifiedGNN
from framework_plugins.graph_sparsify.module import weight_distance


def fit(
    sparsifier: str, kind: str = "cheb", dropout: float = 0.0, steps: int = 8
) -> tuple[TwinSparsifiedGNN, pl.Trainer]:
    pl.seed_everything(0, workers=True)
    data = GraphSparsifyData(dataset="sbm", num_nodes=120, sparsifier=sparsifier, samples_factor=1.0, batch_size=16)
    model = TwinSparsifiedGNN(kind=kind, in_channels=16, hidden=8, num_classes=4, dropout=dropout)
    trainer = pl.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[GeometryProbe(k=5)],
        num_sanity_val_steps=0,
        limit_val_batches=2,
    )
    trainer.fit(model, data)
    return model, trainer


@pytest.mark.parametrize("kind,dropout", [("cheb", 0.3), ("gpr", 0.0)])
def test_identical_graph_gives_identical_trajectories(kind, dropout):
    model, trainer = fit("none", kind, dropout)
    assert trainer.global_step == 8 and len(model.history) == 8
    assert all(d == 0.0 for _, d in model.history)
    for p, q in zip(model.dense_model.parameters(), model.sparse_model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert trainer.callback_metrics["val/eps_hat"].item() == pytest.approx(0.0, abs=1e-9)
    assert trainer.callback_metrics["val/geometry/twin/layer0/cka"].item() == pytest.approx(1.0)


def test_sparsified_graph_separates_trajectories_and_probes_are_logged():
    model, trainer = fit("effective_resistance")
    distances = [d for _, d in model.history]
    assert distances[0] > 0 and distances[-1] > distances[0]
    metrics = trainer.callback_metrics
    assert metrics["val/eps_hat"].item() > 0 and metrics["val/kept_fraction"].item() < 1
    for key in ("cka", "gram_rel", "knn_jaccard", "centroid_shift", "cov_change", "rel_error"):
        assert f"val/geometry/same_weights/layer1/{key}" in metrics
    assert 0 < metrics["val/geometry/same_weights/layer1/cka"].item() < 1


def test_weight_distance_formula():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    expected = (flat(a) - flat(b)).norm() / flat(a).norm()
    assert weight_distance(a, b).item() == pytest.approx(expected.item(), rel=1e-6)


def test_mismatched_model_dimensions_are_a_clear_error():
    data = GraphSparsifyData(dataset="sbm", num_nodes=60, sparsifier="none", feature_dim=7)
    model = TwinSparsifiedGNN(in_channels=16, num_classes=4)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="in_channels=16"):
        trainer.fit(model, data)


def test_the_decoupled_probe_reads_the_twin_representations_and_logs_its_errors():
    pl.seed_everything(0, workers=True)
    data = GraphSparsifyData(dataset="sbm", num_nodes=120, sparsifier="effective_resistance", batch_size=16)
    model = TwinSparsifiedGNN(kind="cheb", in_channels=16, hidden=8, num_classes=4)
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[DecoupledProbe(steps=20)],
        num_sanity_val_steps=0,
    )
    trainer.fit(model, data)
    features, labels = model.probe_features("train")
    assert features.shape == (len(data.splits["train"][0]), 8) and set(labels.tolist()) == {-1.0, 1.0}
    classes = data.graph["y"][data.splits["train"][0]]
    assert torch.equal(labels > 0, classes < 2)
    for key in ("raw_train_error", "corrected_train_error", "test_error"):
        assert 0 <= trainer.callback_metrics[f"val/probe/{key}"].item() <= 1
    trainer.test(model, data)  # test-time features are inference tensors
    assert 0 <= trainer.callback_metrics["test/probe/corrected_train_error"].item() <= 1


@pytest.mark.parametrize("sparsifier", ["none", "effective_resistance"])
def test_test_stage_logs_the_perturbation_of_the_same_weights_and_the_filter_gap(sparsifier):
    """H = G (the negative control) gives exactly zero perturbation; a sparsifier gives a positive one."""
    pl.seed_everything(0, workers=True)
    data = GraphSparsifyData(dataset="sbm", num_nodes=120, sparsifier=sparsifier, samples_factor=1.0, batch_size=128)
    model = TwinSparsifiedGNN(kind="cheb", in_channels=16, hidden=8, num_classes=4)
    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[GeometryProbe(k=5)],
        num_sanity_val_steps=0,
    )
    trainer.fit(model, data)
    trainer.test(model, data)
    m = {k: v.item() for k, v in trainer.callback_metrics.items()}
    perturbations = [m["test/filter_gap"], m["test/eps_hat"], m["test/geometry/same_weights/layer1/rel_error"]]
    if sparsifier == "none":
        assert perturbations == [0.0, 0.0, 0.0] and m["test/geometry/same_weights/layer0/cka"] == pytest.approx(1.0)
        assert m["test/kept_fraction"] == 1.0 and m["test/acc_dense_weights_on_sparse"] == m["test/acc"]
    else:
        assert all(p > 0 for p in perturbations) and m["test/kept_fraction"] < 1
        assert m["test/filter_gap"] == pytest.approx(model.fixed_filter_gap())
