"""Optimizer tools any model can use: named parameter groups, orthogonalization maps and the Muon family."""

from framework.optim.muon import Muon
from framework.optim.orthogonalize import kinetic_energy, newton_schulz, polar_svd, regularized_polar
from framework.optim.param_groups import default_no_decay, named_param_groups

__all__ = [
    "Muon",
    "default_no_decay",
    "kinetic_energy",
    "named_param_groups",
    "newton_schulz",
    "polar_svd",
    "regularized_polar",
]
