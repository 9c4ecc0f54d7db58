"""Graph tools any plugin can use: Laplacians, effective resistances (exact and JL), spectral sparsifiers
(Spielman-Srivastava, uniform, k-neighbour pruning) and the measured-eps certificate."""

from framework_plugins.graph_sparsify.graph.certificate import EpsCertificate, spectral_eps
from framework_plugins.graph_sparsify.graph.knn import knn_graph
from framework_plugins.graph_sparsify.graph.laplacian import (
    adjacency,
    components,
    edge_list,
    from_edges,
    incidence,
    laplacian,
    like,
)
from framework_plugins.graph_sparsify.graph.resistance import (
    approx_resistances,
    block_pcg,
    exact_resistances,
    foster_sum,
    jl_dimension,
)
from framework_plugins.graph_sparsify.graph.sparsify import (
    Sparsified,
    effective_resistance_sparsify,
    knn_prune,
    resistances,
    samples_for_budget,
    samples_for_eps,
    uniform_sparsify,
)

__all__ = [
    "EpsCertificate",
    "Sparsified",
    "adjacency",
    "approx_resistances",
    "block_pcg",
    "components",
    "edge_list",
    "effective_resistance_sparsify",
    "exact_resistances",
    "foster_sum",
    "from_edges",
    "incidence",
    "jl_dimension",
    "knn_graph",
    "knn_prune",
    "laplacian",
    "like",
    "resistances",
    "samples_for_budget",
    "samples_for_eps",
    "spectral_eps",
    "uniform_sparsify",
]
