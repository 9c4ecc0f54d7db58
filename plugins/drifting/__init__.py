"""Generative drifting: one-step generators trained by kernel drifting fields (Laplace, Matern 3/2 and 5/2,
Gaussian), with the unnormalised field norm as the convergence signal and a missing-mass monitor.

Papers: Deng, Li, Li, Du & He, "Generative Modeling via Drifting" (arXiv 2602.04770); Lee & Chun, "Identifiability
and Stability of Generative Drifting with Companion-Elliptic Kernel Families" (arXiv 2604.24196). See README.md.
"""

from framework_plugins import builtin_config_dir
from framework_plugins.drifting.datamodule import DriftingData
from framework_plugins.drifting.module import DriftingGenerator

CONFIG_DIR = builtin_config_dir("drifting")
DEMO_CONFIG = CONFIG_DIR / "quick.yaml"

__all__ = ["DriftingData", "DriftingGenerator"]
