"""Muon under FSDP2 (``fully_shard``) on 2 CPU processes (gloo): each matrix orthogonalized whole on its owner
rank, equal to single-process Muon; every rank ends with the same full parameters; optimizer state saved and loaded
through torch.distributed.checkpoint resumes identically."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from framework.optim import Muon
from framework.optim.param_groups import named_param_groups
from framework.optim.sharding import gather_rows, local_rows, scatter_rows

WORLD = 2
MUON = {"lr": 0.05, "adamw_lr": 0.01, "weight_decay": 0.1, "ns_dtype": "float64"}


class Experts(nn.Module):
    """Stacked expert matrices (E, out, in), as the MoE plugin stores them: blockwise Muon, one block per expert."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, 5, 4) / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bi,eoi->bo", x, self.weight)


def make_model() -> nn.Sequential:
    """Layers with row counts that do not divide evenly over 2 ranks (7, 3) and a 3-D expert stack; float64, so
    that the reduction order of sharded gradients (a few float32 ulps) is not amplified by ten Newton-Schulz steps
    into visible differences."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 20), nn.Tanh(), nn.Linear(20, 4), Experts(), nn.Tanh(), nn.Linear(5, 7),
                         nn.Tanh(), nn.Linear(7, 3)).double()  # fmt: skip


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return torch.randn(16, 6, generator=g, dtype=torch.float64), torch.randn(16, 3, generator=g, dtype=torch.float64)


def train(model: nn.Module, opt: torch.optim.Optimizer, steps: range) -> None:
    for step in steps:
        x, y = batch(step)
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()


def shard(model: nn.Module, mesh) -> nn.Module:
    for layer in model:
        if list(layer.parameters()):
            fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def _run_worker(rank: int, store: str, out: str, body: Callable[..., None], *args) -> None:
    """One rank: join the gloo group, run ``body(rank, out, *args)``, free what it built, leave the group.

    The body's modules, meshes and DTensors hold the process group. Left for interpreter exit, they are destroyed
    after ``destroy_process_group``, and a few runs in a hundred then abort in C++ ("terminate called without an
    active exception"). Collecting them while the group is alive removed it: 0 aborts in 100 runs of the resume worker
    (1 in 17 before) and in 25 runs of this file."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        body(rank, out, *args)
        gc.collect()
    finally:
        dist.destroy_process_group()


def _worker_train(rank: int, out: str, steps: int) -> None:
    model = shard(make_model(), init_device_mesh("cpu", (WORLD,)))
    opt = Muon(named_param_groups(model), **MUON)
    train(model, opt, range(steps))
    torch.save({k: v.full_tensor() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.pt")


def _worker_resume(rank: int, out: str) -> None:
    """10 steps straight; and 5 steps, a DCP checkpoint, a fresh model + optimizer loading it, 5 more steps."""
    mesh = init_device_mesh("cpu", (WORLD,))
    model = shard(make_model(), mesh)
    opt = Muon(named_param_groups(model), **MUON)
    train(model, opt, range(5))
    model_state, optim_state = get_state_dict(model, opt)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=f"{out}/ckpt")
    train(model, opt, range(5, 10))
    straight = {k: v.full_tensor() for k, v in model.state_dict().items()}

    torch.manual_seed(123)  # a different initialisation: everything must come from the checkpoint
    fresh = shard(make_model(), mesh)
    fresh_opt = Muon(named_param_groups(fresh), **MUON)
    model_state, optim_state = get_state_dict(fresh, fresh_opt)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=f"{out}/ckpt")
    set_state_dict(fresh, fresh_opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    train(fresh, fresh_opt, range(5, 10))
    resumed = {k: v.full_tensor() for k, v in fresh.state_dict().items()}
    torch.save({"straight": straight, "resumed": resumed}, f"{out}/resume_rank{rank}.pt")


def _worker_rows(rank: int, out: str) -> None:
    group = dist.group.WORLD
    results = {}
    for rows in (1, 2, 5, 8):
        full = torch.arange(rows * 3, dtype=torch.float32).view(rows, 3)
        chunk = -(-rows // WORLD)
        mine = full[rank * chunk : rank * chunk + local_rows(rows, WORLD, rank)]
        gathered = gather_rows(mine, rows, owner=1, group=group)
        back = scatter_rows(full * 2 if rank == 1 else None, mine, rows, owner=1, group=group)
        results[rows] = (gathered, torch.equal(back, mine * 2), torch.equal(mine, torch.chunk(full, WORLD)[rank])
                         if rank < len(torch.chunk(full, WORLD)) else mine.numel() == 0)  # fmt: skip
    torch.save(results, f"{out}/rows_rank{rank}.pt")


def _spawn(body: Callable[..., None], tmp_path: Path, *args) -> None:
    mp.spawn(_run_worker, args=(str(tmp_path / "store"), str(tmp_path), body, *args), nprocs=WORLD)


def test_row_gather_and_scatter_follow_torch_chunk_including_empty_shards(tmp_path):
    _spawn(_worker_rows, tmp_path)
    owner, other = (torch.load(tmp_path / f"rows_rank{r}.pt") for r in (1, 0))
    for rows in (1, 2, 5, 8):
        torch.testing.assert_close(owner[rows][0], torch.arange(rows * 3, dtype=torch.float32).view(rows, 3))
        assert other[rows][0] is None
        assert owner[rows][1] and other[rows][1] and owner[rows][2] and other[rows][2]


@pytest.mark.slow
@pytest.mark.parametrize("steps", [1, 10])
def test_sharded_muon_equals_single_process_muon_and_ranks_agree(tmp_path, steps):
    _spawn(_worker_train, tmp_path, steps)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD))
    reference = make_model()
    train(reference, Muon(named_param_groups(reference), **MUON), range(steps))
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0)
        torch.testing.assert_close(rank0[name], value, rtol=1e-9, atol=1e-12)
    assert not torch.equal(rank0["0.weight"], make_model().state_dict()["0.weight"]), "nothing was trained"


@pytest.mark.slow
def test_sharded_muon_resumes_identically_from_a_distributed_checkpoint(tmp_path):
    _spawn(_worker_resume, tmp_path)
    for rank in range(WORLD):
        result = torch.load(tmp_path / f"resume_rank{rank}.pt")
        for name, value in result["straight"].items():
            torch.testing.assert_close(result["resumed"][name], value, rtol=0, atol=0)
    assert any((tmp_path / "ckpt").glob("*.distcp")), "no torch.distributed.checkpoint shards were written"
