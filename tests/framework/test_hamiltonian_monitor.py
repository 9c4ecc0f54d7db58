"""The energy of the dynamics Muon runs (framework.callbacks.hamiltonian; derivation in docs/muon.md).

E = f + sum_g c_g sum_b s_b K(m_b), c_g = lr_g / (1 - beta_g) (ema) or lr_g (heavy ball), and its predicted
decrease per step D = sum_g (1 - beta_g) c_g sum_b s_b <grad K(m_b), m_b>. Checked against an independent SVD
computation, in discrete time on full-batch least squares (E non-increasing; E_{t+1} - E_t = -D_t + O(lr^2), so
the relative mismatch shrinks linearly in lr at fixed gamma = (1 - beta) / lr), against the old f + K (which rises),
and through the callback in Lightning fits.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from framework.callbacks import HamiltonianMonitor
from framework.callbacks.hamiltonian import muon_energy, violated_assumptions
from framework.cli import main
from framework.optim import Muon
from framework.optim.orthogonalize import kinetic_energy, polar_svd, regularized_polar
from framework.registry import config_dir

GAMMA = 5.0  # (1 - beta) / lr, held fixed as lr -> 0 (the continuous limit); beta = 0.95 at lr = 1e-2
LRS = (1e-2, 5e-3, 2.5e-3)
HORIZON = 1.0  # continuous time T = steps * lr, i.e. 5 / GAMMA: the momentum transient and most of the descent
SCALES = {  # lr_scale factors written out again, independently of framework.optim.muon._scale
    "original": lambda r, c: math.sqrt(max(1.0, r / c)),
    "match_rms_adamw": lambda r, c: 0.2 * math.sqrt(max(r, c)),
    "spectral": lambda r, c: math.sqrt(r / c),
    "none": lambda r, c: 1.0,
}


@pytest.fixture
def one_thread():
    """Hundreds of tiny float64 steps: one thread avoids oversubscribing a loaded 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)


# -- independent reference ------------------------------------------------------------------------------------------
def reference_terms(opt: Muon) -> tuple[float, float, float]:
    """(sum_b s_b K(m_b), sum_g c_g sum_b s_b K(m_b), D) from SVDs: K_eps and <grad K_eps(m), m> = sum s^2 /
    sqrt(s^2 + eps^2) with eps = reg_eps (absolute) or reg_eps ||m||_F / sqrt(min(rows, cols)) (relative) for
    regularized groups, ||m||_* and <U V^T, m> for svd / newton_schulz."""
    kinetic = weighted = dissipation = 0.0
    for group in opt.param_groups:
        if not group["use_muon"]:
            continue
        lr, beta = group["lr"], group["momentum"]
        c = lr / (1 - beta) if group["momentum_style"] == "ema" else lr
        for p in group["params"]:
            for m in opt.views[p].blocks(opt.state[p]["momentum_buffer"]):
                m = m.double()
                s = torch.linalg.svdvals(m)
                if group["orthogonalizer"] == "regularized":
                    eps = group["reg_eps"]
                    if group["reg_eps_units"] == "relative":
                        eps = eps * s.norm() / min(m.shape) ** 0.5
                    k, pairing = ((s**2 + eps**2).sqrt() - eps).sum(), (s**2 / (s**2 + eps**2).sqrt()).sum()
                else:
                    k, pairing = s.sum(), (polar_svd(m) * m).sum()
                scale = SCALES[group["lr_scale"]](*m.shape)
                kinetic += scale * k.item()
                weighted += c * scale * k.item()
                dissipation += (1 - beta) * c * scale * pairing.item()
    return kinetic, weighted, dissipation


@pytest.mark.parametrize("units", ["absolute", "relative"])
def test_energy_terms_match_an_independent_svd_computation(units):
    """Two Muon groups with different lr, beta, convention, orthogonalizer, scale and blocks, random buffers."""
    torch.manual_seed(0)
    a = nn.Parameter(torch.randn(6, 4, dtype=torch.float64))  # split into blocks 2x4 and 4x4
    b = nn.Parameter(torch.randn(3, 5, 2, dtype=torch.float64))  # 3 blocks 5x2
    c = nn.Parameter(torch.randn(5, dtype=torch.float64))  # AdamW: outside E
    opt = Muon(
        [
            {"params": [a], "param_names": ["qkv"], "lr": 0.03, "momentum": 0.9, "momentum_style": "ema"},
            {
                "params": [b, c],
                "param_names": ["experts", "bias"],
                "lr": 0.01,
                "momentum": 0.8,
                "momentum_style": "heavy_ball",
                "orthogonalizer": "svd",
                "lr_scale": "match_rms_adamw",
            },
        ],
        orthogonalizer="regularized",
        reg_eps=0.7,
        reg_eps_units=units,
        lr_scale="spectral",
        split_sizes={"qkv": [2, 4]},
    )
    for p in (a, b):
        opt.state[p]["momentum_buffer"].copy_(torch.randn_like(p))
    values = muon_energy([opt], torch.tensor(1.5))
    kinetic, weighted, dissipation = reference_terms(opt)
    assert values["energy/f"] == 1.5
    assert values["energy/K"] == pytest.approx(kinetic, rel=1e-10)
    assert values["energy/H"] == pytest.approx(1.5 + weighted, rel=1e-10)
    assert values["energy/dissipation"] == pytest.approx(dissipation, rel=1e-10)
    assert dissipation > 0
    assert muon_energy([torch.optim.SGD([c], lr=0.1)], 1.0) is None


def test_violated_assumptions_name_each_setting():
    w = nn.Parameter(torch.randn(4, 3))
    bias = nn.Parameter(torch.randn(3))
    clean = Muon([w], nesterov=False, orthogonalizer="regularized")
    assert violated_assumptions([clean]) == []
    found = " ".join(violated_assumptions([Muon([w, bias], weight_decay=0.1)]))
    for word in ("AdamW", "nesterov", "weight_decay", "newton_schulz"):
        assert word in found


# -- discrete time: full-batch least squares ------------------------------------------------------------------------
def least_squares(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """X (64, 4), Y (64, 6) = X A^T + noise, and a small initial W0 (6, 4) (tall: lr_scale factors != 1)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    a = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = x @ a.T + 0.3 * torch.randn(64, 6, generator=g, dtype=torch.float64)
    return x, y, 0.1 * torch.randn(6, 4, generator=g, dtype=torch.float64)


def linear(w0: torch.Tensor) -> nn.Linear:
    model = nn.Linear(w0.shape[1], w0.shape[0], bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(w0)
    return model


def muon_kwargs(lr: float, style: str, nesterov: bool = False) -> dict:
    """Regularized Muon at beta = 1 - GAMMA lr, no weight decay, lr_scale spectral (s = sqrt(6/4) on W0)."""
    return {
        "lr": lr,
        "momentum": 1 - GAMMA * lr,
        "momentum_style": style,
        "nesterov": nesterov,
        "orthogonalizer": "regularized",
        "reg_eps": 0.1,
        "reg_eps_units": "absolute",  # the identity is exact for a fixed eps
        "lr_scale": "spectral",
        "weight_decay": 0.0,
    }


def trajectory(lr: float, style: str, steps: int, nesterov: bool = False) -> dict[str, torch.Tensor]:
    """Plain loop; at each step the energy at (W_t, m_t) before ``opt.step()``: E, D, and the old f + sum K_eps(m)
    (unweighted, raw buffer) with the old predicted rate lr gamma <grad K(m), m>."""
    x, y, w0 = least_squares()
    model = linear(w0)
    opt = Muon(model.parameters(), **muon_kwargs(lr, style, nesterov))
    rows: list[tuple[float, float, float, float]] = []
    for _ in range(steps + 1):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        values = muon_energy([opt], loss)
        m = opt.state[model.weight]["momentum_buffer"]
        old_h = loss.item() + kinetic_energy(m, 0.1).item()
        old_rate = lr * GAMMA * (regularized_polar(m, 0.1) * m).sum().item()
        rows.append((values["energy/H"], values["energy/dissipation"], old_h, old_rate))
        opt.step()
    e, d, old_h, old_rate = torch.tensor(rows, dtype=torch.float64).T
    return {"E": e, "D": d, "old_H": old_h, "old_rate": old_rate}


def identity_error(energy: torch.Tensor, predicted: torch.Tensor) -> float:
    """sum_t |E_{t+1} - E_t + D_t| / sum_t D_t over the trajectory: O(lr) if D is the rate of E."""
    step = energy[1:] - energy[:-1]
    return ((step + predicted[:-1]).abs().sum() / predicted[:-1].sum()).item()


@pytest.mark.parametrize("style", ["ema", "heavy_ball"])
def test_energy_is_non_increasing_step_by_step(one_thread, style):
    run = trajectory(1e-2, style, steps=200)
    steps = run["E"][1:] - run["E"][:-1]
    assert (steps <= 1e-12 * run["E"][0]).all(), f"E rose at steps {torch.nonzero(steps > 0).flatten().tolist()}"
    assert (run["D"] >= 0).all()
    assert run["E"][-1] < 0.6 * run["E"][0]  # it actually descends (f from ~3.5 towards the noise floor)


@pytest.mark.parametrize(("style", "nesterov"), [("ema", False), ("heavy_ball", False), ("ema", True)])
def test_energy_decrease_matches_the_dissipation_to_first_order_in_lr(one_thread, style, nesterov):
    """At fixed gamma and horizon, sum |dE + D| / sum D halves with lr (first order). Nesterov is included because
    the docs claim it has the same continuous limit (u - m = (1 - beta)(G - m) = O(lr))."""
    runs = [trajectory(lr, style, round(HORIZON / lr), nesterov) for lr in LRS]
    errors = [identity_error(run["E"], run["D"]) for run in runs]
    ratios = [errors[i] / errors[i + 1] for i in range(len(errors) - 1)]
    assert all(1.6 < r < 2.4 for r in ratios), (errors, ratios)
    assert errors[-1] < 0.02, errors


def test_the_old_f_plus_k_rises_and_misses_its_predicted_rate(one_thread):
    """The old monitor's H = f + K_eps(m) with the old claim dH/dt = -gamma <grad K(m), m>: with m starting at 0 the
    buffer grows at rate gamma G while f falls at rate s |G|, so H rises (gamma = 5 > s = 1.22) and the per-step
    mismatch with the claimed rate does not shrink with lr; E on the same runs stays within first order."""
    runs = [trajectory(lr, "ema", round(HORIZON / lr)) for lr in LRS]
    for run in runs:
        assert (run["old_H"] - run["old_H"][0]).max() > 0.1 * run["old_H"][0]
    old = [identity_error(run["old_H"], run["old_rate"]) for run in runs]
    new = [identity_error(run["E"], run["D"]) for run in runs]
    assert min(old) > 0.3 and max(old) / min(old) < 1.2, old  # O(1), not shrinking
    assert new[-1] < 0.1 * old[-1]


def test_multi_group_energy_weights_each_group_by_its_own_coefficient(one_thread):
    """Two parallel maps (Y ~ X A^T + X B^T), an ema group and a heavy-ball group with different lr, gamma and eps:
    E = f + sum_g c_g K_g tracks D to first order; one common coefficient (the first group's) does not."""
    x, y, w0 = least_squares()

    def run(lr: float) -> tuple[float, float]:
        a, b = linear(w0), linear(-w0.flip(0))
        lr_b = lr / 2.5
        opt = Muon(
            [
                {"params": [a.weight], "lr": lr, "momentum": 1 - GAMMA * lr, "momentum_style": "ema"},
                {
                    "params": [b.weight],
                    "lr": lr_b,
                    "momentum": 1 - 2.0 * lr_b,
                    "momentum_style": "heavy_ball",
                    "reg_eps": 0.3,
                },
            ],
            nesterov=False,
            orthogonalizer="regularized",
            reg_eps=0.1,
            reg_eps_units="absolute",
            lr_scale="spectral",
        )
        c_a = lr / (GAMMA * lr)
        rows = []
        for _ in range(round(HORIZON / lr) + 1):
            opt.zero_grad()
            loss = ((a(x) + b(x) - y) ** 2).mean()
            loss.backward()
            values = muon_energy([opt], loss)
            k_a = kinetic_energy(opt.state[a.weight]["momentum_buffer"], 0.1).item()
            k_b = kinetic_energy(opt.state[b.weight]["momentum_buffer"], 0.3).item()
            common = loss.item() + c_a * math.sqrt(6 / 4) * (k_a + k_b)
            rows.append((values["energy/H"], values["energy/dissipation"], common))
            opt.step()
        e, d, common = torch.tensor(rows, dtype=torch.float64).T
        assert (e[1:] - e[:-1]).max() <= 0
        return identity_error(e, d), identity_error(common, d)

    errors, common = zip(*(run(lr) for lr in LRS), strict=True)
    assert all(1.6 < errors[i] / errors[i + 1] < 2.4 for i in range(2)), errors
    assert min(common) > 10 * errors[-1], (common, errors)


# -- the callback ---------------------------------------------------------------------------------------------------
class LeastSquaresModule(pl.LightningModule):
    """f = mean squared error of a bias-free linear map, optimized by :class:`Muon` with the given kwargs."""

    def __init__(self, w0: torch.Tensor, optimizer: dict) -> None:
        super().__init__()
        self.model = linear(w0)
        self.optimizer_kwargs = optimizer

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return ((self.model(x) - y) ** 2).mean()

    def configure_optimizers(self) -> Muon:
        return Muon(self.model.parameters(), **self.optimizer_kwargs)


@pytest.mark.parametrize("every", [1, 5])
def test_callback_logs_the_energy_of_the_plain_loop_with_accumulation(one_thread, tmp_path, every):
    """A Lightning fit on two half-batches with accumulate_grad_batches=2 (same gradient and f as full batch) logs,
    every ``every`` steps, exactly the (f, E) that muon_energy gives at (W_t, m_t) in the plain full-batch loop."""
    x, y, w0 = least_squares()
    kwargs, steps = muon_kwargs(1e-2, "ema"), 12
    halves = [(x[:32], y[:32]), (x[32:], y[32:])] * steps
    monitor = HamiltonianMonitor(every_n_steps=every)
    trainer = pl.Trainer(
        max_steps=steps,
        accumulate_grad_batches=2,
        callbacks=[monitor],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(LeastSquaresModule(w0, kwargs), torch.utils.data.DataLoader(halves, batch_size=None))

    model = linear(w0)
    opt = Muon(model.parameters(), **kwargs)
    expected = []
    for t in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        values = muon_energy([opt], loss)
        expected.append((t, values["energy/f"], values["energy/H"]))
        opt.step()
    assert [s for s, _, _ in monitor.history] == list(range(0, steps, every))
    for (_, f, e), (_, f_ref, e_ref) in zip(monitor.history, expected[::every], strict=True):
        assert f == pytest.approx(f_ref, rel=1e-10)
        assert e == pytest.approx(e_ref, rel=1e-10)
    assert expected[-1][2] < expected[1][2]
    assert (tmp_path / "figures" / "fit-1" / "energy.png").is_file()


@pytest.mark.parametrize("orthogonalizer", ["regularized", "newton_schulz"])
def test_monitor_runs_in_a_real_muon_fit(tmp_path, orthogonalizer):
    """The MoE quick config (Nesterov, AdamW parameters, minibatches: the identity does not hold, the monitor still
    logs): the pure function matches the SVD reference on the final buffers; logged H - f = c K when all Muon groups
    share lr and beta; the figure is written."""
    run_dir = tmp_path / "run"
    cli = main(
        [
            "fit",
            "--config",
            str(config_dir("moe_transformer") / "quick.yaml"),
            f"--run_dir={run_dir}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=6",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--model.init_args.optimizer.init_args.orthogonalizer={orthogonalizer}",
            "--model.init_args.optimizer.init_args.reg_eps=0.001",
            "--trainer.callbacks+=framework.callbacks.HamiltonianMonitor",
            "--trainer.callbacks.every_n_steps=1",
        ]
    )
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("energy/")}
    opt = cli.trainer.optimizers[0]
    kinetic, weighted, dissipation = reference_terms(opt)
    values = muon_energy([opt], 0.0)
    assert values["energy/K"] == pytest.approx(kinetic, rel=1e-9)
    assert values["energy/H"] == pytest.approx(weighted, rel=1e-9)
    assert values["energy/dissipation"] == pytest.approx(dissipation, rel=1e-9)
    assert kinetic > 0 and dissipation > 0
    coefficients = {
        g["lr"] / (1 - g["momentum"]) if g["momentum_style"] == "ema" else g["lr"]
        for g in opt.param_groups
        if g["use_muon"]
    }
    if len(coefficients) == 1:
        assert metrics["energy/H"] - metrics["energy/f"] == pytest.approx(coefficients.pop() * metrics["energy/K"])
    assert metrics["energy/dissipation"] > 0
    assert (run_dir / "figures" / "fit-1" / "energy.png").is_file()
