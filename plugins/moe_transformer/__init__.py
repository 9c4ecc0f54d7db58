"""MoE transformer: a byte-level decoder-only language model with softmax-gated mixture-of-experts MLPs, trained on
the Python standard library's sources; the testbed for the Muon family (AdamW vs Muon vs regularized vs blockwise).

Paper: "Move on Muon: A Hamiltonian probability gradient flow perspective of Muon optimizer" (Mustafi, Mukherjee &
Sriperumbudur, arXiv 2605.23871). See README.md in this folder.
"""

from framework_plugins import builtin_config_dir
from framework_plugins.moe_transformer.datamodule import StdlibBytes
from framework_plugins.moe_transformer.module import MoELanguageModel

CONFIG_DIR = builtin_config_dir("moe_transformer")
DEMO_CONFIG = CONFIG_DIR / "quick.yaml"

__all__ = ["MoELanguageModel", "StdlibBytes"]
