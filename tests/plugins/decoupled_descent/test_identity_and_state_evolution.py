"""Train-test identity of decoupled descent and its state evolution on the Gaussian mixture (n = 2000, d = 1000),
against the exact test error of each iterate, with plain GD as the discriminating control.

At n = 2000 one training draw moves the corrected train error by about 0.015 (std over 6 seeds, measured; 0.003 at
n = 8000), persistently along the trajectory, so the identity is asserted on the average over 3 seeds (< 0.03, the
issue's bound) and each seed within 0.05.
"""

from __future__ import annotations

import math

import pytest
import torch

from framework.optim.decoupled_loop import train_full_batch
from framework.optim.readout import ReadoutNetwork
from framework_plugins.decoupled_descent.simulators import gaussian_mixture, signal_directions
from framework_plugins.decoupled_descent.state_evolution import state_evolution

N, D, SNR, DELTA, LR, WD = 2000, 1000, 1.0, 1.0, 0.5, 0.05
CHECKED = (5, 10, 20)
SEEDS = (0, 1, 2)


def gmm_metrics(v: torch.Tensor, noise_var: float):
    """evaluate(net) -> {m, q, test_error}: the test margin is m + sqrt(Delta q) xi with m = v.w/d, q = ||w||^2/d,
    so the test error is exactly Phi(-m / sqrt(Delta q)) (no test sample needed)."""

    def evaluate(net: ReadoutNetwork) -> dict[str, float]:
        w = net.first.weight[0].detach()
        m, q = (v @ w).item() / len(v), (w @ w).item() / len(v)
        error = 0.5 if q == 0 else 0.5 * math.erfc(m / math.sqrt(2 * noise_var * q))
        return {"m": m, "q": q, "test_error": error}

    return evaluate


@pytest.fixture(scope="module")
def runs() -> dict[str, list[dict[str, list[float]]]]:
    """{method: [history per seed]} for DD, GD and DD damped (momentum = dampening = 0.5)."""
    out: dict[str, list[dict[str, list[float]]]] = {"dd": [], "gd": [], "dd_damped": []}
    for seed in SEEDS:
        v = signal_directions(D, 1, SNR, seed=seed)[0]
        x, y = gaussian_mixture(N, v, DELTA, seed=seed + 1)
        for method, momentum in (("dd", 0.0), ("gd", 0.0), ("dd_damped", 0.5)):
            history, _ = train_full_batch(
                ReadoutNetwork(D).double(),
                x,
                y,
                max(CHECKED) + 1,
                method[:2],
                DELTA,
                gmm_metrics(v, DELTA),
                lr=LR,
                weight_decay=WD,
                momentum=momentum,
                dampening=momentum,
            )
            out[method].append(history)
    return out


def mean(values) -> float:
    return sum(values) / len(values)


@pytest.mark.parametrize("method", ["dd", "dd_damped"])
def test_corrected_train_error_tracks_test_error(runs, method):
    for t in CHECKED:
        gaps = [h["corrected_error"][t] - h["test_error"][t] for h in runs[method]]
        assert abs(mean(gaps)) < 0.03 and max(map(abs, gaps)) < 0.05, (t, gaps)
        raw_gaps = [h["test_error"][t] - h["raw_error"][t] for h in runs[method]]
        assert min(raw_gaps) > 0.1, "the raw train error is not biased: the check would be weak"


def test_gd_train_error_is_biased(runs):
    """Control: GD's raw train error sits far below its test error (every seed), so the identity is not vacuous."""
    for t in CHECKED:
        gaps = [h["test_error"][t] - h["raw_error"][t] for h in runs["gd"]]
        assert min(gaps) > 0.1, (t, gaps)


@pytest.mark.parametrize(("method", "momentum"), [("dd", 0.0), ("dd_damped", 0.5)])
def test_state_evolution_matches_simulation(runs, method, momentum):
    """m, q within 5% of the seed-averaged simulation; predicted test error within 0.01 of every seed's."""
    se = state_evolution(max(CHECKED), SNR, DELTA, N / D, LR, WD, momentum, momentum, particles=400_000, seed=0)
    for t in CHECKED:
        assert se["m"][t].item() == pytest.approx(mean([h["m"][t] for h in runs[method]]), rel=0.05), t
        assert se["q"][t].item() == pytest.approx(mean([h["q"][t] for h in runs[method]]), rel=0.05), t
        for h in runs[method]:
            assert abs(se["test_error"][t].item() - h["test_error"][t]) < 0.01, (
                t,
                se["test_error"][t],
                h["test_error"][t],
            )
    assert abs(se["test_error"][20] - se["test_error"][5]) > 0.01, "flat curves: the comparison would be weak"


@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_state_evolution_first_step_closed_form(momentum):
    """W^0 = 0: P^0 = 0 and l' = -y/2, so m_1 = snr eta delta / 2 and
    q_1 = snr (eta delta / 2)^2 + eta^2 Delta delta / 4 exactly (no Monte-Carlo error at t = 0)."""
    snr, delta_n, noise, lr = 1.5, 3.0, 0.8, 0.4
    se = state_evolution(2, snr, noise, delta_n, lr, 0.1, momentum, 0.0, particles=1000, seed=3)
    assert se["m"][1].item() == pytest.approx(snr * lr * delta_n / 2, rel=1e-12)
    assert se["q"][1].item() == pytest.approx(snr * (lr * delta_n / 2) ** 2 + lr**2 * noise * delta_n / 4, rel=1e-12)
    assert se["test_error"][0].item() == 0.5
    expected_loss = torch.nn.functional.softplus(torch.tensor(0.0, dtype=torch.float64)).item()
    assert se["test_loss"][0].item() == pytest.approx(expected_loss, rel=1e-12)
