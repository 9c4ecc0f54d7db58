"""The zero-cost-validation study: its selection rules on hand-made curves with known answers, its arms against the
plain full-batch loop (an independent orchestration of the same steps), and its report section."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from scipy import stats

from framework.optim.decoupled_loop import train_full_batch
from framework.optim.readout import ReadoutNetwork, classification_error
from framework_plugins.decoupled_descent import DecoupledDescentData, EarlyStoppingStudy
from framework_plugins.decoupled_descent.analysis import early_stopping_report, grid_rows, stopping_rows
from framework_plugins.decoupled_descent.early_stopping import cell_summaries, select, selections
from framework_plugins.decoupled_descent.metrics import gmm_exact_error


def test_select_takes_the_first_cell_then_the_earliest_step_among_ties():
    criterion = torch.tensor([[0.3, 0.2, 0.2], [0.2, 0.5, 0.2]], dtype=torch.float64)
    test = torch.tensor([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]], dtype=torch.float64)
    assert select(criterion, test) == {"cell": 0, "step": 2, "criterion": pytest.approx(0.2), "error": 0.8}


def test_selections_pair_each_rule_with_its_candidates_and_oracle():
    # kinds (dd, gd, fold0, fold1) x 2 cells x 3 steps
    test = torch.tensor(
        [
            [[0.30, 0.25, 0.28], [0.40, 0.35, 0.33]],  # dd: oracle 0.25 at (cell 0, t 2)
            [[0.31, 0.24, 0.29], [0.41, 0.36, 0.20]],  # gd: oracle 0.20 at (cell 1, t 3)
            [[0.32, 0.30, 0.26], [0.42, 0.37, 0.34]],  # fold0: oracle 0.26 at (cell 0, t 3)
            [[0.50, 0.50, 0.50], [0.50, 0.50, 0.50]],  # fold1: its own test errors are never used
        ]
    )
    criterion = torch.tensor(
        [
            [[0.29, 0.27, 0.26], [0.39, 0.34, 0.30]],  # dd picks (0, 3): test 0.28
            [[0.20, 0.10, 0.05], [0.15, 0.04, 0.01]],  # gd_train picks (1, 3): test 0.20
            [[0.30, 0.22, 0.25], [0.40, 0.36, 0.35]],  # gd_holdout picks (0, 2): test 0.30
            [[0.30, 0.30, 0.21], [0.40, 0.36, 0.35]],  # kfold mean: (0,2) 0.26, (0,3) 0.23 -> (0, 3), gd test 0.29
        ]
    )
    out = selections(criterion, test, folds=2)
    assert {r: (out[r]["cell"], out[r]["step"]) for r in out} == {
        "dd": (0, 3),
        "gd_train": (1, 3),
        "gd_holdout": (0, 2),
        "gd_kfold": (0, 3),
        "oracle_dd": (0, 2),
        "oracle_gd": (1, 3),
        "oracle_holdout": (0, 3),
    }
    regrets = {r: out[r]["regret"] for r in ("dd", "gd_train", "gd_holdout", "gd_kfold")}
    assert regrets == pytest.approx({"dd": 0.03, "gd_train": 0.0, "gd_holdout": 0.04, "gd_kfold": 0.09})


def test_cell_summaries_fix_the_cell_and_select_only_the_step():
    # kinds (dd, gd, fold0) x 2 cells x 3 steps
    test = torch.tensor(
        [
            [[0.30, 0.25, 0.28], [0.40, 0.35, 0.33]],
            [[0.31, 0.24, 0.29], [0.41, 0.36, 0.20]],
            [[0.32, 0.30, 0.26], [0.42, 0.37, 0.34]],
        ]
    )
    criterion = torch.tensor(
        [
            [[0.29, 0.27, 0.27], [0.30, 0.34, 0.39]],  # dd: cell 0 -> t 2 (earliest tie), cell 1 -> t 1
            [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],  # gd's criterion is not used per cell
            [[0.30, 0.22, 0.25], [0.40, 0.36, 0.35]],  # fold 0: cell 0 -> t 2, cell 1 -> t 3
        ]
    )
    out = cell_summaries(criterion, test)
    expected = {"oracle_dd": [0.25, 0.33], "oracle_gd": [0.24, 0.20], "dd": [0.25, 0.40], "gd_holdout": [0.30, 0.34]}
    assert {k: v.tolist() for k, v in out.items()} == {k: pytest.approx(v) for k, v in expected.items()}


def test_every_arm_follows_the_plain_loop_and_records_its_criterion(tmp_path):
    d, n, steps, folds = 40, 60, 3, 3
    data = DecoupledDescentData(task="gmm", dim=d, n_train=n, n_val=1, n_test=400, seed=3)
    torch.manual_seed(0)
    model = EarlyStoppingStudy(n_features=d, lrs=[0.3, 0.6], weight_decays=[0.0, 0.2], folds=folds)
    start = model.nets[0].first.weight.detach().clone()
    trainer = pl.Trainer(
        max_epochs=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    x, y, index = data.splits["train"]
    v = data.signal
    cells = [(0.3, 0.0), (0.3, 0.2), (0.6, 0.0), (0.6, 0.2)]
    for kind in range(2 + folds):
        for c, (lr, wd) in enumerate(cells):
            arm = kind * len(cells) + c
            rows = torch.ones(n, dtype=torch.bool) if kind < 2 else index % folds != kind - 2
            net = ReadoutNetwork(d)
            net.first.weight.data.copy_(start)

            def evaluate(net, rows=rows):
                error = classification_error(net(x), y)
                return {"held": error[~rows].mean().item() if kind >= 2 else 0.0}

            history, _ = train_full_batch(
                net, x[rows], y[rows], steps, "dd" if kind == 0 else "gd", 1.0, evaluate, lr=lr, weight_decay=wd
            )
            torch.testing.assert_close(model.nets[arm].first.weight, net.first.weight, rtol=1e-5, atol=1e-6)
            held = history["held"][:steps]
            expected = history["corrected_error"] if kind == 0 else history["raw_error"] if kind == 1 else held
            recorded = [model.history["criterion"][t][arm] for t in range(steps)]
            assert recorded == pytest.approx(expected), (kind, c)
            exact = [model.history["test"][t][arm] for t in range(steps)]
            assert exact[0] == pytest.approx(gmm_exact_error(start[0], v, 1.0)["exact_error"])
    assert model.nets[0].first.weight.ne(model.nets[len(cells)].first.weight).any()  # DD moved away from GD
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    assert metrics["test/sampled_vs_exact"] < 0.1  # 400 fresh draws against the closed form
    assert metrics["test/dd/regret"] >= 0 and metrics["test/oracle_gd/error"] <= metrics["test/gd_kfold/error"]
    assert (metrics["test/cell3/lr"], metrics["test/cell3/weight_decay"]) == pytest.approx(cells[3])
    assert min(metrics[f"test/cell{c}/oracle_gd"] for c in range(4)) == pytest.approx(metrics["test/oracle_gd/error"])
    assert all(metrics[f"test/cell{c}/dd"] >= metrics[f"test/cell{c}/oracle_dd"] for c in range(4))


def test_the_study_refuses_what_it_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="folds=1"):
        EarlyStoppingStudy(n_features=10, folds=1)
    model = EarlyStoppingStudy(n_features=10, optimizer=lambda p: torch.optim.Adam(p))
    with pytest.raises(ValueError, match="torch.optim.SGD"):
        model.configure_optimizers()


def record(variant: str, seed: int, values: dict[str, float]) -> dict:
    metrics = {f"test/{rule}/{key}": value for (rule, key), value in values.items()}
    return {"variant": variant, "seed": seed, "status": "ok", "metrics": metrics}


def test_stopping_rows_pair_dd_and_the_gd_oracle_over_seeds(tmp_path):
    dd, oracle, holdout = [0.21, 0.22, 0.20], [0.20, 0.21, 0.195], [0.23, 0.22, 0.24]
    runs = {
        ("nd1", s): record(
            "nd1",
            s,
            {
                ("dd", "error"): dd[s],
                ("dd", "regret"): 0.01,
                ("dd", "step"): 5 + s,
                ("gd_holdout", "error"): holdout[s],
                ("gd_holdout", "regret"): 0.02,
                ("gd_holdout", "step"): 9,
                ("oracle_gd", "error"): oracle[s],
                ("oracle_gd", "step"): 7,
            },
        )
        for s in range(3)
    }
    exp = {"name": "early_stopping", "variants": ["nd1"]}
    rows = {row[1]: row for row in stopping_rows(exp, runs)}
    assert list(rows) == [
        "DD, corrected train error (all n)",
        "GD, 80/20 hold-out (trained on 80%)",
        "oracle: GD, test error",
    ]
    diff = [a - b for a, b in zip(dd, holdout, strict=True)]
    mean, half = sum(diff) / 3, stats.t.ppf(0.975, 2) * stats.tstd(diff) / 3**0.5
    hold = rows["GD, 80/20 hold-out (trained on 80%)"]
    assert hold[4] == f"{mean:.4g} [{mean - half:.4g}, {mean + half:.4g}] (2/3)"
    assert rows["DD, corrected train error (all n)"][6] == "6 [5, 7]" and rows["oracle: GD, test error"][3] == "-"
    text = early_stopping_report(tmp_path, exp, runs, "x/")
    assert "![cost of each stopping rule](x/stopping.png)" in text and (tmp_path / "stopping.png").is_file()
    assert "Where in the grid" not in text  # no per-cell metrics logged


def test_grid_rows_count_the_cells_each_rule_chose():
    cells = [(0.1, 0.0), (0.4, 0.8)]
    runs = {}
    for s in range(3):
        values = {("dd", "lr"): 0.4, ("dd", "weight_decay"): 0.8, ("oracle_gd", "lr"): 0.1}
        values |= {("oracle_gd", "weight_decay"): 0.0 if s < 2 else 0.8}
        values |= {("gd_holdout", "lr"): 0.1, ("gd_holdout", "weight_decay"): 0.8}  # a cell outside the grid
        for c, (lr, wd) in enumerate(cells):
            values |= {(f"cell{c}", "lr"): lr, (f"cell{c}", "weight_decay"): wd}
            values |= {(f"cell{c}", k): 0.2 + 0.01 * c + 0.001 * s for k in ("oracle_gd", "oracle_dd", "dd")}
            values |= {(f"cell{c}", "gd_holdout"): 0.3}
        runs[("nd2", s)] = record("nd2", s, values)
    rows = grid_rows({"variants": ["nd2"]}, runs)
    assert [r[:3] for r in rows] == [["nd2", "0.1", "0"], ["nd2", "0.4", "0.8"]]
    assert rows[0][3] == "0.201 +- 0.001" and rows[1][6] == "0.3 +- 0"
    assert rows[0][7] == "0 / 0 / 0 / 2" and rows[1][7] == "3 / 0 / 0 / 0"  # dd / hold-out / 5-fold / GD oracle
