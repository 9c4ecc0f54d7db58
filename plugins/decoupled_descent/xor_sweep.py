"""High-dimensional XOR over step sizes and initialisations: how often DD and GD escape the saddle, and whether the
train-side error tracks the population test error, with many simulations side by side in one run.

Model (:mod:`~framework_plugins.decoupled_descent.simulators`, :class:`~framework.optim.readout.ReadoutNetwork`):
x = s mu_c / sqrt(d) + sqrt(Delta) z, y = +1 for c = 1 and -1 for c = 2; f(x) = sum_k r_k sigma(x . w_k / sqrt(d))
with K units, sigma = log cosh and fixed readout r = (1, -1). W = 0 is a critical point, so a small start sits near a
saddle from which GD must escape to learn both directions mu_1, mu_2.

Simulations. For every cell (eta, s) of ``lrs`` x ``init_scales`` and ``repeats`` draws, one start
W^0 ~ N(0, s^2 I) (K, d) from the seeded global RNG; from it one DD arm (gradient at P = A - Delta M) and one GD arm
(P = A), both plain full-batch SGD on the summed loss with step eta and ridge lam = ``weight_decay``:

    W^{t+1} = W^t - eta (G^T X / sqrt(d) + lam W^t),   G = dl/dP (n, K)
    DD:  M^{t+1} = M^t ((1 - eta lam) I - eta C_t)^T - eta G^t,   C_t = (Delta / d) sum_i H_i   (OnsagerMemory's rule)

All arms are one tensor (2, S, K, d) (method, simulation), stepped together: per step one (n, d) x (d, 2SK) matmul.
The arms' step sizes differ, so the module folds eta and lam into the gradient it hands to a unit-step
``torch.optim.SGD`` (W <- W - eta (grad + lam W), exactly plain SGD's update for each arm).

Population test error (no test sample needed). Given the cluster (c, s), the preactivations
a = x W^T / sqrt(d) ~ N(s m_c, Delta Q) with m_c = mu_c W^T / d (K,), Q = W W^T / d (K, K), so

    e(W) = (1/4) sum_{c, s} P(y_c f(s m_c + sqrt(Delta) L xi) < 0),   L L^T = Q,  xi ~ N(0, I_K),

estimated with ``mc_samples`` fixed draws of xi (common to every arm and step: a K-dimensional Monte-Carlo
integral, standard error <= 0.5 / sqrt(4 * mc_samples)); ``test/sampled_vs_exact`` checks it against the test split.

Per arm and iterate t = 0..T the module records the population error e_t, the raw train error (from A) and, for DD,
the corrected train error (from P). Its criterion is the train error the method itself reports (DD: corrected;
GD: raw). Logged at test per simulation j (order: lr, then init scale, then repeat) and method in (dd, gd):
``test/sim<j>/lr``, ``test/sim<j>/init_scale``, ``test/sim<j>/<method>/error`` (e_T), ``/best_error`` (min_t e_t,
t >= 1: an oracle), ``/stopped_error`` (e_t at the earliest argmin over t >= 1 of the method's criterion: stopping on
the training data alone), ``/tracking_gap`` (|criterion_T - e_T|), ``/max_tracking_gap`` (max over t >= 1), ``/escaped``
(1 if e_T <= ``escape_error``), ``/tracks`` (1 if max_tracking_gap <= ``track_tolerance``); and per method the
means over the run's simulations ``test/<method>/escaped``, ``/tracks``, ``/error``, ``/max_tracking_gap``.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from framework.module import FrameworkModule
from framework.optim.decoupled_descent import onsager_matrix, per_sample_derivatives
from framework.optim.readout import ReadoutNetwork, classification_error

METHODS = ("dd", "gd")
SUMMARIES = ("error", "best_error", "stopped_error", "tracking_gap", "max_tracking_gap", "escaped", "tracks")


def unit_sgd(params: object) -> torch.optim.Optimizer:
    """SGD with lr 1 and nothing else: the study writes eta (grad + lam W) into ``.grad`` itself."""
    return torch.optim.SGD(params, lr=1.0)


class XorSplits(Protocol):
    """What :class:`XorSweepStudy` reads from its datamodule (:class:`DecoupledDescentData` with task xor)."""

    n_features: int  # d
    n_train: int  # n: the Onsager memory holds one row per sample
    noise_var: float  # Delta
    means: torch.Tensor | None  # (mu_1, mu_2) (2, d): the population test error needs them (task xor)
    splits: dict[str, tuple[torch.Tensor, ...]]  # "train": (x, y, index)


def population_error(
    net: ReadoutNetwork, weights: torch.Tensor, means: torch.Tensor, noise_var: float, xi: torch.Tensor
) -> torch.Tensor:
    """Monte-Carlo population 0-1 error of f on the XOR mixture (module doc) for a batch of first layers.

    weights: (..., K, d); means: (2, d), mu_1 labelled +1 and mu_2 labelled -1; xi: (N, K) standard normal draws.
    Returns (...,) float64. Each of the four clusters (c, s) has weight 1/4; a tie f = 0 counts 1/2.
    """
    w = weights.double()
    d = w.shape[-1]
    gram = w @ w.transpose(-1, -2) / d  # Q (..., K, K)
    jitter = 1e-12 * torch.eye(w.shape[-2], dtype=w.dtype) * gram.diagonal(dim1=-2, dim2=-1).mean(-1)[..., None, None]
    noise = math.sqrt(noise_var) * xi.double() @ torch.linalg.cholesky(gram + jitter).transpose(-1, -2)  # (..., N, K)
    error = torch.zeros(w.shape[:-2], dtype=torch.float64)
    for mu, label in zip(means.double(), (1.0, -1.0), strict=True):
        centre = (w @ mu / d)[..., None, :]  # s m_c, (..., 1, K)
        for sign in (1.0, -1.0):
            y = torch.full(noise.shape[:-1], label, dtype=torch.float64)
            error += classification_error(net.score(sign * centre + noise), y).mean(-1) / 4
    return error


def trajectory_summaries(
    test: torch.Tensor, criterion: torch.Tensor, escape_error: float, track_tolerance: float
) -> dict[str, torch.Tensor]:
    """The per-arm summaries of the module doc from the recorded curves.

    test, criterion: (T + 1, ...) population error e_t and the method's own train criterion of W^t, t = 0..T; the
    start t = 0 is left out. Returns tensors of shape (...): ``error`` e_T, ``best_error`` min_t e_t,
    ``stopped_error`` e_t at the earliest argmin_t of the criterion, ``tracking_gap`` |criterion_T - e_T|,
    ``max_tracking_gap`` max_t |criterion_t - e_t|, ``escaped`` 1[e_T <= escape_error] and ``tracks``
    1[max_tracking_gap <= track_tolerance].
    """
    test, criterion = test[1:], criterion[1:]
    gap = (criterion - test).abs()
    out = {
        "error": test[-1],
        "best_error": test.min(0).values,
        "stopped_error": test.gather(0, criterion.argmin(0, keepdim=True))[0],
        "tracking_gap": gap[-1],
        "max_tracking_gap": gap.max(0).values,
    }
    out["escaped"] = (out["error"] <= escape_error).double()
    out["tracks"] = (out["max_tracking_gap"] <= track_tolerance).double()
    return out


class XorSweepStudy(FrameworkModule):
    """DD and GD on one XOR data draw from ``len(lrs) * len(init_scales) * repeats`` paired starts (module doc).

    Args:
        n_features: d (must equal the data's ``dim``).
        width: K, hidden units.
        readout: the hidden units' fixed readout weights, K values (null = (1, -1) for K = 2).
        lrs: step sizes eta (summed loss), each > 0.
        init_scales: stds s of the starts W^0 ~ N(0, s^2), each > 0 (W = 0 is a critical point of log cosh).
        repeats: starts per (eta, s) cell (>= 1).
        weight_decay: the ridge lam (>= 0), the same for every arm.
        escape_error: an arm has escaped when its final population error is <= this (in (0, 0.5)).
        track_tolerance: an arm tracks when max_t |criterion_t - e_t| <= this (> 0).
        mc_samples: draws of xi for the population error (>= 100).
    """

    def __init__(
        self,
        n_features: int = 1000,
        width: int = 2,
        readout: list[float] | None = None,
        lrs: list[float] | None = None,
        init_scales: list[float] | None = None,
        repeats: int = 1,
        weight_decay: float = 0.05,
        escape_error: float = 0.25,
        track_tolerance: float = 0.05,
        mc_samples: int = 20_000,
    ) -> None:
        super().__init__(optimizer=unit_sgd)
        self.save_hyperparameters()
        readout = list(readout or [1.0, -1.0])
        lrs, init_scales = list(lrs or [0.25, 0.5]), list(init_scales or [0.5, 1.0])
        if (
            min(lrs) <= 0
            or min(init_scales) <= 0
            or repeats < 1
            or weight_decay < 0
            or not 0 < escape_error < 0.5
            or track_tolerance <= 0
            or mc_samples < 100
        ):
            raise ValueError(
                f"model.init_args: lrs={lrs} and init_scales={init_scales} (each > 0), repeats={repeats} (>= 1), "
                f"weight_decay={weight_decay} (>= 0), escape_error={escape_error} (in (0, 0.5)), "
                f"track_tolerance={track_tolerance} (> 0), mc_samples={mc_samples} (>= 100): fix the one out of range."
            )
        self.automatic_optimization = False
        self.net = ReadoutNetwork(n_features, width, "logcosh", readout)  # score and loss only; its W is unused
        self.net.requires_grad_(False)
        self.sims = [(lr, s) for lr in lrs for s in init_scales for _ in range(repeats)]
        scales = torch.tensor([s for _, s in self.sims])[:, None, None]
        start = torch.randn(len(self.sims), width, n_features) * scales  # W^0 per simulation, shared by DD and GD
        self.weights = torch.nn.Parameter(start[None].repeat(2, 1, 1, 1))  # (method, sim, K, d)
        self.register_buffer("lr", torch.tensor([lr for lr, _ in self.sims], dtype=torch.float64))
        self.register_buffer("memory", torch.zeros(0, dtype=torch.float64))  # DD's M (S, n, K), allocated in setup
        self.register_buffer("xi", torch.randn(mc_samples, width, generator=torch.Generator().manual_seed(0)))
        self.history: dict[str, list[list[float]]] = {k: [] for k in ("test", "raw", "corrected")}
        self.sampled = torch.zeros(2, len(self.sims), dtype=torch.float64)
        self.sampled_count = 0

    def setup(self, stage: str) -> None:
        self._data = data = self.data(XorSplits)
        if data.n_features != self.hparams.n_features or data.means is None:
            raise ValueError(
                f"model.init_args.n_features={self.hparams.n_features} needs XOR data (task xor) with as many "
                f"features; got {data.n_features} features (cluster means known: {data.means is not None})."
            )
        if self.trainer is not None and self.trainer.world_size > 1:
            raise ValueError("XorSweepStudy runs in one process (every arm sees the full batch); use devices 1.")
        shape = (len(self.sims), data.n_train, self.hparams.width)
        if self.memory.shape != shape:
            self.memory = torch.zeros(shape, dtype=torch.float64, device=self.weights.device)

    def _preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """Raw preactivations A of every arm, (2, S, n, K). x: (n, d)."""
        w = self.weights
        return (x @ w.reshape(-1, w.shape[-1]).T / math.sqrt(w.shape[-1])).T.reshape(*w.shape[:3], -1).transpose(-1, -2)

    def _corrected(self, a: torch.Tensor) -> torch.Tensor:
        """P: DD's arms A - Delta M, GD's arms A. a: (2, S, n, K)."""
        return torch.stack([a[0] - self._data.noise_var * self.memory.to(a.dtype), a[1]])

    def _record(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Append each arm's population error, raw and corrected train errors of the current W^t."""
        with torch.no_grad():
            a = self._preactivations(x)
            raw = classification_error(self.net.score(a), y).mean(-1)
            corrected = classification_error(self.net.score(self._corrected(a)), y).mean(-1)
            test = population_error(self.net, self.weights.detach(), self._data.means, self._data.noise_var, self.xi)
        for key, value in (("test", test), ("raw", raw), ("corrected", corrected)):
            self.history[key].append(value.double().flatten().tolist())

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y, index = batch
        n = self._data.n_train
        if index.numel() != n or torch.unique(index).numel() != n:
            raise ValueError(
                f"XorSweepStudy is full-batch: a step saw {index.numel()} of {n} samples; leave "
                "data.init_args.batch_size null and do not limit the training batches."
            )
        order = torch.argsort(index)  # memory rows are sample ids
        x, y = x[order], y[order]
        self._record(x, y)
        d, lam = self.hparams.n_features, self.hparams.weight_decay
        p = self._corrected(self._preactivations(x).detach()).requires_grad_(True)
        flat = p.reshape(-1, p.shape[-1])
        loss = self.net.loss(flat, y.repeat(p.shape[0] * p.shape[1])).sum()
        grad, hessians = per_sample_derivatives(loss, flat)
        grad, hessians = grad.reshape(p.shape), hessians.reshape(*p.shape, p.shape[-1])
        eta = self.lr.to(x.dtype)[None, :, None, None]
        w_grad = grad.transpose(-1, -2) @ x / math.sqrt(d)  # G^T X / sqrt(d), (2, S, K, d)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.weights.grad = eta * (w_grad + lam * self.weights.detach())
        optimizer.step()
        onsager = torch.stack([onsager_matrix(h, self._data.noise_var, d) for h in hessians[0].double()])  # (S, K, K)
        coupling = lam * torch.eye(p.shape[-1], dtype=torch.float64) + onsager  # lam I + C_t per simulation
        drive = grad[0].double() + self.memory @ coupling.transpose(-1, -2)
        self.memory = self.memory - self.lr[:, None, None] * drive  # OnsagerMemory.step with momentum 0
        self.log("train/dd_population_error", sum(self.history["test"][-1][: len(self.sims)]) / len(self.sims))

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y, _ = batch
        with torch.no_grad():
            self.sampled += classification_error(self.net.score(self._preactivations(x)), y).sum(-1).double().cpu()
        self.sampled_count += len(y)

    def on_test_epoch_end(self) -> None:
        x, y, _ = (t.to(self.device) for t in self._data.splits["train"][:3])
        self._record(x, y)
        hist = {k: torch.tensor(v, dtype=torch.float64).reshape(len(v), 2, -1) for k, v in self.history.items()}
        criterion = torch.stack([hist["corrected"][:, 0], hist["raw"][:, 1]], dim=1)  # (T + 1, 2, S)
        summary = trajectory_summaries(hist["test"], criterion, self.hparams.escape_error, self.hparams.track_tolerance)
        for j, (lr, scale) in enumerate(self.sims):
            self.log(f"test/sim{j}/lr", float(lr))
            self.log(f"test/sim{j}/init_scale", float(scale))
            for m, method in enumerate(METHODS):
                for key in SUMMARIES:
                    self.log(f"test/sim{j}/{method}/{key}", float(summary[key][m, j]))
        for m, method in enumerate(METHODS):
            for key in ("error", "max_tracking_gap", "escaped", "tracks"):
                self.log(f"test/{method}/{key}", float(summary[key][m].mean()))
        sampled = self.sampled / max(self.sampled_count, 1)
        self.log("test/sampled_vs_exact", float((sampled - hist["test"][-1]).abs().max()))
        self.history = {k: v[:-1] for k, v in self.history.items()}  # a second test starts from the same history
        self.sampled.zero_()
        self.sampled_count = 0

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Scores f of every arm, (b, 2, S) (method, simulation)."""
        return self.net.score(self._preactivations(batch[0])).permute(2, 0, 1)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["xor_sweep_history"] = self.history

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = checkpoint.get("xor_sweep_history", self.history)
        memory = checkpoint["state_dict"].get("memory")
        if memory is not None:
            self.memory = torch.zeros_like(memory)
