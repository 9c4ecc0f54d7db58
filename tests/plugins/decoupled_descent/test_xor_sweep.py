"""The XOR sweep: every simulation against the plain full-batch loop, the Monte-Carlo population error against an
independent one-dimensional integral and against fresh samples, and the report's counts and intervals."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from scipy import integrate, stats

from framework.optim.decoupled_loop import train_full_batch
from framework.optim.readout import ReadoutNetwork, classification_error
from framework_plugins.decoupled_descent import DecoupledDescentData, XorSweepStudy
from framework_plugins.decoupled_descent.analysis import (
    mcnemar,
    paired_error_lines,
    threshold_rows,
    wilson,
    xor_sweep_report,
    xor_sweep_rows,
)
from framework_plugins.decoupled_descent.simulators import signal_directions, xor_mixture
from framework_plugins.decoupled_descent.xor_sweep import population_error, trajectory_summaries


def xor_net(d: int) -> ReadoutNetwork:
    return ReadoutNetwork(d, 2, "logcosh", [1.0, -1.0])


def test_every_simulation_follows_the_plain_loop(tmp_path):
    d, n, steps = 30, 80, 4
    data = DecoupledDescentData(task="xor", dim=d, n_train=n, n_val=1, n_test=300, snr=6.0, seed=2)
    torch.manual_seed(0)
    model = XorSweepStudy(n_features=d, lrs=[0.2, 0.6], init_scales=[0.3, 1.5], weight_decay=0.1, mc_samples=500)
    starts = model.weights.detach()[0].clone()
    assert torch.equal(model.weights[0], model.weights[1])  # DD and GD share each start
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
    x, y, _ = data.splits["train"]
    assert [lr for lr, _ in model.sims] == [0.2, 0.2, 0.6, 0.6]
    assert starts[1].std().item() == pytest.approx(1.5, rel=0.2)
    for j, (lr, _) in enumerate(model.sims):
        for m, method in enumerate(("dd", "gd")):
            net = xor_net(d)
            net.first.weight.data.copy_(starts[j])
            history, _ = train_full_batch(net, x, y, steps, method, 1.0, lr=lr, weight_decay=0.1)
            torch.testing.assert_close(model.weights[m, j], net.first.weight, rtol=1e-4, atol=1e-5)
            criterion = "corrected" if method == "dd" else "raw"
            recorded = [model.history[criterion][t][m * len(model.sims) + j] for t in range(steps)]
            assert recorded == pytest.approx(history[f"{criterion}_error"]), (j, method)
    assert not torch.allclose(model.weights[0], model.weights[1])  # DD moved away from GD
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    assert metrics["test/sampled_vs_exact"] < 0.12  # 300 fresh draws against the Monte-Carlo integral
    assert metrics["test/sim3/lr"] == pytest.approx(0.6) and metrics["test/sim3/init_scale"] == pytest.approx(1.5)
    for method in ("dd", "gd"):
        errors = [metrics[f"test/sim{j}/{method}/error"] for j in range(4)]
        assert metrics[f"test/{method}/error"] == pytest.approx(sum(errors) / 4, abs=1e-6)
        escaped = [float(e <= 0.25) for e in errors]
        assert [metrics[f"test/sim{j}/{method}/escaped"] for j in range(4)] == escaped


def test_trajectory_summaries_on_hand_made_curves():
    # t = 0..3 for (method, simulation) = (2, 1); t = 0 (the start) is left out of every summary
    test = torch.tensor([[[0.5], [0.5]], [[0.30], [0.40]], [[0.20], [0.35]], [[0.22], [0.30]]], dtype=torch.float64)
    criterion = torch.tensor([[[0.0], [0.0]], [[0.28], [0.10]], [[0.21], [0.05]], [[0.21], [0.05]]])
    out = trajectory_summaries(test, criterion.double(), escape_error=0.25, track_tolerance=0.03)
    expected = {
        "error": [0.22, 0.30],
        "best_error": [0.20, 0.30],
        "stopped_error": [0.20, 0.35],  # earliest argmin of the criterion: t = 2 for both
        "tracking_gap": [0.01, 0.25],
        "max_tracking_gap": [0.02, 0.30],
        "escaped": [1.0, 0.0],
        "tracks": [1.0, 0.0],
    }
    assert {k: v[:, 0].tolist() for k, v in out.items()} == {k: pytest.approx(v) for k, v in expected.items()}


def test_population_error_matches_an_independent_integral():
    # Orthogonal rows: a_1, a_2 independent normals, and f < 0 iff |a_1| < |a_2| (log cosh is even, increasing in |a|).
    d, noise_var = 50, 1.5
    means = signal_directions(d, 2, 4.0, seed=1)
    q, _ = torch.linalg.qr(torch.randn(d, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    w = (q.T * torch.tensor([[1.3], [0.7]], dtype=torch.float64) * math.sqrt(d)) + 0.2 * means
    w = torch.stack([w[0], w[1] - (w[1] @ w[0]) / (w[0] @ w[0]) * w[0]])  # exactly orthogonal rows
    m = (w @ means.T / d).T  # m[c, k] = mu_c . w_k / d
    sd = (noise_var * (w * w).sum(1) / d).sqrt()

    def p_below(c: int, sign: float, label: float) -> float:
        """P(y f(a) < 0) for cluster (c, sign): y = +1 errs when |a_1| < |a_2|, y = -1 when |a_1| > |a_2|."""
        a1 = stats.norm(sign * m[c, 0].item(), sd[0].item())
        a2 = stats.norm(sign * m[c, 1].item(), sd[1].item())

        def inner(u: float) -> float:
            below = a1.cdf(abs(u)) - a1.cdf(-abs(u))
            return a2.pdf(u) * (below if label > 0 else 1 - below)

        return integrate.quad(inner, -np.inf, np.inf, limit=200)[0]

    exact = sum(p_below(c, s, 1.0 - 2 * c) for c in (0, 1) for s in (1.0, -1.0)) / 4
    xi = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0))
    estimate = population_error(xor_net(d), w[None], means, noise_var, xi)
    assert estimate.shape == (1,)
    assert estimate.item() == pytest.approx(exact, abs=0.005)  # 4 x 200k draws: standard error < 0.0012
    x, y = xor_mixture(200_000, means, noise_var, seed=5)
    net = xor_net(d)
    net.first.weight.data.copy_(w.float())
    sampled = classification_error(net(x.float()), y.float()).mean().item()
    assert sampled == pytest.approx(exact, abs=0.005)


def test_bad_arguments_and_wrong_data_are_refused(tmp_path):
    with pytest.raises(ValueError, match="escape_error=0.6"):
        XorSweepStudy(n_features=10, escape_error=0.6)
    with pytest.raises(ValueError, match="init_scales"):
        XorSweepStudy(n_features=10, init_scales=[0.0])
    model = XorSweepStudy(n_features=10, mc_samples=100)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, default_root_dir=tmp_path)
    with pytest.raises(ValueError, match="task xor"):
        trainer.fit(model, datamodule=DecoupledDescentData(task="gmm", dim=10, n_train=20, n_val=1, n_test=5))


def sim(lr: float, scale: float, dd: tuple[float, float, float], gd: tuple[float, float, float]) -> dict:
    keys = ("escaped", "tracks", "error")
    out = {"lr": lr, "init_scale": scale, **{f"dd/{k}": v for k, v in zip(keys, dd, strict=True)}}
    out.update({f"gd/{k}": v for k, v in zip(keys, gd, strict=True)})
    out.update({f"{m}/best_error": out[f"{m}/error"] - 0.01 for m in ("dd", "gd")})
    out.update({f"{m}/stopped_error": out[f"{m}/error"] - 0.005 for m in ("dd", "gd")})
    return out


def test_rates_intervals_and_the_paired_escape_count():
    sims = [
        sim(0.1, 1.0, (1, 1, 0.2), (0, 0, 0.3)),
        sim(0.1, 1.0, (1, 1, 0.2), (1, 0, 0.2)),
        sim(0.1, 1.0, (0, 1, 0.4), (1, 0, 0.2)),
        sim(0.5, 3.0, (1, 0, 0.2), (0, 0, 0.4)),
    ]
    rows = xor_sweep_rows(sims)
    assert [r[:2] for r in rows] == [["0.1", "1"], ["0.5", "3"], ["all", "all"]]
    low, high = wilson(2, 3)
    z = stats.norm.ppf(0.975)  # the Wilson score interval by hand
    centre, half = (2 + z * z / 2) / (3 + z * z), z * math.sqrt(2 * 1 / 3 + z * z / 4) / (3 + z * z)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert rows[0][2] == f"2/3 = 0.67 [{low:.2f}, {high:.2f}]"
    assert rows[0][5].startswith("3/3 = 1.00") and rows[0][6].startswith("0/3 = 0.00")
    dd_only, gd_only, p = mcnemar(sims, "escaped")
    assert (dd_only, gd_only) == (2, 1) and p == pytest.approx(1.0)  # two-sided binomial: 2 of 3 discordant
    assert rows[-1][4] == "2 / 1 (p = 1)"
    lines = paired_error_lines(sims)  # stopped DD - GD: -0.1, 0, 0.2, -0.2; GD escaped on sims 1, 2
    assert "below GD's on 2 of 4 starts" in lines[0] and "DD - GD -0.025 [" in lines[0]
    assert lines[1].endswith("above GD's on 1 of 2 starts.")
    by_threshold = {
        row[0]: row for row in threshold_rows(sims)
    }  # final errors DD 0.2, 0.2, 0.4, 0.2; GD 0.3, 0.2, 0.2, 0.4
    assert by_threshold["0.2"][1].startswith("3/4") and by_threshold["0.2"][2].startswith("2/4")
    assert by_threshold["0.3"][2].startswith("3/4") and by_threshold["0.35"][3] == "1 / 1 (p = 1)"


def test_report_section_reads_the_simulations_of_every_run(tmp_path):
    metrics = {"test/sim0/lr": 0.5, "test/sim0/init_scale": 1.0}
    for m, values in (("dd", (1.0, 1.0, 0.2, 0.1, 0.15, 0.01, 0.02)), ("gd", (0.0, 0.0, 0.3, 0.29, 0.3, 0.2, 0.25))):
        keys = ("escaped", "tracks", "error", "best_error", "stopped_error", "tracking_gap", "max_tracking_gap")
        metrics.update({f"test/sim0/{m}/{k}": v for k, v in zip(keys, values, strict=True)})
    runs = {("sweep", s): {"status": "ok", "metrics": metrics} for s in range(3)}
    runs[("sweep", 3)] = {"status": "failed", "metrics": {}}
    text = xor_sweep_report(tmp_path, {"name": "xor_sweep"}, runs, prefix="xor_sweep/")
    assert "3 paired simulations" in text and "over 3 data draws" in text and "| 0.35 | 3/3 = 1.00" in text
    assert "| 0.5 | 1 | 3/3 = 1.00" in text and "![escape and tracking](xor_sweep/xor_sweep.png)" in text
    assert (tmp_path / "xor_sweep.png").is_file()
    assert xor_sweep_report(tmp_path, {"name": "xor_sweep"}, {}) == ""


def test_xor_data_exposes_its_cluster_means():
    data = DecoupledDescentData(task="xor", dim=40, n_train=10, n_val=1, n_test=1, snr=2.0, seed=4)
    data.setup("fit")
    assert data.means.shape == (2, 40) and data.signal is None
    torch.testing.assert_close(data.means, signal_directions(40, 2, 2.0, 4))
