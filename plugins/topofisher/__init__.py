"""TopoFisher: differentiable persistent homology (cubical, alpha, Rips) trained to maximise Fisher information,
with simulators of known Fisher information (GRF, noisy spiral) and a toy lognormal lensing simulator, an IMNN
baseline and fixed-summary baselines (power spectrum, peak counts + MOPED).

Paper: "TopoFisher: Learning Topological Summary Statistics by Maximizing Fisher Information" (arXiv 2605.07720).
See README.md.
"""

from framework_plugins import builtin_config_dir
from framework_plugins.topofisher.datamodule import TopoFisherData
from framework_plugins.topofisher.module import TopoFisher
from framework_plugins.topofisher.summaries import TopologicalSummary  # imports gudhi: a missing extra shows at listing

CONFIG_DIR = builtin_config_dir("topofisher")
DEMO_CONFIG = CONFIG_DIR / "quick.yaml"

__all__ = ["TopoFisher", "TopoFisherData", "TopologicalSummary"]
