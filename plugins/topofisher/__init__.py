"""TopoFisher: differentiable persistent homology (cubical, alpha, Rips) trained to maximise Fisher information,
with simulators of known Fisher information (GRF, noisy spiral) and a toy lognormal lensing simulator, an IMNN
baseline and fixed-summary baselines (power spectrum, peak counts + MOPED).

Paper: "TopoFisher: Learning Topological Summary Statistics by Maximizing Fisher Information" (arXiv 2605.07720).
See README.md.
"""

from plugins.topofisher.datamodule import TopoFisherData
from plugins.topofisher.module import TopoFisher

__all__ = ["TopoFisher", "TopoFisherData"]
