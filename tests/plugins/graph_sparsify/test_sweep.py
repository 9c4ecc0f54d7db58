"""The sparsifier sweep: seeded draws from the datamodule, the callback's logged records, and the report section built
from them (records read back, tables, figure)."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import pytest

from framework_plugins.graph_sparsify import GraphSparsifyData, SparsifierSweep, TwinSparsifiedGNN
from framework_plugins.graph_sparsify.sweep import sweep_key
from framework_plugins.graph_sparsify.sweep_analysis import FIGURE, filter_sweep, seed_interval
from framework_plugins.graph_sparsify.sweep_records import column, select, sweep_rows


def test_sparsifier_draws_are_seeded_and_independent():
    data = GraphSparsifyData(dataset="sbm", num_nodes=150, sparsifier="none", seed=3)
    with pytest.raises(RuntimeError, match="setup"):
        data.sparsifier_draw(2.0, 0)
    data.setup("fit")
    a, b, c = data.sparsifier_draw(2.0, 0), data.sparsifier_draw(2.0, 0), data.sparsifier_draw(2.0, 1)
    assert (a.adjacency != b.adjacency).nnz == 0  # same (seed, draw, factor): the same H
    assert (a.adjacency != c.adjacency).nnz > 0  # another draw
    assert a.q == math.ceil(2.0 * 150 * math.log(150))
    assert data.sparsifier_draw(8.0, 0).kept_fraction > a.kept_fraction


def test_callback_logs_every_draw_and_the_bounds():
    pl.seed_everything(0, workers=True)
    data = GraphSparsifyData(dataset="sbm", num_nodes=120, sparsifier="none", batch_size=128)
    model = TwinSparsifiedGNN(kind="tag", in_channels=16, hidden=8, num_classes=4, K=2)
    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SparsifierSweep(samples_factors=[1.0, 8.0], draws=2, k=5)],
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(model, data)
    trainer.test(model, data, verbose=False)
    m = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for f in (1.0, 8.0):
        for d in (0, 1):
            assert m[sweep_key(f, d, "eps_hat")] > 0 and m[sweep_key(f, d, "op_gap")] > 0
            for layer in (0, 1):
                rel, bound = m[sweep_key(f, d, f"layer{layer}/rel_error")], sweep_key(f, d, f"layer{layer}/bound")
                assert sweep_key(f, d, f"layer{layer}/knn_jaccard") in m
                assert rel <= m[sweep_key(f, d, f"layer{layer}/bound_given_gap")]
                if m[sweep_key(f, d, "eps_hat")] < 1:
                    assert rel <= m[bound]
                else:
                    assert bound not in m
    assert m[sweep_key(8.0, 0, "eps_hat")] < m[sweep_key(1.0, 0, "eps_hat")]


def test_callback_arguments_are_checked():
    with pytest.raises(ValueError, match="samples_factors"):
        SparsifierSweep(samples_factors=[0.0])
    with pytest.raises(ValueError, match="draws=0"):
        SparsifierSweep(draws=0)


def synthetic_runs() -> dict[tuple[str, int], dict]:
    """Two filters x 3 seeds, draws d = 0..3 at f = 1, 4, 16: eps = 1.2 f^(-1/2) (1 + noise); per layer
    gram = c eps, knn loss = gram^0.6, centroid shift = 0.2 gram; bounds 10x the relative error where eps < 1;
    one failed run."""
    rng = np.random.default_rng(0)
    runs: dict[tuple[str, int], dict] = {}
    for variant, layers in (("cheb", 2), ("gpr", 1)):
        for seed in range(3):
            metrics = {"test/acc": 0.9}
            for f in (1.0, 4.0, 16.0):
                for d in range(4):
                    eps = 1.2 / math.sqrt(f) * (1 + 0.1 * rng.standard_normal())
                    metrics.update({sweep_key(f, d, "eps_hat"): eps, sweep_key(f, d, "kept_fraction"): 0.1 * f})
                    metrics[sweep_key(f, d, "op_gap")] = 0.5 * eps
                    if eps < 1:
                        metrics[sweep_key(f, d, "op_bound")] = 4 * eps / (1 - eps)
                    for layer in range(layers):
                        gram = (0.3 + 0.1 * layer) * eps * math.exp(0.05 * rng.standard_normal())
                        probes = {
                            "rel_error": gram,
                            "gram_rel": gram,
                            "knn_jaccard": 1 - gram**0.6,
                            "centroid_shift": 0.2 * gram,
                            "bound_given_gap": 3 * gram,
                        }
                        if eps < 1:
                            probes.update(bound=10 * gram, gram_bound=100 * gram)
                        metrics.update({sweep_key(f, d, f"layer{layer}/{k}"): v for k, v in probes.items()})
            runs[(variant, seed)] = {"status": "ok", "metrics": metrics}
    runs[("bern", 0)] = {"status": "failed", "metrics": {}}
    return runs


def test_records_are_read_back_per_draw_and_layer():
    rows = sweep_rows(synthetic_runs())
    assert len(rows) == 3 * 3 * 4 * 2 + 3 * 3 * 4 * 1  # cheb: 2 layers, gpr: 1; the failed run has none
    assert [r["variant"] for r in rows[:1]] == ["cheb"] and rows[-1]["variant"] == "gpr"
    eps = column(select(rows, variant="cheb", seed=1, factor=4.0, draw=2), "eps_hat")
    assert len(eps) == 2 and eps[0] == eps[1]  # both layers carry their draw's eps_hat
    high = [r for r in rows if r["eps_hat"] >= 1]
    assert high and all(math.isnan(r["op_bound"]) and "bound" not in r for r in high)


def test_seed_interval_is_a_t_interval_of_per_seed_means():
    rows = [{"seed": s, "x": float(v)} for s, vals in enumerate([[1, 3], [2, 4], [6, 8]]) for v in vals]
    mean, sd, low, high = seed_interval(rows, "x")
    means = np.array([2.0, 3.0, 7.0])
    half = 4.302652729911275 * means.std(ddof=1) / math.sqrt(3)  # t_{0.975, 2}
    assert mean == pytest.approx(4.0) and sd == pytest.approx(math.sqrt(2.0))
    assert (low, high) == pytest.approx((means.mean() - half, means.mean() + half))


def test_report_section_has_every_table_and_the_figure(tmp_path):
    text = filter_sweep(tmp_path, {"variants": ["cheb", "gpr", "bern"]}, synthetic_runs(), "fig/")
    assert (tmp_path / FIGURE).is_file() and f"(fig/{FIGURE})" in text
    for heading in ("Sparsifier draws", "Upper-bound checks", "per filter and q", "log-log slope", "predict"):
        assert heading in text
    bound_rows = [line for line in text.splitlines() if line.startswith("| cheb | 0 |") and "/" in line]
    assert bound_rows and "10 [10]" in bound_rows[0]  # every bound held with slack exactly 10
    # exact synthetic laws: knn loss = gram^0.6 gives a log-log slope of 0.6 and rank correlation 1
    pooled = next(line for line in text.splitlines() if line.startswith("| all | neighbourhood"))
    assert "| 1 [" in pooled and "0.6 [0.6, 0.6]" in pooled
    assert "bern" not in text.split("### Sparsifier draws")[1]  # the failed variant has no rows
    assert "No run logged" in filter_sweep(tmp_path, {"variants": ["x"]}, {}, "")
