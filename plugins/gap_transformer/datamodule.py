"""The cohort DataModule: load or simulate, build anchors, split by participant, fit the LME on the training fold."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from framework.data import TensorSplitsDataModule, grouped_split
from framework_plugins.gap_transformer.anchors import Anchors, build_anchors
from framework_plugins.gap_transformer.lme import LMEFit, select_lme
from framework_plugins.gap_transformer.loader import load_adni_csv
from framework_plugins.gap_transformer.schema import FEATURES, clean_cohort
from framework_plugins.gap_transformer.synthetic import SimulatorConfig, simulate_cohort
from framework_plugins.gap_transformer.trajectory import TrajectoryLME, anchor_histories, fit_trajectory_lme


class CohortBatch(NamedTuple):
    """One batch of anchors (B of them; V history visits, F measures)."""

    values: torch.Tensor  # (B, V, F) z-scored measures, 0 where unobserved
    mask: torch.Tensor  # (B, V, F) 1 where observed
    times: torch.Tensor  # (B, V) years relative to the anchor (<= 0)
    visit_valid: torch.Tensor  # (B, V) bool, False on padding visits
    static: torch.Tensor  # (B, 4) z-scored static covariates
    y_ref: torch.Tensor  # (B,) the reference (LME) prediction of the 24-month change
    y: torch.Tensor  # (B,) the observed 24-month CDR-SB change


FIELDS = CohortBatch._fields


@dataclass(frozen=True)
class CohortSpec:
    """Everything the prepared cohort depends on (hashable: :func:`prepare_cohort` caches on it). Fields as in
    :class:`ADNICohort`."""

    source: Literal["synthetic", "csv"] = "synthetic"
    path: str | None = None
    n_participants: int = 400
    cohort_seed: int = 0
    simulator: SimulatorConfig = SimulatorConfig()
    split_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    max_visits: int = 10
    lme_candidates: tuple[str, ...] = ("MMSE", "ADAS13", "FAQ", "AGE", "APOE4", "Hippocampus", "YEARS")
    lme_forced: tuple[str, ...] = ("CDRSB",)
    lme_prediction: Literal["trajectory", "population", "blup"] = "trajectory"
    trajectory_covariates: tuple[str, ...] = ("APOE4", "AGE")
    horizon_years: float = 2.0


@dataclass(frozen=True)
class Cohort:
    """Everything ``setup`` derives: tensors per split (in :class:`CohortBatch` order), the anchors, the row
    indices of each split and the reference model fitted on the training fold (the trajectory LME, or the
    anchor-level BIC-selected LME for ``population`` / ``blup``)."""

    splits: dict[str, CohortBatch]
    anchors: Anchors
    index: dict[str, np.ndarray]
    lme: LMEFit | TrajectoryLME


def _zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (x - mean) / np.where(std > 0, std, 1.0)


@lru_cache(maxsize=4)
def prepare_cohort(spec: CohortSpec) -> Cohort:
    """Deterministic in ``spec`` (cached per process: every rank, resume and check sees the same cohort).

    Measures are z-scored with the training fold's visit-level means/SDs (unobserved -> 0 with mask 0), static
    covariates with the training anchors'; ``y_ref`` is the reference prediction: the conditional trajectory LME
    (``trajectory``, :mod:`~framework_plugins.gap_transformer.trajectory`) or the anchor-level LME (population or
    causal BLUP, :mod:`~framework_plugins.gap_transformer.lme`)."""
    synthetic = spec.source == "synthetic"
    raw = simulate_cohort(spec.n_participants, spec.cohort_seed, spec.simulator) if synthetic else None
    clean = clean_cohort(raw, "synthetic cohort") if raw is not None else load_adni_csv(spec.path)
    anchors = build_anchors(clean, spec.max_visits)
    index = grouped_split(anchors.rid, spec.val_fraction, spec.test_fraction, spec.split_seed)
    train_rows = clean[clean["RID"].isin(np.unique(anchors.rid[index["train"]]))]
    mean = train_rows[list(FEATURES)].mean().to_numpy(float)
    std = train_rows[list(FEATURES)].std().fillna(1.0).to_numpy(float)
    static = anchors.static[index["train"]]
    s_mean, s_std = np.nanmean(static, 0), np.nanstd(static, 0)
    table = anchors.covariates()
    train = index["train"]
    lme: LMEFit | TrajectoryLME
    if spec.lme_prediction == "trajectory":
        lme = fit_trajectory_lme(train_rows, spec.trajectory_covariates)
        history, covs = anchor_histories(clean, anchors.rid, anchors.years, spec.trajectory_covariates)
        y_ref = lme.predict_change(history, anchors.years, covs, spec.horizon_years)
    else:
        lme = select_lme(table.iloc[train], anchors.y[train], anchors.rid[train], spec.lme_candidates, spec.lme_forced)
        if spec.lme_prediction == "blup":
            y_ref = lme.predict_blup(table, anchors.y, anchors.rid, anchors.years, anchors.label_years)
        else:
            y_ref = lme.predict(table)
    observed = ~np.isnan(anchors.values)
    values = np.where(observed, _zscore(anchors.values, mean, std), 0.0)
    static_z = np.nan_to_num(_zscore(anchors.static, s_mean, s_std))
    arrays = CohortBatch(values, observed, anchors.times, anchors.visit_valid, static_z, y_ref, anchors.y)

    def as_tensor(field: str, array: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array[rows], dtype=torch.bool if field == "visit_valid" else torch.float32)

    splits = {
        name: CohortBatch(*(as_tensor(f, a, rows) for f, a in zip(FIELDS, arrays, strict=True)))
        for name, rows in index.items()
    }
    return Cohort(splits=splits, anchors=anchors, index=index, lme=lme)


class ADNICohort(TensorSplitsDataModule):
    """Anchors of an ADNI-style cohort, participant-level train / val / test, with the reference prediction.

    Batches are :class:`CohortBatch` named tuples: values (B, V, F) z-scored (0 = unobserved), mask (B, V, F),
    times (B, V) years relative to the anchor (<= 0), visit_valid (B, V) bool, static (B, 4), y_ref (B,), y (B,).

    Args:
        source: ``synthetic`` (the built-in simulator, default) or ``csv`` (a local ADNIMERGE / TADPOLE file).
        path: the CSV for ``source: csv``.
        n_participants: participants simulated (``source: synthetic`` only).
        cohort_seed: seed of the simulated cohort (``source: synthetic`` only).
        simulator: the simulator's knobs (:class:`~framework_plugins.gap_transformer.synthetic.SimulatorConfig`,
            e.g. ``simulator.gap_effect: false`` for the negative control; ``source: synthetic`` only).
        split_seed: participant-level split seed (the paper's repeated evaluation uses 0-4).
        val_fraction: fraction of participants in the validation fold, in [0, 1) (val + test < 1).
        test_fraction: fraction of participants in the test fold, in [0, 1) (val + test < 1).
        max_visits: history visits kept per anchor (the most recent).
        lme_candidates: covariates the anchor-level LME's forward BIC selection may add (anchor columns: the
            FEATURES, AGE, MALE, PTEDUCAT, APOE4, YEARS).
        lme_forced: covariates the LME always includes (same columns as ``lme_candidates``).
        lme_prediction: the reference ``y_ref``: ``trajectory`` (default: the random intercept + slope CDR-SB
            trajectory LME conditioned on the participant's visits at or before the anchor), or the anchor-level
            BIC-selected LME's ``population`` (fixed effects) or ``blup`` (adds the shrunken mean residual of the
            participant's earlier anchors whose outcome is already observed) prediction.
        trajectory_covariates: static covariates of the trajectory LME (each with a main effect and a time
            interaction; columns AGE, MALE, PTEDUCAT, APOE4).
        horizon_years: the trajectory LME predicts the change from the anchor to anchor + this many years.
        batch_size: anchors per batch.
        seed: seed of the train loader's shuffling (the split is set by ``split_seed``).
    """

    batch_type = CohortBatch

    def __init__(
        self,
        source: Literal["synthetic", "csv"] = "synthetic",
        path: str | None = None,
        n_participants: int = 400,
        cohort_seed: int = 0,
        simulator: SimulatorConfig = SimulatorConfig(),
        split_seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        max_visits: int = 10,
        lme_candidates: tuple[str, ...] = ("MMSE", "ADAS13", "FAQ", "AGE", "APOE4", "Hippocampus", "YEARS"),
        lme_forced: tuple[str, ...] = ("CDRSB",),
        lme_prediction: Literal["trajectory", "population", "blup"] = "trajectory",
        trajectory_covariates: tuple[str, ...] = ("APOE4", "AGE"),
        horizon_years: float = 2.0,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        if source not in ("synthetic", "csv"):
            raise ValueError(f"data.init_args.source={source!r} is unknown; use 'synthetic' or 'csv'.")
        if source == "csv" and not path:
            raise ValueError("data.init_args.source='csv' needs data.init_args.path=/path/to/ADNIMERGE.csv.")
        if lme_prediction not in ("trajectory", "population", "blup"):
            raise ValueError(
                f"data.init_args.lme_prediction={lme_prediction!r}; use 'trajectory', 'population' or 'blup'."
            )
        self.save_hyperparameters()
        self.spec = CohortSpec(
            source=source,
            path=path,
            n_participants=n_participants,
            cohort_seed=cohort_seed,
            simulator=simulator,
            split_seed=split_seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            max_visits=max_visits,
            lme_candidates=tuple(lme_candidates),
            lme_forced=tuple(lme_forced),
            lme_prediction=lme_prediction,
            trajectory_covariates=tuple(trajectory_covariates),
            horizon_years=horizon_years,
        )
        self.cohort: Cohort | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.cohort = prepare_cohort(self.spec)
        self.splits = dict(self.cohort.splits)
        report = self.cohort.anchors.report
        rank_zero_info(
            f"ADNICohort: {report['participants']} participants, {report['anchors']} anchors "
            f"({', '.join(f'{k} {len(v)}' for k, v in self.cohort.index.items())}); without a usable anchor: "
            f"{len(report['no_mci_visit'])} never MCI with CDR-SB, {len(report['no_visit_in_window'])} without a "
            f"CDR-SB visit 18-30 months after an MCI visit. Reference ({self.spec.lme_prediction}) covariates "
            f"{self.cohort.lme.covariates}."
        )
