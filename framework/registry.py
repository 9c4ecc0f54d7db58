"""Plugin discovery through the ``framework.plugins`` entry-point group.

A plugin is a Python module registered as ``name = "package.module"`` under the entry-point group
``framework.plugins``. Importing it makes its LightningModules and DataModules resolvable by short class name in
the CLI (``--model FlowMatching``). A plugin module may set ``CONFIG_DIR`` (a path) to ship its own configs;
otherwise its configs are looked up in ``configs/<name>/`` of this repository.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import lightning.pytorch as pl

ENTRY_POINT_GROUP = "framework.plugins"
REPO_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class PluginInfo:
    """What one registered plugin provides."""

    name: str
    module: str
    models: tuple[str, ...] = ()
    datamodules: tuple[str, ...] = ()
    configs: tuple[Path, ...] = field(default_factory=tuple)


def _defined_subclasses(module: ModuleType, base: type) -> tuple[str, ...]:
    """Names of classes exported by ``module`` (its namespace or ``__all__``) that subclass ``base``."""
    names = getattr(module, "__all__", None) or dir(module)
    found = []
    for name in names:
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not inspect.isabstract(obj):
            found.append(obj.__name__)
    return tuple(sorted(set(found)))


def _config_dir(name: str, module: ModuleType) -> Path:
    own = getattr(module, "CONFIG_DIR", None)
    return Path(own) if own is not None else REPO_CONFIG_DIR / name


@cache
def load_plugins() -> tuple[PluginInfo, ...]:
    """Import every module registered under ``framework.plugins`` and describe it.

    Raises:
        ImportError: a registered module fails to import; the message names the entry point and its target.
    """
    infos = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            module = importlib.import_module(ep.value)
        except Exception as err:  # re-raised with the entry point named, so the user knows which plugin broke
            raise ImportError(
                f"plugin {ep.name!r} (entry point {ep.name} = {ep.value!r} in group {ENTRY_POINT_GROUP!r}) "
                f"failed to import: {err}. Fix the plugin or uninstall the package that registers it."
            ) from err
        config_dir = _config_dir(ep.name, module)
        configs = tuple(sorted(config_dir.glob("*.yaml"))) if config_dir.is_dir() else ()
        infos.append(
            PluginInfo(
                name=ep.name,
                module=ep.value,
                models=_defined_subclasses(module, pl.LightningModule),
                datamodules=_defined_subclasses(module, pl.LightningDataModule),
                configs=configs,
            )
        )
    return tuple(infos)


def all_configs() -> list[Path]:
    """Every config shipped by every registered plugin (the conformance suite runs over these)."""
    return [cfg for info in load_plugins() for cfg in info.configs]


def format_plugins(infos: tuple[PluginInfo, ...]) -> str:
    """A human-readable listing for ``framework plugins``."""
    if not infos:
        return f"No plugins registered under the entry-point group {ENTRY_POINT_GROUP!r}."
    lines = []
    for info in infos:
        lines.append(f"{info.name}  ({info.module})")
        lines.append(f"  models:      {', '.join(info.models) or '-'}")
        lines.append(f"  datamodules: {', '.join(info.datamodules) or '-'}")
        cfgs = [_display_path(c) for c in info.configs]
        lines.append(f"  configs:     {', '.join(cfgs) or '-'}")
    return "\n".join(lines)


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
