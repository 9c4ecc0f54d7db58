"""Decoupled descent: full-batch training whose train error on Onsager-corrected ("decoupled") preactivations tracks
the test error, with its state evolution (this project's reconstruction; the paper's update rule is not public).

Paper: Max Lovig, "Decoupled Descent: Exact Test Error Tracking Via Approximate Message Passing" (arXiv 2604.27883).
The reusable algorithm lives in :mod:`framework.optim.decoupled_descent`. See README.md.
"""

from framework_plugins import builtin_config_dir
from framework_plugins.decoupled_descent.datamodule import DecoupledDescentData
from framework_plugins.decoupled_descent.early_stopping import EarlyStoppingStudy
from framework_plugins.decoupled_descent.module import DecoupledDescentClassifier
from framework_plugins.decoupled_descent.xor_sweep import XorSweepStudy

CONFIG_DIR = builtin_config_dir("decoupled_descent")
DEMO_CONFIG = CONFIG_DIR / "quick.yaml"

__all__ = ["DecoupledDescentClassifier", "DecoupledDescentData", "EarlyStoppingStudy", "XorSweepStudy"]
