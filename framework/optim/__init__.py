"""Optimizer tools any model can use: named parameter groups, orthogonalization maps and the Muon family."""

from framework.optim.decoupled_descent import OnsagerMemory, onsager_matrix, per_sample_derivatives, sgd_coefficients
from framework.optim.muon import Muon
from framework.optim.orthogonalize import kinetic_energy, newton_schulz, polar_svd, regularized_polar
from framework.optim.param_groups import default_no_decay, named_param_groups
from framework.optim.schedules import CosineAnnealingToEnd

__all__ = [
    "CosineAnnealingToEnd",
    "Muon",
    "OnsagerMemory",
    "default_no_decay",
    "kinetic_energy",
    "named_param_groups",
    "newton_schulz",
    "onsager_matrix",
    "per_sample_derivatives",
    "polar_svd",
    "regularized_polar",
    "sgd_coefficients",
]
