"""Whole matrices from FSDP2 row shards and back: what a matrix optimizer (Muon) needs under ``fully_shard``.

``fully_shard`` stores each parameter as a DTensor sharded along dim 0 over a 1-D device mesh with ``torch.chunk``
semantics: with c = ceil(rows / world), rank r holds rows [r c, min((r + 1) c, rows)) (trailing ranks may hold
fewer or none). An orthogonalization needs the whole matrix, so each matrix gets an *owner* rank (round-robin):
:func:`gather_rows` assembles the full matrix there, the owner computes the update, and :func:`scatter_rows` hands
every rank its rows of it (the Moonlight / Dion layout: the work and the full-size buffers are split across ranks).
Collectives are ``gather`` / ``scatter`` on equal-size padded chunks, which gloo (CPU) and NCCL both provide.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Shard


class ShardingError(ValueError):
    """A DTensor parameter laid out in a way the matrix optimizer does not handle."""


def row_sharding(param: DTensor, name: str) -> dist.ProcessGroup:
    """The process group over which ``param`` is sharded by rows, after checking the layout is FSDP2's (one mesh
    dimension, ``Shard(0)``); raises :class:`ShardingError` naming the parameter otherwise."""
    mesh = param.device_mesh
    if mesh.ndim != 1 or tuple(param.placements) != (Shard(0),):
        raise ShardingError(
            f"Muon: parameter {name!r} is a DTensor with placements {tuple(param.placements)} on a {mesh.ndim}-D "
            "mesh; sharded Muon supports fully_shard's layout (Shard(0) over a 1-D data-parallel mesh)."
        )
    return mesh.get_group()


def chunk_rows(rows: int, world: int) -> int:
    """Rows per rank under ``torch.chunk`` semantics: ceil(rows / world)."""
    return -(-rows // world)


def local_rows(rows: int, world: int, rank: int) -> int:
    """How many of ``rows`` rank ``rank`` holds under ``torch.chunk`` semantics."""
    chunk = chunk_rows(rows, world)
    return max(0, min(chunk, rows - rank * chunk))


def gather_rows(local: torch.Tensor, rows: int, owner: int, group: dist.ProcessGroup) -> torch.Tensor | None:
    """The full (rows, ...) tensor on rank ``owner`` (group rank) from every rank's row shard ``local``; None on the
    other ranks. Shapes: local (n_r, *rest) with n_r = :func:`local_rows`; returns (rows, *rest) on the owner."""
    world, me = dist.get_world_size(group), dist.get_rank(group)
    padded = local.new_zeros((chunk_rows(rows, world), *local.shape[1:]))
    padded[: local.shape[0]] = local
    pieces = [torch.empty_like(padded) for _ in range(world)] if me == owner else None
    dist.gather(padded, pieces, dst=dist.get_global_rank(group, owner), group=group)
    return torch.cat(pieces)[:rows] if pieces is not None else None


def scatter_rows(
    full: torch.Tensor | None, like: torch.Tensor, rows: int, owner: int, group: dist.ProcessGroup
) -> torch.Tensor:
    """This rank's rows of the (rows, ...) tensor ``full`` held by rank ``owner`` (None elsewhere). Shapes: returns
    a tensor shaped like ``like`` (this rank's shard, (n_r, *rest)), with ``full``'s values."""
    world, me = dist.get_world_size(group), dist.get_rank(group)
    chunk = chunk_rows(rows, world)
    out = like.new_empty((chunk, *like.shape[1:]))
    pieces = None
    if me == owner:
        assert full is not None
        padded = full.new_zeros((chunk * world, *full.shape[1:]))
        padded[:rows] = full
        pieces = list(padded.split(chunk))
    dist.scatter(out, pieces, src=dist.get_global_rank(group, owner), group=group)
    return out[: like.shape[0]]
