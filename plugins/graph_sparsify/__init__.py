"""GNNs under spectral sparsification: effective-resistance sparsifiers with a measured eps, polynomial-filter GNNs
(Chebyshev, SGC, TAGConv, GPR-GNN, BernNet) trained as twins on G and on its sparsifier H, and
representation-geometry probes.

Seed paper: "Spectral Graph Sparsification Preserves Representation Geometry in Graph Neural Networks". See README.md.
"""

from framework_plugins import builtin_config_dir
from framework_plugins.graph_sparsify.datamodule import GraphSparsifyData
from framework_plugins.graph_sparsify.geometry_probe import GeometryProbe
from framework_plugins.graph_sparsify.module import TwinSparsifiedGNN
from framework_plugins.graph_sparsify.sweep import SparsifierSweep

CONFIG_DIR = builtin_config_dir("graph_sparsify")
DEMO_CONFIG = CONFIG_DIR / "quick.yaml"

__all__ = ["GeometryProbe", "GraphSparsifyData", "SparsifierSweep", "TwinSparsifiedGNN"]
