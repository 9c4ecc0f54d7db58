"""The model-data contract: a model states what it reads from its datamodule as a ``typing.Protocol`` and checks
the pairing once, in ``setup``, instead of failing later with a shape or attribute error deep inside a step."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

T = TypeVar("T")


class DataContractError(TypeError):
    """A model was paired with a datamodule that lacks what the model needs; the message names both classes."""


def required_members(contract: type) -> list[str]:
    """The public attributes and methods a Protocol class declares (annotations first, then methods)."""
    names = [n for n in getattr(contract, "__annotations__", {}) if not n.startswith("_")]
    for name, member in vars(contract).items():
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
            names.append(name)
    return list(dict.fromkeys(names))


def check_data_contract(model: Any, datamodule: Any, contract: type[T]) -> T:
    """Return ``datamodule`` typed as ``contract`` when it has every member the Protocol declares.

    Raises:
        DataContractError: no datamodule, or one missing a member; one line naming the model, the datamodule, the
            missing member and what the model needs.
    """
    model_name, members = type(model).__name__, required_members(contract)
    needs = ", ".join(members)
    if datamodule is None:
        raise DataContractError(
            f"{model_name} needs a datamodule providing {needs} ({contract.__name__}); the trainer has none "
            f"(pass --data or datamodule=...)."
        )
    missing = [name for name in members if not hasattr(datamodule, name)]
    if missing:
        raise DataContractError(
            f"{model_name} cannot train on {type(datamodule).__name__}: it has no {missing[0]!r} "
            f"({model_name} needs {contract.__name__}: {needs})."
        )
    return datamodule
