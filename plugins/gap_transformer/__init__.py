"""Residual gap-aware transformer for 24-month CDR-SB change from ADNI-style histories, with LME, least-squares,
boosted-tree, GRU-D and STraTS baselines, participant-level splits, a real ADNIMERGE/TADPOLE loader and a
schema-identical simulator.

Paper: Tong, Wang, Wang & Ni, "Forecasting Medium-Horizon Alzheimer's Disease Progression: Residual Gap-Aware
Transformers for 24-Month CDR-SB Change from ADNI Clinical and Biomarker Histories" (arXiv 2605.16319). README.md.
"""

from framework_plugins import builtin_config_dir
from framework_plugins.gap_transformer.baselines import BoostedTrees, LeastSquares
from framework_plugins.gap_transformer.datamodule import ADNICohort
from framework_plugins.gap_transformer.module import GRUD, GapAwareTransformer, LMEReference, STraTS

CONFIG_DIR = builtin_config_dir("gap_transformer")
DEMO_CONFIG = CONFIG_DIR / "quick.yaml"

__all__ = ["ADNICohort", "BoostedTrees", "GRUD", "GapAwareTransformer", "LMEReference", "LeastSquares", "STraTS"]
