"""Built-in plugins, one package per method, installed as ``framework_plugins``; each registers under the
``framework.plugins`` entry-point group and points ``CONFIG_DIR`` at its folder of the top-level ``configs/``."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def builtin_config_dir(plugin: str) -> Path:
    """``configs/<plugin>/`` of this distribution, wherever it is installed (shipped as package data)."""
    return Path(str(files("framework_plugins.configs"))) / plugin
