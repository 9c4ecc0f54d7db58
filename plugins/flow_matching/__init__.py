"""Flow matching: conditional flow matching on the linear path with exact-grid Euler/Heun samplers and exact error
diagnostics (closed-form velocities and Euler W2 for Gaussian and Gaussian-mixture targets).

Paper: A. Stéphanovitch, "Lipschitz regularity in Flow Matching and Diffusion Models: sharp sampling rates and
functional inequalities" (arXiv 2604.06065). See README.md in this folder.
"""

from framework_plugins import builtin_config_dir
from framework_plugins.flow_matching.datamodule import FlowMatchingData
from framework_plugins.flow_matching.module import FlowMatching

CONFIG_DIR = builtin_config_dir("flow_matching")
DEMO_CONFIG = CONFIG_DIR / "quick.yaml"
DEFAULT_DEMO = True  # `framework demo` without a name runs this one

__all__ = ["FlowMatching", "FlowMatchingData"]
