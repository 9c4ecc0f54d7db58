"""Error messages of library code name the library's own parameter (``estimator='trpo' is unknown``); the CLI
prefixes the config key that set it (``model.init_args.estimator``), so the same code reads right from Python and
from YAML."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

# `name=value`, `name >= n`, `name <= n`, `name < n`, `name > n` at the start of a parameter mention
_PARAMETER = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*(?:=|>=|<=|<|>)(?!=)")
_SEARCH_ORDER = ("model", "data", "trainer")


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
    for name in _PARAMETER.findall(message):
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


def with_config_key(err: ValueError, config: Mapping[str, Any]) -> ValueError:
    """The library error behind ``err`` as a :class:`ConfigValueError` prefixed with its config key, or ``err``
    itself when the message names no parameter of the config."""
    root = root_value_error(err)
    key = config_key(str(root), config)
    return ConfigValueError(f"{key}: {root}") if key is not None else err
