"""Zero-cost validation: early stopping and step-size / weight-decay selection on the training data alone.

The paper's claim (Lovig, arXiv 2604.27883, abstract): DD's corrected train error tracks the test error along the
trajectory, so a practitioner can stop early and select hyperparameters with all n samples used for training and
none held out. :class:`EarlyStoppingStudy` runs that protocol on one data draw of the Gaussian mixture
x = y v / sqrt(d) + sqrt(Delta) z and compares it with the usual ways of choosing where to stop.

Arms. Every arm is a logistic regression w (d,) started from the **same** W^0 ~ N(0, init_scale^2 I_d) (drawn once
from the seeded global RNG; a random start gives the test error an interior minimum over t, whereas from W^0 = 0
the first GD step is already the near-optimal mean-difference classifier) and trained for T full-batch steps of the
summed loss by SGD. For every cell c = (eta, lam) of the grid ``lrs`` x ``weight_decays``:

    dd       decoupled descent on all n samples;  its criterion at t: the corrected train error (from P = A - Delta M)
    gd       plain GD on all n samples;           criterion: the raw train error (from A)
    fold k   plain GD on the samples outside fold F_k = {i : i mod folds = k}, k = 0..folds-1;
             criterion: the error on F_k (held out from that arm's training)

and every arm records e_t = Phi(-m_t / sqrt(Delta q_t)), m_t = v.w_t/d, q_t = ||w_t||^2/d: the exact test error of
w_t (:func:`~framework_plugins.decoupled_descent.metrics.gmm_exact_error`), i.e. the error on an infinite test set.

Selection rules, each an argmin over the same budget of candidates (every cell and every t = 1..T; ties go to the
first cell in grid order, then to the earliest t):

    dd           argmin_(c,t) corrected train error of the dd arms      -> e of that dd iterate
    gd_train     argmin_(c,t) raw train error of the gd arms            -> e of that gd iterate
    gd_holdout   argmin_(c,t) error on F_0 of the fold-0 arms           -> e of that fold-0 iterate (trained on
                 (n - |F_0|) samples: 80/20 for folds = 5)
    gd_kfold     argmin_(c,t) mean_k error on F_k of the fold-k arms    -> e of the gd (all n) iterate at (c, t)
                 (k-fold cross-validation, then the refit on all n)
    oracle_dd / oracle_gd / oracle_holdout: argmin_(c,t) e over the dd / gd / fold-0 arms (uses the test set)

The **regret** of a rule is e(selected) - min e over the candidates it chose among (dd -> oracle_dd; gd_train and
gd_kfold -> oracle_gd; gd_holdout -> oracle_holdout): what selecting without the test set costs.
"""

from __future__ import annotations

from typing import Protocol

import torch
from lightning.pytorch.cli import OptimizerCallable

from framework.module import FrameworkModule
from framework.optim.decoupled_descent import OnsagerMemory, onsager_matrix, per_sample_derivatives
from framework.optim.param_groups import check_group_values_representable
from framework.optim.readout import ReadoutNetwork, classification_error
from framework_plugins.decoupled_descent.metrics import gmm_exact_error

RULES = ("dd", "gd_train", "gd_holdout", "gd_kfold")
ORACLES = {"dd": "oracle_dd", "gd_train": "oracle_gd", "gd_holdout": "oracle_holdout", "gd_kfold": "oracle_gd"}


def default_sgd(params: object) -> torch.optim.Optimizer:
    """Plain SGD; every arm's lr and weight decay are overwritten by its grid cell."""
    return torch.optim.SGD(params, lr=0.1)


class GaussianMixtureSplits(Protocol):
    """What :class:`EarlyStoppingStudy` reads from its datamodule (:class:`DecoupledDescentData` with task gmm)."""

    n_features: int  # d
    n_train: int  # n: the Onsager memory holds one row per sample
    noise_var: float  # Delta of the Gaussian mixture (the Onsager correction and the exact test error)
    signal: torch.Tensor | None  # v (d,): the exact test error needs it (task gmm)


def select(criterion: torch.Tensor, test: torch.Tensor) -> dict[str, float]:
    """The argmin of ``criterion`` over (cell, t) and the test error there.

    criterion, test: (cells, T) values of the candidates W^t, t = 1..T, of each cell; ties go to the first cell,
    then to the earliest t (row-major argmin). Returns ``cell`` (int), ``step`` (t, 1-based), ``criterion`` and
    ``error`` (test at the argmin).
    """
    flat = int(torch.argmin(criterion.reshape(-1)))
    cell, t = divmod(flat, criterion.shape[1])
    return {"cell": cell, "step": t + 1, "criterion": float(criterion[cell, t]), "error": float(test[cell, t])}


def selections(criterion: torch.Tensor, test: torch.Tensor, folds: int) -> dict[str, dict[str, float]]:
    """Every rule and oracle of the module doc from the recorded curves.

    criterion, test: (kinds, cells, T) for the arm kinds (dd, gd, fold 0, ..., fold folds-1) in that order, the
    cells of the grid and t = 1..T. Returns rule name -> :func:`select`'s dict plus ``regret`` for the rules.
    """
    dd, gd, fold0 = 0, 1, 2
    out = {
        "dd": select(criterion[dd], test[dd]),
        "gd_train": select(criterion[gd], test[gd]),
        "gd_holdout": select(criterion[fold0], test[fold0]),
        "gd_kfold": select(criterion[fold0 : fold0 + folds].mean(0), test[gd]),
        "oracle_dd": select(test[dd], test[dd]),
        "oracle_gd": select(test[gd], test[gd]),
        "oracle_holdout": select(test[fold0], test[fold0]),
    }
    for rule in RULES:
        out[rule]["regret"] = out[rule]["error"] - out[ORACLES[rule]]["error"]
    return out


def cell_summaries(criterion: torch.Tensor, test: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per grid cell (one (lr, weight decay)): what each rule would get if the cell were fixed, to show where in the
    grid the optimum lies.

    criterion, test: (kinds, cells, T) as in :func:`selections`. Returns (cells,) tensors: ``oracle_dd`` /
    ``oracle_gd`` = min_t test error of the cell's dd / gd arm; ``dd`` / ``gd_holdout`` = the test error of the
    dd / fold-0 arm at the argmin over t of its own criterion (earliest t among ties).
    """
    dd, gd, fold0 = 0, 1, 2
    at_argmin = {k: test[k].gather(-1, criterion[k].argmin(-1, keepdim=True))[:, 0] for k in (dd, fold0)}
    return {
        "oracle_dd": test[dd].min(-1).values,
        "oracle_gd": test[gd].min(-1).values,
        "dd": at_argmin[dd],
        "gd_holdout": at_argmin[fold0],
    }


class EarlyStoppingStudy(FrameworkModule):
    """The zero-cost-validation protocol of the module doc on one draw of the Gaussian mixture (one seed).

    Trains ``(2 + folds) * len(lrs) * len(weight_decays)`` logistic-regression arms side by side (one optimizer,
    one parameter group per arm, one step per training step), records each arm's selection criterion and exact
    test error for every iterate, and at test logs for each rule r in ``dd``, ``gd_train``, ``gd_holdout``,
    ``gd_kfold`` and each oracle: ``test/<r>/error`` (exact test error of the selected iterate),
    ``test/<r>/step``, ``test/<r>/lr``, ``test/<r>/weight_decay``, and for the rules ``test/<r>/regret``; per grid
    cell c (in the order lr, then weight decay) ``test/cell<c>/lr``, ``/weight_decay`` and :func:`cell_summaries`'
    ``/oracle_dd``, ``/oracle_gd``, ``/dd``, ``/gd_holdout``. Also
    ``test/dd/mean_tracking_gap`` and ``test/gd/mean_tracking_gap`` (mean over cells and t = 1..T of |criterion -
    test error| of the dd and gd arms) and ``test/sampled_vs_exact`` (max over arms of |error of W^T on the test
    split - exact error of W^T|: a check of the closed form on fresh draws).

    Args:
        n_features: d, the input dimension (must equal the data's ``dim``).
        lrs: the step sizes (for the summed loss) of the grid, each > 0; null = [0.2, 0.4, 0.8].
        weight_decays: the ridges lam of the grid, each >= 0; null = [0.0, 0.1].
        folds: number of folds (>= 2); fold 0 is the hold-out split (folds = 5: 80/20), all folds the k-fold
            cross-validation.
        init_scale: std of the common start W^0 ~ N(0, init_scale^2) (> 0).
        optimizer: ``torch.optim.SGD`` factory (momentum / dampening apply to every arm; lr and weight decay are
            replaced by each arm's grid cell); default plain SGD.
    """

    def __init__(
        self,
        n_features: int = 500,
        lrs: list[float] | None = None,
        weight_decays: list[float] | None = None,
        folds: int = 5,
        init_scale: float = 1.0,
        optimizer: OptimizerCallable = default_sgd,
    ) -> None:
        super().__init__(optimizer=optimizer)
        self.save_hyperparameters(ignore=["optimizer"])
        lrs, weight_decays = list(lrs or [0.2, 0.4, 0.8]), list(weight_decays or [0.0, 0.1])
        if min(lrs) <= 0 or min(weight_decays) < 0 or folds < 2 or init_scale <= 0:
            raise ValueError(
                f"model.init_args: lrs={lrs} (each > 0), weight_decays={weight_decays} (each >= 0), folds={folds} "
                f"(>= 2) and init_scale={init_scale} (> 0) are out of range."
            )
        self.automatic_optimization = False
        self.cells = [(lr, wd) for lr in lrs for wd in weight_decays]
        self.kinds = ["dd", "gd", *(f"fold{k}" for k in range(folds))]
        start = torch.randn(1, n_features) * init_scale  # W^0, shared by every arm
        self.nets = torch.nn.ModuleList()
        for _ in range(len(self.kinds) * len(self.cells)):
            net = ReadoutNetwork(n_features)
            net.first.weight.data.copy_(start)
            self.nets.append(net)
        self.memories = torch.nn.ModuleList(OnsagerMemory() for _ in self.cells)  # the dd arms come first
        self.history: dict[str, list[list[float]]] = {"criterion": [], "test": []}  # per t: one value per arm
        self.sampled_errors = torch.zeros(len(self.nets), dtype=torch.float64)
        self.sampled_count = 0

    def setup(self, stage: str) -> None:
        self._data = data = self.data(GaussianMixtureSplits)
        if data.n_features != self.hparams.n_features or data.signal is None:
            raise ValueError(
                f"model.init_args.n_features={self.hparams.n_features} needs Gaussian-mixture data (task gmm) with "
                f"as many features; got {data.n_features} features (signal known: {data.signal is not None})."
            )
        if self.trainer is not None and self.trainer.world_size > 1:
            raise ValueError("EarlyStoppingStudy runs in one process (every arm sees the full batch); use devices 1.")
        for memory in self.memories:
            memory.noise_var = data.noise_var
            memory.allocate(data.n_train)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """One optimizer, one parameter group per arm with that arm's cell's lr and weight decay."""
        groups = [
            {"params": list(net.parameters()), "lr": lr, "weight_decay": wd}
            for net, (lr, wd) in zip(self.nets, self.cells * len(self.kinds), strict=True)
        ]
        optimizer = self.optimizer_factory(groups)
        if not isinstance(optimizer, torch.optim.SGD) or any(
            g["nesterov"] or g["maximize"] for g in optimizer.param_groups
        ):
            raise ValueError(
                f"model.init_args.optimizer: the study needs torch.optim.SGD without nesterov/maximize (the Onsager "
                f"memory replays SGD's linear filter), got {type(optimizer).__name__}."
            )
        check_group_values_representable(optimizer)
        return optimizer

    def _test_errors(self) -> list[float]:
        """Each arm's exact test error Phi(-m / sqrt(Delta q)) for its current w (one float per arm)."""
        v, noise_var = self._data.signal, self._data.noise_var
        return [gmm_exact_error(net.first.weight[0].detach(), v, noise_var)["exact_error"] for net in self.nets]

    def _criteria(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> list[float]:
        """Each arm's selection criterion for its current W (the module doc's table). x: (n, d), y, index: (n,)."""
        criterion = []
        folds = len(self.kinds) - 2
        with torch.no_grad():
            for arm, net in enumerate(self.nets):
                kind, cell = divmod(arm, len(self.cells))
                a = net.preactivations(x)
                error = classification_error(net.score(a), y)
                if kind == 0:
                    error = classification_error(net.score(self.memories[cell].correct(a, index)), y)
                criterion.append((error if kind < 2 else error[index % folds == kind - 2]).mean().item())
        return criterion

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y, index = batch
        if index.numel() != self._data.n_train:
            raise ValueError(
                f"EarlyStoppingStudy is full-batch: a step saw {index.numel()} of {self._data.n_train} samples; "
                "leave data.init_args.batch_size null and do not limit the training batches below one."
            )
        criterion = self._criteria(x, y, index)
        self.history["criterion"].append(criterion)
        self.history["test"].append(self._test_errors())
        optimizer = self.optimizers()
        optimizer.zero_grad()
        folds, onsager_inputs = len(self.kinds) - 2, []
        for arm, net in enumerate(self.nets):
            kind, cell = divmod(arm, len(self.cells))
            rows = slice(None) if kind < 2 else index % folds != kind - 2
            raw_p = net.preactivations(x[rows])
            p = self.memories[cell].correct(raw_p, index) if kind == 0 else raw_p
            loss = net.loss(p, y[rows]).sum()
            if kind == 0:
                onsager_inputs.append(per_sample_derivatives(loss, p))
            self.manual_backward(loss)
        optimizer.step()
        for cell, (memory, (grad, hessians)) in enumerate(zip(self.memories, onsager_inputs, strict=True)):
            group = optimizer.param_groups[cell]
            sgd = {k: float(group[k]) for k in ("lr", "momentum", "dampening", "weight_decay")}
            memory.step(index, grad, onsager_matrix(hessians, memory.noise_var, self.hparams.n_features), sgd)
        self.log("train/dd_corrected_error", sum(criterion[: len(self.cells)]) / len(self.cells))  # cell mean

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y, _ = batch
        with torch.no_grad():
            for arm, net in enumerate(self.nets):
                self.sampled_errors[arm] += classification_error(net(x), y).sum().double().cpu()
        self.sampled_count += len(y)

    def on_test_epoch_end(self) -> None:
        x, y, index = (t.to(self.device) for t in self._data.splits["train"][:3])
        criterion = self._criteria(x, y, index)
        final = self._test_errors()
        crit = torch.tensor([*self.history["criterion"][1:], criterion], dtype=torch.float64)  # (T, arms), t = 1..T
        test = torch.tensor([*self.history["test"][1:], final], dtype=torch.float64)
        shape = (len(self.kinds), len(self.cells), len(crit))
        crit, test = (a.T.reshape(shape) for a in (crit, test))
        for rule, chosen in selections(crit, test, len(self.kinds) - 2).items():
            lr, wd = self.cells[chosen.pop("cell")]
            chosen.pop("criterion")
            for key, value in {**chosen, "lr": lr, "weight_decay": wd}.items():
                self.log(f"test/{rule}/{key}", float(value))
        for key, values in cell_summaries(crit, test).items():
            for cell, value in enumerate(values.tolist()):
                self.log(f"test/cell{cell}/{key}", value)
        for cell, (lr, wd) in enumerate(self.cells):
            self.log(f"test/cell{cell}/lr", float(lr))
            self.log(f"test/cell{cell}/weight_decay", float(wd))
        for kind in (0, 1):
            self.log(f"test/{self.kinds[kind]}/mean_tracking_gap", (crit[kind] - test[kind]).abs().mean().item())
        sampled = self.sampled_errors / max(self.sampled_count, 1)
        self.log("test/sampled_vs_exact", (sampled - torch.tensor(final, dtype=torch.float64)).abs().max().item())
        self.sampled_errors.zero_()
        self.sampled_count = 0

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Scores of every arm, (b, arms) in the order (kind, cell)."""
        return torch.stack([net(batch[0]) for net in self.nets], dim=1)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["early_stopping_history"] = self.history

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = checkpoint.get("early_stopping_history", self.history)
