"""Bring your own graph: a torch_geometric ``Data`` or one-graph ``InMemoryDataset``, from a file written by
``torch.save`` / ``InMemoryDataset.save`` or from an import path of a dataset class or factory, checked field by
field and turned into a :class:`~framework_plugins.graph_sparsify.datasets.NodeGraph`.

Files are read with ``torch.load(weights_only=True)`` and only PyG's ``Data`` containers allowed besides tensors
(:data:`SAFE_GLOBALS`), so a crafted file cannot run code. An import path runs the code it names (as a config's
``class_path`` does), including that code's own file reading.
"""

from __future__ import annotations

import importlib
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data, Dataset, HeteroData
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import BaseStorage, EdgeStorage, GlobalStorage, NodeStorage

from framework.config_keys import ConfigValueError
from framework.data import require_file
from framework_plugins.graph_sparsify.datasets import NodeGraph

# what torch.save(Data) pickles besides tensors and builtins (InMemoryDataset.save pickles only the Data class), and
# HeteroData's containers (read only to say that a heterogeneous graph needs converting)
SAFE_GLOBALS = [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, HeteroData, BaseStorage, NodeStorage, EdgeStorage]
FILE_SUFFIXES = (".pt", ".pth")
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*[.:][A-Za-z_]\w*$")
SPLITS = ("train", "val", "test")
KEY = "data.init_args.dataset"


class GraphInputError(ConfigValueError):
    """A user's graph (file, dataset or Data object) lacks a field or has one of the wrong shape or dtype; one line
    naming the field, what it is and what is needed."""


def graph_source(dataset: str) -> str:
    """``"file"`` for a path ending in .pt / .pth or naming an existing file, ``"import"`` for a dotted import path
    (``package.module.Name`` or ``package.module:Name``); raises ``ValueError`` for anything else."""
    if dataset.endswith(FILE_SUFFIXES) or Path(dataset).is_file():
        return "file"
    if _IMPORT_PATH.match(dataset):
        return "import"
    raise ValueError(
        f"{KEY}={dataset!r} is neither a built-in dataset, a graph file (*.pt written by torch.save(data, path) or "
        "InMemoryDataset.save) nor an import path (package.module.Name of a PyG dataset class or a function "
        "returning a Data); give one of these."
    )


def read_graph_file(path: str) -> Data:
    """The one graph in ``path``: a ``Data`` saved with ``torch.save``, a dict of tensors (``x``, ``y``,
    ``edge_index``, ...) or an ``InMemoryDataset`` file (``InMemoryDataset.save``, e.g. a PyG dataset's
    ``processed/data.pt``) holding one graph. Loaded with ``weights_only=True`` and :data:`SAFE_GLOBALS` only."""
    file = require_file(path, "graph file", "save your torch_geometric Data with torch.save(data, path)")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)", str(err))
        if found is None:
            raise _not_torch_file(path) from err
        raise GraphInputError(
            f"{KEY}={path!r} holds a reference to {found.group(1)}; it is not loaded because unpickling it could run "
            "code: save only the graph, torch.save(data, path) with data a torch_geometric Data (or a dict of "
            "tensors)."
        ) from err
    except (RuntimeError, EOFError) as err:
        raise _not_torch_file(path) from err
    return _one_graph(obj, path)


def _not_torch_file(path: str) -> GraphInputError:
    return GraphInputError(f"{KEY}={path!r} is not a file written by torch.save; save the graph with torch.save.")


def _one_graph(obj: object, source: str) -> Data:
    """The ``Data`` inside what a file or a factory gave: a Data, a dict of tensors, an InMemoryDataset's saved
    ``(dict, slices[, cls])`` tuple or a Dataset of exactly one graph."""
    if isinstance(obj, HeteroData):
        raise GraphInputError(
            f"{KEY}={source!r} is a HeteroData; graph_sparsify needs one homogeneous graph: data.to_homogeneous()."
        )
    if isinstance(obj, Data):
        return obj
    if isinstance(obj, dict) and all(isinstance(key, str) for key in obj):
        return Data(**obj)
    if isinstance(obj, tuple) and len(obj) in (2, 3) and isinstance(obj[1], dict | None):  # InMemoryDataset.save
        if len(obj) == 3 and obj[2] is not Data:
            raise GraphInputError(f"{KEY}={source!r} holds a dataset of {obj[2]}; a dataset of Data is needed.")
        slices = obj[1] or {}  # None: one graph
        count = max((len(s) - 1 for s in slices.values() if isinstance(s, torch.Tensor)), default=1)
        if count != 1:
            raise _many_graphs(source, count)
        return Data.from_dict(obj[0]) if isinstance(obj[0], dict) else _one_graph(obj[0], source)
    if isinstance(obj, Dataset):
        if len(obj) != 1:
            raise _many_graphs(source, len(obj))
        return _one_graph(obj[0], source)
    raise GraphInputError(
        f"{KEY}={source!r} gave a {type(obj).__name__}; a torch_geometric Data, a dict of tensors or a one-graph "
        "InMemoryDataset is needed."
    )


def _many_graphs(source: str, count: int) -> GraphInputError:
    return GraphInputError(
        f"{KEY}={source!r} holds {count} graphs; graph_sparsify trains node classification on one graph: "
        "save the one you want, torch.save(dataset[i], path)."
    )


def import_graph(path: str, kwargs: dict[str, Any] | None) -> Data:
    """Call the dataset class or factory at import path ``path`` (``package.module.Name`` or
    ``package.module:Name``) with ``kwargs`` and return its one graph (a ``Data``, or a Dataset of length 1)."""
    module_name, _, name = path.replace(":", ".").rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise GraphInputError(
            f"{KEY}={path!r} cannot be imported ({err}); give package.module.Name of a PyG dataset class or of a "
            "function returning a Data, importable from where framework runs."
        ) from err
    try:
        made = factory(**(kwargs or {}))
    except TypeError as err:
        raise GraphInputError(
            f"{KEY}={path!r} rejected data.init_args.dataset_kwargs={kwargs!r} ({err}); pass its arguments there."
        ) from err
    return _one_graph(made, path)


def _tensor(data: Data, name: str, source: str, need: str) -> torch.Tensor:
    value = getattr(data, name, None)
    if not isinstance(value, torch.Tensor):
        found = "missing" if value is None else f"a {type(value).__name__}"
        raise GraphInputError(f"{KEY}={source!r}: the graph's {name} is {found}; {need}.")
    return value


def _check(ok: bool, source: str, name: str, value: torch.Tensor, need: str) -> None:
    if not ok:
        raise GraphInputError(
            f"{KEY}={source!r}: the graph's {name} has shape {tuple(value.shape)} and dtype {value.dtype}; {need}."
        )


def _adjacency(data: Data, n: int, source: str) -> sp.csr_array:
    """Symmetric weighted adjacency from ``edge_index`` and optional ``edge_weight``: self-loops dropped, duplicates
    summed, an edge listed in one direction made undirected (weight max(w_uv, w_vu))."""
    need = "edge_index of shape (2, num_edges) and integer dtype, entries in [0, num_nodes)"
    ei = _tensor(data, "edge_index", source, f"need {need}")
    _check(ei.dim() == 2 and ei.shape[0] == 2 and not ei.is_floating_point(), source, "edge_index", ei, f"need {need}")
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
        raise GraphInputError(
            f"{KEY}={source!r}: edge_index names node {int(ei.max()) if int(ei.max()) >= n else int(ei.min())} but "
            f"the graph has {n} nodes (rows of x); entries must be in [0, {n})."
        )
    weight = getattr(data, "edge_weight", None)
    if weight is None:
        w = np.ones(ei.shape[1])
    else:
        need = f"edge_weight must be a float tensor of shape ({ei.shape[1]},), one positive finite weight per edge"
        weight = _tensor(data, "edge_weight", source, need)
        ok = weight.shape == (ei.shape[1],) and weight.is_floating_point()
        _check(
            ok and bool(torch.isfinite(weight).all()) and bool((weight > 0).all()), source, "edge_weight", weight, need
        )
        w = weight.detach().double().numpy()
    rows, cols = ei.detach().numpy()
    a = sp.csr_array((w, (rows, cols)), shape=(n, n))
    a.setdiag(0)
    a = sp.csr_array(a.maximum(a.T))
    a.eliminate_zeros()
    a.sort_indices()
    return a


def _mask_splits(data: Data, n: int, source: str) -> dict[str, torch.Tensor]:
    """Node indices of the graph's ``train_mask`` / ``val_mask`` / ``test_mask`` (test = the other nodes when it has
    no test_mask)."""
    splits = {}
    for split in SPLITS:
        name = f"{split}_mask"
        if split == "test" and getattr(data, name, None) is None:
            taken = torch.zeros(n, dtype=torch.bool)
            taken[torch.cat(list(splits.values()))] = True
            splits[split] = (~taken).nonzero().view(-1)
            continue
        need = f"{name}, a bool tensor of shape ({n},) (or set data.init_args.split random for a seeded split)"
        mask = _tensor(data, name, source, f"split 'masks' needs {need}")
        fix = f"need {need}" + (f": pick one column, data.{name} = data.{name}[:, 0]" if mask.dim() == 2 else "")
        _check(mask.shape == (n,) and mask.dtype == torch.bool, source, name, mask, fix)
        splits[split] = mask.nonzero().view(-1)
        if not len(splits[split]) and split != "test":
            raise GraphInputError(f"{KEY}={source!r}: the graph's {name} selects no node; mark at least one.")
    if len(torch.cat(list(splits.values())).unique()) != sum(len(s) for s in splits.values()):
        raise GraphInputError(f"{KEY}={source!r}: train_mask, val_mask and test_mask overlap; they must be disjoint.")
    return splits


def node_graph(data: Data, source: str, masks: bool) -> tuple[NodeGraph, dict[str, torch.Tensor]]:
    """Check a user's ``data`` and return it as a :class:`NodeGraph` (x as given, float32; y int64; adjacency as in
    :func:`_adjacency`) and, with ``masks``, the node indices of its train / val / test masks (else ``{}``).

    Needs ``x`` (num_nodes, num_features) floating point and finite, ``y`` (num_nodes,) integer class ids >= 0,
    ``edge_index`` (2, num_edges) integer; optional ``edge_weight`` (num_edges,) positive; with ``masks``,
    ``train_mask`` and ``val_mask`` (and optionally ``test_mask``) bool (num_nodes,). Raises
    :class:`GraphInputError` naming the field, what it is and what is needed.
    """
    need_x = "x of shape (num_nodes, num_features) and a floating dtype (data.x = data.x.float())"
    x = _tensor(data, "x", source, f"need {need_x}")
    _check(x.dim() == 2 and x.is_floating_point(), source, "x", x, f"need {need_x}")
    if not bool(torch.isfinite(x).all()):
        raise GraphInputError(f"{KEY}={source!r}: the graph's x has non-finite entries (nan/inf); clean them first.")
    n = x.shape[0]
    need_y = f"y of shape ({n},) with integer class ids >= 0 (data.y = data.y.long().view(-1) if it is (n, 1))"
    y = _tensor(data, "y", source, f"need {need_y}")
    _check(y.shape == (n,) and not y.is_floating_point() and y.dtype != torch.bool, source, "y", y, f"need {need_y}")
    if n and int(y.min()) < 0:
        raise GraphInputError(
            f"{KEY}={source!r}: the graph's y has label {int(y.min())}; class ids must be >= 0 (unlabelled nodes "
            "need a class or removal, e.g. data.subgraph(data.y >= 0))."
        )
    graph = NodeGraph(x.detach().float(), y.detach().long(), _adjacency(data, n, source))
    return graph, (_mask_splits(data, n, source) if masks else {})
