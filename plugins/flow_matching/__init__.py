"""Flow matching: conditional flow matching on the linear path with exact-grid Euler/Heun samplers and exact error
diagnostics (closed-form velocities and Euler W2 for Gaussian and Gaussian-mixture targets).

Paper: A. Stéphanovitch, "Lipschitz regularity in Flow Matching and Diffusion Models: sharp sampling rates and
functional inequalities" (arXiv 2604.06065). See README.md in this folder.
"""

from plugins.flow_matching.datamodule import FlowMatchingData
from plugins.flow_matching.module import FlowMatching

__all__ = ["FlowMatching", "FlowMatchingData"]
