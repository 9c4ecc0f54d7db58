"""Error messages of library code name the library's own parameter (``estimator='trpo' is unknown``); the CLI
prefixes the config key that set it (``model.init_args.estimator``), so the same code reads right from Python and
from YAML."""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch.optim
import torch.utils.data

import framework
from framework.registry import load_plugins

# code whose ValueErrors are argument checks on what a config asked for (not bugs): the framework, its plugins,
# torch's optimizers (``Invalid learning rate: -1.0``) and samplers (a split too small for the processes)
_ARGUMENT_CHECKERS = tuple(Path(m.__file__).parent for m in (framework, torch.optim, torch.utils.data))

# `name=value`, `name >= n`, `name <= n`, `name < n`, `name > n` at the start of a parameter mention
_PARAMETER = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*(?:=|>=|<=|<|>)(?!=)")
_SEARCH_ORDER = ("model", "data", "trainer")
# how torch.optim's argument checks name their parameters ("Invalid learning rate: -1.0")
_PHRASES = {"learning rate": "lr", "momentum value": "momentum", "weight_decay value": "weight_decay",
            "epsilon value": "eps", "beta parameter": "betas"}  # fmt: skip


class ConfigValueError(ValueError):
    """A library ``ValueError`` raised while the CLI built or ran a config, with the config key in front."""


def _leaves(node: Any, prefix: str) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _leaves(value, path)


def config_key(message: str, config: Mapping[str, Any]) -> str | None:
    """The dotted key of ``config`` whose last part is the first parameter ``message`` names, searching the model,
    then the data, then the trainer sections; None when the message names no parameter of the config."""
    keys = [k for section in _SEARCH_ORDER if section in config for k in _leaves(config[section], section)]
    for name in [*_PARAMETER.findall(message), *(p for phrase, p in _PHRASES.items() if phrase in message)]:
        matches = [k for k in keys if k.rsplit(".", 1)[-1] == name]
        if matches:
            return min(matches, key=lambda k: k.count("."))  # the outermost: model.init_args.x before nested ones
    return None


def root_value_error(err: ValueError) -> ValueError:
    """The innermost ``ValueError`` ``err`` was raised from (jsonargparse wraps an ``__init__``'s error in its own)."""
    root, cause = err, err.__cause__ or err.__context__
    while cause is not None:
        if isinstance(cause, ValueError):
            root = cause
        cause = cause.__cause__ or cause.__context__
    return root


def raised_by_argument_check(err: BaseException) -> bool:
    """Whether ``err`` was raised by framework code, a registered plugin's package, ``torch.optim`` or
    ``torch.utils.data``, i.e. by a deliberate check of an argument, rather than deep inside another library."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    plugin_files = [getattr(sys.modules.get(info.module), "__file__", None) for info in load_plugins()]
    roots = (*_ARGUMENT_CHECKERS, *(Path(f).resolve().parent for f in plugin_files if f))
    where = Path(frames[-1].filename).resolve()
    return any(where.is_relative_to(root) for root in roots)


def with_config_key(err: ValueError, config: Mapping[str, Any]) -> ValueError:
    """The library error behind ``err`` as a :class:`ConfigValueError` prefixed with its config key; without a key
    but still a :class:`ConfigValueError` (one line for the user) when an argument check raised it; else ``err``."""
    root = root_value_error(err)
    key = config_key(str(root), config)
    if key is not None:
        return ConfigValueError(f"{key}: {root}")
    return ConfigValueError(str(root)) if raised_by_argument_check(root) else err
