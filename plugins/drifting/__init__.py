"""Generative drifting: one-step generators trained by kernel drifting fields (Laplace, Matern 3/2 and 5/2,
Gaussian), with the unnormalised field norm as the convergence signal and a missing-mass monitor.

Papers: Deng, Li, Li, Du & He, "Generative Modeling via Drifting" (arXiv 2602.04770); Lee & Chun, "Identifiability
and Stability of Generative Drifting with Companion-Elliptic Kernel Families" (arXiv 2604.24196). See README.md.
"""

from plugins.drifting.datamodule import DriftingData
from plugins.drifting.module import DriftingGenerator

__all__ = ["DriftingData", "DriftingGenerator"]
