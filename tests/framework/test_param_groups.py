from __future__ import annotations

import pytest
import torch
from torch import nn

from framework.optim import named_param_groups


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.hidden = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_decay_split_names_and_coverage():
    net = Net()
    groups = named_param_groups(net)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"decay", "no_decay"}
    assert by_name["decay"]["param_names"] == ["hidden.weight", "head.weight"]
    assert set(by_name["no_decay"]["param_names"]) == {
        "embed.weight",
        "hidden.bias",
        "norm.weight",
        "norm.bias",
        "head.bias",
    }
    assert by_name["no_decay"]["weight_decay"] == 0.0 and "weight_decay" not in by_name["decay"]
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(trainable), "every trainable parameter exactly once, frozen ones never"


def test_optimizer_applies_decay_only_to_decay_group():
    net = Net()
    opt = torch.optim.AdamW(named_param_groups(net), lr=0.0, weight_decay=0.5)
    assert {g["name"]: g["weight_decay"] for g in opt.param_groups} == {"decay": 0.5, "no_decay": 0.0}


def test_route_hook_splits_by_shape():
    net = Net()
    groups = named_param_groups(net, route=lambda n, p: "matrix" if p.ndim == 2 and "hidden" in n else "other")
    names = {g["name"] for g in groups}
    assert names == {"matrix/decay", "other/no_decay", "other/decay"}
    matrix = next(g for g in groups if g["route"] == "matrix")
    assert matrix["param_names"] == ["hidden.weight"]


def test_no_trainable_parameters_is_a_clear_error():
    with pytest.raises(ValueError, match="no trainable parameters"):
        named_param_groups(nn.Linear(2, 2).requires_grad_(False))
