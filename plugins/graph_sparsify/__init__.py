"""GNNs under spectral sparsification: effective-resistance sparsifiers with a measured eps, polynomial-filter GNNs
(Chebyshev, SGC, TAGConv, GPR-GNN, BernNet) trained as twins on G and on its sparsifier H, and
representation-geometry probes.

Seed paper: "Spectral Graph Sparsification Preserves Representation Geometry in Graph Neural Networks". See README.md.
"""

from plugins.graph_sparsify.datamodule import GraphSparsifyData
from plugins.graph_sparsify.module import TwinSparsifiedGNN

__all__ = ["GraphSparsifyData", "TwinSparsifiedGNN"]
