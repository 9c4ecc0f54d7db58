"""Callbacks any plugin can use. The CLI adds ``AtomicModelCheckpoint``, ``FiniteGuard``, ``RNGStateCallback``,
``LoaderStateCallback``, ``PredictionWriter`` and ``MetricHistory`` to every run."""

from framework.callbacks.checkpoint import AtomicModelCheckpoint
from framework.callbacks.decoupled_probe import DecoupledProbe, ProbeFeatures
from framework.callbacks.finite_guard import FiniteGuard, NonFiniteError
from framework.callbacks.hamiltonian import HamiltonianMonitor
from framework.callbacks.loader_state import LoaderStateCallback
from framework.callbacks.metric_history import MetricHistory, read_history
from framework.callbacks.predictions import PredictionWriter
from framework.callbacks.progress import LineProgressBar, PlainModelSummary
from framework.callbacks.rng_state import RNGStateCallback

__all__ = [
    "AtomicModelCheckpoint",
    "DecoupledProbe",
    "FiniteGuard",
    "HamiltonianMonitor",
    "LineProgressBar",
    "LoaderStateCallback",
    "MetricHistory",
    "NonFiniteError",
    "PlainModelSummary",
    "PredictionWriter",
    "ProbeFeatures",
    "RNGStateCallback",
    "read_history",
]
