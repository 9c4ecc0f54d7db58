"""Muon with an AdamW fallback in one optimizer: routing by name and shape, blockwise and regularized variants,
and orthogonalization split across DDP ranks.

Update of a routed matrix W with gradient G (per block, see below), step t:

    momentum   m_t = beta m_{t-1} + (1 - beta) G        (momentum_style="ema", as torch.optim.Muon / Jordan)
               m_t = beta m_{t-1} + G                   (momentum_style="heavy_ball", as Moonlight)
    Nesterov   u_t = G + beta (m_t - G) for ema, G + beta m_t for heavy ball; u_t = m_t without Nesterov
    direction  O_t = NS(u_t) | U V^T (svd) | u_t (u_t^T u_t + eps^2 I)^(-1/2) (regularized)
               NS: Polar Express steps (default) or Jordan's fixed quintic, in the Gram space when it is cheaper
    step       W <- W (1 - lr wd) - lr * scale(shape) * O_t        (decoupled weight decay on the unscaled lr)

scale: ``original`` sqrt(max(1, rows/cols)) (torch.optim.Muon, Jordan), ``match_rms_adamw`` 0.2 sqrt(max(rows, cols))
(Moonlight), ``spectral`` sqrt(rows/cols) (fan_out/fan_in; dion), ``none`` 1.

The regularized map is not scale-invariant. By default (``reg_eps_units="relative"``) eps is ``reg_eps`` times the
block's RMS singular value ||u_t||_F / sqrt(min(rows, cols)), which makes the map scale-invariant again (one value
works across layers, steps and momentum conventions). With ``"absolute"`` eps is ``reg_eps`` in the units of the
momentum buffer *of the chosen convention* (the paper's fixed-eps K_eps; at steady state a heavy-ball buffer is
1/(1 - beta) = 20 times an EMA buffer at beta = 0.95).

Routing: 1-D parameters and parameters whose name matches an ``adamw_patterns`` regex (embeddings, output head)
get AdamW; every other parameter with ndim >= 2 gets Muon. Shapes: 2-D as is; 3-D ``(E, out, in)`` is a stack of
E blocks orthogonalized separately (blockwise Muon, e.g. MoE experts) unless ``blockwise=False`` (then flattened to
``(E * out, in)``) or the name matches ``flatten_patterns`` (conv1d); >= 4-D (conv) is flattened to
``(out, in * k...)``. ``split_sizes`` declares blocks along dim 0 of 2-D weights by name (fused QKV: ``{"qkv":
[d, d, d]}``; per-head: ``{"q_proj": [head_dim] * n_heads}``).
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor

from framework.optim.orthogonalize import (
    NS_COEFFICIENTS,
    gram_newton_schulz,
    gram_newton_schulz_flops,
    newton_schulz,
    newton_schulz_flops,
    polar_svd,
    regularized_polar,
)
from framework.optim.polar_express import polar_express_coefficients
from framework.optim.sharding import ShardingError, gather_rows, row_sharding, scatter_rows

DEFAULT_ADAMW_PATTERNS = (
    r"embed",  # token / positional embeddings by name
    r"(^|\.)(wte|wpe)(\.|$)",  # GPT-2 naming
    r"(^|\.)pos(ition)?(_\w+)?(\.|$)",  # pos, position, pos_emb ...
    r"lm_head",
    r"(^|\.)head(\.|$)",
    r"output_proj",
)
Orthogonalizer = Literal["newton_schulz", "svd", "regularized"]
LrScale = Literal["original", "match_rms_adamw", "spectral", "none"]
NsCoefficients = Literal["polar_express", "jordan"] | tuple[float, float, float] | list[tuple[float, float, float]]
NsMethod = Literal["auto", "standard", "gram"]


@dataclass(frozen=True)
class MatrixView:
    """How a Muon parameter is seen as a stack of matrices: reshape to ``(blocks, rows, cols)`` after splitting."""

    splits: tuple[int, ...] | None  # sizes along dim 0 (2-D declared blocks), else None
    matrix_shape: tuple[int, ...]  # shape after flattening: (rows, cols) or (blocks, rows, cols)

    def blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The (rows, cols) matrices of ``x`` as views (``x`` must be contiguous: updates are written through them)."""
        x = x.view(self.matrix_shape)
        if self.splits is not None:
            return list(torch.split(x, list(self.splits), dim=0))
        return list(x) if x.ndim == 3 else [x]


def lr_scale_factor(rows: int, cols: int, mode: LrScale) -> float:
    """The factor s(rows, cols) multiplying Muon's lr for one (rows, cols) block (module docstring)."""
    if mode == "original":
        return math.sqrt(max(1.0, rows / cols))
    if mode == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    if mode == "spectral":
        return math.sqrt(rows / cols)
    return 1.0


@functools.lru_cache(maxsize=16)
def _polar_express(steps: int) -> tuple[tuple[float, float, float], ...]:
    """Polar Express steps, derived once per step count (a param group may name ``polar_express`` itself, and the
    group's spec is resolved on every optimizer step)."""
    return tuple(polar_express_coefficients(steps))


def _resolve_coefficients(spec: NsCoefficients, steps: int) -> list[tuple[float, float, float]]:
    """The per-step (a, b, c) list that ``ns_coefficients`` and ``ns_steps`` describe (Muon's Args)."""
    if spec == "polar_express":
        return list(_polar_express(steps))
    if spec == "jordan":
        return [NS_COEFFICIENTS] * steps
    if isinstance(spec, str):
        raise ValueError(f"Muon ns_coefficients={spec!r}; choose polar_express, jordan, (a, b, c) or a list of them.")
    triples = [tuple(float(v) for v in c) for c in spec] if isinstance(spec[0], Sequence) else [tuple(spec)] * steps
    if any(len(t) != 3 for t in triples):
        raise ValueError(f"Muon ns_coefficients={spec!r}: each entry must be an (a, b, c) triple.")
    return triples


def regularization_eps(group: dict[str, Any], stack: torch.Tensor) -> float | torch.Tensor:
    """eps of the regularized map for each matrix of a (n, rows, cols) stack of directions: ``reg_eps`` itself
    (``absolute``) or ``reg_eps`` x ||u||_F / sqrt(min(rows, cols)) per matrix (``relative``; floored at 1e-15, whose
    square float32 still holds, so a zero direction maps to zero)."""
    if group.get("reg_eps_units", "absolute") == "absolute":
        return float(group["reg_eps"])
    rms = stack.double().norm(dim=(-2, -1)) / math.sqrt(min(stack.shape[-2:]))
    return (group["reg_eps"] * rms).clamp(min=1e-15)


class Muon(torch.optim.Optimizer):
    """One optimizer: Muon for hidden matrices, AdamW for the rest (see the module docstring for the math).

    Takes parameters, or param groups from :func:`framework.optim.named_param_groups` (whose ``param_names`` drive
    the routing; plain parameters are routed by shape only). Each incoming group is split into a ``<name>/muon``
    and a ``<name>/adamw`` group, so LR schedulers and ``LearningRateMonitor`` see both.

    Args:
        params: parameters or param groups.
        lr: Muon learning rate (before ``lr_scale``).
        momentum: beta.
        nesterov: use the Nesterov direction.
        momentum_style: ``ema`` or ``heavy_ball``.
        weight_decay: decoupled weight decay of Muon params (multiplied by the unscaled lr).
        orthogonalizer: ``newton_schulz`` (Muon), ``svd`` (exact polar), ``regularized`` (grad of the smoothed
            nuclear norm with ``reg_eps``).
        ns_steps: Newton-Schulz steps (ignored when ``ns_coefficients`` lists one triple per step).
        ns_coefficients: ``polar_express`` (the greedy minimax quintics for singular values in [1e-3, 1] of the
            Frobenius norm, :mod:`framework.optim.polar_express`; converge to 1), ``jordan`` (3.4445, -4.7750,
            2.0315) every step (torch.optim.Muon; singular values end in about [0.68, 1.13]), one (a, b, c)
            triple, or a list of triples.
        ns_method: ``standard`` (iterate on the matrix), ``gram`` (iterate on its Gram matrix,
            :func:`framework.optim.orthogonalize.gram_newton_schulz`) or ``auto`` (whichever needs fewer FLOPs for
            the block's shape: Gram for aspect ratios above ~1.5).
        ns_eps: floor of the Frobenius norm in Newton-Schulz.
        ns_dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU), ``float32``, ``bfloat16`` or ``float64``.
        reg_eps: eps of the regularized map, in the units set by ``reg_eps_units``.
        reg_eps_units: ``relative`` (eps = reg_eps x the block's RMS singular value ||u||_F / sqrt(min(rows,
            cols)); scale-invariant) or ``absolute`` (eps = reg_eps in the momentum buffer's units).
        lr_scale: ``original``, ``match_rms_adamw``, ``spectral`` or ``none``.
        blockwise: orthogonalize each block of 3-D ``(E, out, in)`` params separately.
        split_sizes: ``{name regex: sizes}`` declared blocks along dim 0 of 2-D weights.
        adamw_patterns: name regexes routed to AdamW (default: embeddings and output heads); user-given patterns
            must each match a parameter.
        flatten_patterns: name regexes of 3-D params flattened instead of split into blocks (conv1d).
        adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay: AdamW settings of the fallback.
        distributed: split orthogonalization across ranks when a process group is initialized.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        momentum_style: Literal["ema", "heavy_ball"] = "ema",
        weight_decay: float = 0.0,
        orthogonalizer: Orthogonalizer = "newton_schulz",
        ns_steps: int = 5,
        ns_coefficients: NsCoefficients = "polar_express",
        ns_method: NsMethod = "auto",
        ns_eps: float = 1e-7,
        ns_dtype: Literal["auto", "float32", "bfloat16", "float64"] = "auto",
        reg_eps: float = 0.1,
        reg_eps_units: Literal["relative", "absolute"] = "relative",
        lr_scale: LrScale = "original",
        blockwise: bool = True,
        split_sizes: dict[str, list[int]] | None = None,
        adamw_patterns: Sequence[str] | None = None,
        flatten_patterns: Sequence[str] = (r"conv",),
        adamw_lr: float = 3e-4,
        adamw_betas: tuple[float, float] = (0.9, 0.95),
        adamw_eps: float = 1e-10,
        adamw_weight_decay: float = 0.0,
        distributed: bool = True,
    ) -> None:
        for key, value in (("lr", lr), ("adamw_lr", adamw_lr)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Muon {key}={value} must be a finite number > 0 (a negative step ascends the loss).")
        for key, value in (("weight_decay", weight_decay), ("adamw_weight_decay", adamw_weight_decay)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"Muon {key}={value} must be a finite number >= 0.")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Muon momentum={momentum} must be in [0, 1).")
        if orthogonalizer not in ("newton_schulz", "svd", "regularized"):
            raise ValueError(f"Muon orthogonalizer={orthogonalizer!r}; choose newton_schulz, svd or regularized.")
        if lr_scale not in ("original", "match_rms_adamw", "spectral", "none"):
            raise ValueError(f"Muon lr_scale={lr_scale!r}; choose original, match_rms_adamw, spectral or none.")
        if ns_method not in ("auto", "standard", "gram"):
            raise ValueError(f"Muon ns_method={ns_method!r}; choose auto, standard or gram.")
        if reg_eps_units not in ("relative", "absolute"):
            raise ValueError(f"Muon reg_eps_units={reg_eps_units!r}; choose relative or absolute.")
        if not (math.isfinite(reg_eps) and reg_eps > 0):
            raise ValueError(f"Muon reg_eps={reg_eps} must be a finite number > 0.")
        if momentum_style not in ("ema", "heavy_ball"):
            raise ValueError(f"Muon momentum_style={momentum_style!r}; choose ema or heavy_ball.")
        self.user_patterns = adamw_patterns is not None
        patterns = DEFAULT_ADAMW_PATTERNS if adamw_patterns is None else adamw_patterns
        self.adamw_patterns = [re.compile(p) for p in patterns]
        self.flatten_patterns = [re.compile(p) for p in flatten_patterns]
        self.split_rules = [(re.compile(k), tuple(v)) for k, v in (split_sizes or {}).items()]
        self.blockwise = blockwise
        self.distributed = distributed
        groups = self._route(params, lr, weight_decay, adamw_lr, adamw_weight_decay)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "nesterov": nesterov,
            "momentum_style": momentum_style,
            "weight_decay": weight_decay,
            "orthogonalizer": orthogonalizer,
            "ns_steps": ns_steps,
            "ns_coefficients": _resolve_coefficients(ns_coefficients, ns_steps),
            "ns_method": ns_method,
            "ns_eps": ns_eps,
            "ns_dtype": ns_dtype,
            "reg_eps": reg_eps,
            "reg_eps_units": reg_eps_units,
            "lr_scale": lr_scale,
            "betas": tuple(adamw_betas),
            "eps": adamw_eps,
            "use_muon": False,
        }
        super().__init__(groups, defaults)
        self.views: dict[torch.nn.Parameter, MatrixView] = {}
        for group in self.param_groups:
            for name, p in zip(group["param_names"], group["params"], strict=True):
                if group["use_muon"]:
                    self.views[p] = self._view(name, p)
        self._init_state()

    # -- routing ----------------------------------------------------------------------------------------------
    def _route(
        self, params: Iterable[Any], lr: float, weight_decay: float, adamw_lr: float, adamw_wd: float
    ) -> list[dict[str, Any]]:
        incoming = list(params)
        if not incoming:
            raise ValueError("Muon got an empty parameter list.")
        if not isinstance(incoming[0], dict):
            incoming = [{"params": incoming}]
        matched: set[int] = set()
        groups: list[dict[str, Any]] = []
        for index, group in enumerate(incoming):
            params_ = list(group["params"])
            names = list(group.get("param_names") or [f"param{index}.{i}" for i in range(len(params_))])
            split: dict[bool, dict[str, list]] = {True: {"params": [], "names": []}, False: {"params": [], "names": []}}
            for name, p in zip(names, params_, strict=True):
                self._check(name, p)
                hits = [i for i, pat in enumerate(self.adamw_patterns) if pat.search(name)]
                matched.update(hits)
                use_muon = p.ndim >= 2 and not hits
                split[use_muon]["params"].append(p)
                split[use_muon]["names"].append(name)
            base = {k: v for k, v in group.items() if k not in ("params", "param_names", "name")}
            label = group.get("name", f"group{index}")
            for use_muon, content in split.items():
                if not content["params"]:
                    continue
                new = {**base, "params": content["params"], "param_names": content["names"], "use_muon": use_muon}
                new["name"] = f"{label}/{'muon' if use_muon else 'adamw'}"
                if use_muon:
                    new.setdefault("lr", lr)
                    new.setdefault("weight_decay", weight_decay)
                else:
                    new["lr"] = group.get("adamw_lr", adamw_lr)
                    new.setdefault("weight_decay", adamw_wd)
                groups.append(new)
        unmatched = [self.adamw_patterns[i].pattern for i in range(len(self.adamw_patterns)) if i not in matched]
        all_names = [n for g in groups for n in g["param_names"]]
        example = all_names[:8]
        if self.user_patterns and unmatched:
            raise ValueError(
                f"Muon adamw_patterns {unmatched} matched no parameter name, so those tensors would get Muon "
                f"updates. Parameter names look like {example}; fix the regexes (they are matched with re.search)."
            )
        unmatched_splits = [pat.pattern for pat, _ in self.split_rules if not any(pat.search(n) for n in all_names)]
        if unmatched_splits:
            raise ValueError(
                f"Muon split_sizes patterns {unmatched_splits} matched no parameter name, so no weight would be "
                f"split. Parameter names look like {example}; fix the regexes (they are matched with re.search)."
            )
        return groups

    @staticmethod
    def _check(name: str, p: torch.Tensor) -> None:
        if torch.is_complex(p):
            raise ValueError(
                f"Muon: parameter {name!r} is complex ({p.dtype}); Muon and this AdamW are real-only. "
                "Optimize it with torch.optim.AdamW in a separate module or view it as real."
            )

    def _view(self, name: str, p: torch.Tensor) -> MatrixView:
        if not p.is_contiguous():
            raise ValueError(
                f"Muon: parameter {name!r} is not contiguous; updates are written through views of it. "
                "Make it contiguous (nn.Parameter(t.contiguous())) before building the optimizer."
            )
        for pattern, sizes in self.split_rules:
            if pattern.search(name):
                if p.ndim != 2 or sum(sizes) != p.shape[0]:
                    raise ValueError(
                        f"Muon split_sizes for {name!r}: sizes {list(sizes)} must sum to dim 0 of a 2-D weight, got "
                        f"shape {tuple(p.shape)}."
                    )
                return MatrixView(splits=sizes, matrix_shape=tuple(p.shape))
        if p.ndim == 2:
            return MatrixView(None, tuple(p.shape))
        if p.ndim == 3 and self.blockwise and not any(pat.search(name) for pat in self.flatten_patterns):
            return MatrixView(None, tuple(p.shape))
        if p.ndim == 3 and not self.blockwise and not any(pat.search(name) for pat in self.flatten_patterns):
            return MatrixView(None, (p.shape[0] * p.shape[1], p.shape[2]))
        return MatrixView(None, (p.shape[0], p[0].numel()))

    def _init_state(self) -> None:
        """Create every state tensor now (not at first grad): identical keys on all ranks, resumable anywhere."""
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if state:
                    continue
                if group["use_muon"]:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                else:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._init_state()

    # -- step -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for name, p in zip(group["param_names"], group["params"], strict=True):
                if p.grad is not None and p.grad.is_sparse:
                    raise ValueError(
                        f"Muon: parameter {name!r} has a sparse gradient; use dense gradients "
                        "(e.g. nn.Embedding(sparse=False))."
                    )
            if group["use_muon"]:
                self._muon_group(group)
            else:
                self._adamw_group(group)
        return loss

    def _direction(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor:
        grad = p.grad
        buf = self.state[p]["momentum_buffer"]
        beta = group["momentum"]
        if group["momentum_style"] == "ema":
            buf.lerp_(grad, 1 - beta)
            return grad.lerp(buf, beta) if group["nesterov"] else buf
        buf.mul_(beta).add_(grad)
        return grad.add(buf, alpha=beta) if group["nesterov"] else buf

    @staticmethod
    def _stack_dtype(group: dict[str, Any], param: torch.Tensor) -> torch.dtype:
        """dtype the directions are stacked in: the Newton-Schulz compute dtype (so the cast happens in the copy
        that builds the stack), or the parameter's dtype for the float64 exact maps."""
        if group["orthogonalizer"] != "newton_schulz":
            return param.dtype
        if group["ns_dtype"] == "auto":
            return torch.bfloat16 if param.is_cuda else torch.float32
        return getattr(torch, group["ns_dtype"])

    def _orthogonalize(self, group: dict[str, Any], stack: torch.Tensor) -> torch.Tensor:
        kind = group["orthogonalizer"]
        if kind == "svd":
            return polar_svd(stack.double()).to(stack.dtype)
        if kind == "regularized":
            dtype = torch.float64 if stack.dtype == torch.float64 else torch.float32
            return regularized_polar(stack, regularization_eps(group, stack), dtype=dtype)
        coefficients = _resolve_coefficients(group["ns_coefficients"], group["ns_steps"])
        rows, cols, steps = *stack.shape[-2:], len(coefficients)
        method = group.get("ns_method", "standard")
        if method == "gram" or (
            method == "auto" and gram_newton_schulz_flops(rows, cols, steps) < newton_schulz_flops(rows, cols, steps)
        ):
            return gram_newton_schulz(stack, coefficients=coefficients, eps=group["ns_eps"])
        return newton_schulz(stack, coefficients=coefficients, eps=group["ns_eps"])

    def _muon_group(self, group: dict[str, Any]) -> None:
        """Momentum per parameter; then, per matrix shape, one stack of all blocks of that shape is orthogonalized
        (split across ranks under DDP) and each result is added straight into its block of the parameter."""
        params = [p for p in group["params"] if p.grad is not None]  # as torch.optim: no grad, no update
        if not params:
            return
        if isinstance(params[0], DTensor):
            self._muon_group_sharded(group, params)
            return
        lr, wd = group["lr"], group["weight_decay"]
        directions = [self.views[p].blocks(self._direction(group, p)) for p in params]
        if wd:
            torch._foreach_mul_([p.data for p in params], 1 - lr * wd)
        targets = [self.views[p].blocks(p.data) for p in params]  # views into the parameters
        self._add_orthogonalized(group, directions, targets, self._orthogonalize_split)

    def _add_orthogonalized(
        self,
        group: dict[str, Any],
        directions: list[list[torch.Tensor]],
        targets: list[list[torch.Tensor]],
        orthogonalize: Callable[[dict[str, Any], torch.Tensor], torch.Tensor],
    ) -> None:
        """targets[i][j] += -lr * scale(shape) * O(directions[i][j]) for every block: the blocks of one shape are
        stacked (in the compute dtype) and orthogonalized in one call of ``orthogonalize``."""
        by_shape: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
        for i, blocks in enumerate(directions):
            for j, block in enumerate(blocks):
                by_shape[tuple(block.shape)].append((i, j))
        if not by_shape:
            return
        reference = targets[0][0]
        dtype = self._stack_dtype(group, reference)
        for shape, where in by_shape.items():
            stack = torch.empty((len(where), *shape), dtype=dtype, device=reference.device)
            for k, (i, j) in enumerate(where):
                stack[k].copy_(directions[i][j])
            result = orthogonalize(group, stack)
            alpha = -group["lr"] * lr_scale_factor(shape[0], shape[1], group["lr_scale"])
            for k, (i, j) in enumerate(where):
                targets[i][j].add_(result[k], alpha=alpha)

    def _orthogonalize_split(self, group: dict[str, Any], stack: torch.Tensor) -> torch.Tensor:
        """Orthogonalize a (n, rows, cols) stack; under a process group each rank does n/world of it (padded to a
        multiple of the world size) and the results are all-gathered, so every rank ends with identical bits."""
        if not (self.distributed and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return self._orthogonalize(group, stack)
        world, rank = dist.get_world_size(), dist.get_rank()
        n = stack.shape[0]
        per_rank = -(-n // world)
        padded = (
            torch.cat([stack, stack.new_zeros(per_rank * world - n, *stack.shape[1:])])
            if per_rank * world > n
            else stack
        )
        mine = self._orthogonalize(group, padded[rank * per_rank : (rank + 1) * per_rank].contiguous())
        gathered = torch.empty_like(padded)
        dist.all_gather_into_tensor(gathered, mine.contiguous())
        return gathered[:n]

    def _muon_group_sharded(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        """The Muon step on FSDP2 row shards (DTensors, :mod:`framework.optim.sharding`): momentum and weight decay
        elementwise on each rank's shard; each matrix gathered whole on its owner rank (round-robin over the group's
        parameters), orthogonalized there (per block, stacked by shape as in :meth:`_muon_group`), and its update
        scattered back as rows. Every rank computes only the matrices it owns and holds only those in full."""
        lr, wd = group["lr"], group["weight_decay"]
        names = dict(zip(map(id, group["params"]), group["param_names"], strict=True))
        process_group = row_sharding(params[0], names[id(params[0])])
        owners = [i % dist.get_world_size(process_group) for i in range(len(params))]
        full_directions: dict[int, torch.Tensor] = {}
        for i, p in enumerate(params):
            if row_sharding(p, names[id(p)]) != process_group:
                raise ShardingError(f"Muon: parameter {names[id(p)]!r} is sharded over another process group.")
            direction = self._direction(group, p).to_local()
            full = gather_rows(direction, p.shape[0], owners[i], process_group)
            if full is not None:
                full_directions[i] = full
            if wd:
                p.to_local().mul_(1 - lr * wd)
        owned = sorted(full_directions)
        updates = {
            i: torch.zeros(params[i].shape, dtype=params[i].dtype, device=full_directions[i].device) for i in owned
        }
        self._add_orthogonalized(
            group,
            [self.views[params[i]].blocks(full_directions[i]) for i in owned],
            [self.views[params[i]].blocks(updates[i]) for i in owned],
            self._orthogonalize,
        )
        for i, p in enumerate(params):
            local = p.to_local()
            local.add_(scatter_rows(updates.get(i), local, p.shape[0], owners[i], process_group))

    def _adamw_group(self, group: dict[str, Any]) -> None:
        """Decoupled AdamW (Loshchilov & Hutter 2019), same arithmetic as ``torch.optim.AdamW`` (single tensor)."""
        beta1, beta2 = group["betas"]
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            state["step"] += 1
            step = state["step"].item()
            p.mul_(1 - lr * wd)
            state["exp_avg"].lerp_(p.grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            bias1 = 1 - beta1**step
            bias2_sqrt = math.sqrt(1 - beta2**step)
            denom = (state["exp_avg_sq"].sqrt() / bias2_sqrt).add_(eps)
            p.addcdiv_(state["exp_avg"], denom, value=-lr / bias1)
