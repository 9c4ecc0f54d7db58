"""Callbacks any plugin can use. The CLI adds ``AtomicModelCheckpoint``, ``FiniteLossGuard`` and ``RNGStateCallback``
to every run."""

from framework.callbacks.checkpoint import AtomicModelCheckpoint
from framework.callbacks.decoupled_probe import DecoupledProbe, ProbeFeatures
from framework.callbacks.finite_loss import FiniteLossGuard, NonFiniteLossError
from framework.callbacks.hamiltonian import HamiltonianMonitor
from framework.callbacks.predictions import PredictionWriter
from framework.callbacks.rng_state import RNGStateCallback

__all__ = [
    "AtomicModelCheckpoint",
    "DecoupledProbe",
    "FiniteLossGuard",
    "HamiltonianMonitor",
    "NonFiniteLossError",
    "PredictionWriter",
    "ProbeFeatures",
    "RNGStateCallback",
]
