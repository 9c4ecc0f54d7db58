"""Plugin discovery through the ``framework.plugins`` entry-point group.

A plugin is a Python module registered as ``name = "package.module"`` under the entry-point group
``framework.plugins``. Importing it makes its LightningModules and DataModules resolvable by short class name in
the CLI (``--model FlowMatching``). The plugin module declares, as module attributes:

- ``CONFIG_DIR`` (optional): the folder of its configs; every ``*.yaml`` below it (nested folders included) is listed
  by ``framework plugins``. Configs in a ``real_data/`` folder read files the user supplies, so the conformance suite
  only parses them; every other config must run on built-in data. Files in an ``experiments/`` folder are experiment
  files (``framework experiment run``), listed separately.
- ``DEMO_CONFIG`` (optional): the config ``framework demo <name>`` fits and tests; ``DEFAULT_DEMO = True`` makes it
  the one ``framework demo`` runs without a name.

``framework plugins NAME`` describes one plugin: each model and datamodule class with every init argument (type,
default and the one-line description from the ``Args:`` section of its docstring, as ``framework fit --model.help``
shows it), its configs and its experiment files.

A plugin whose third-party dependencies are not installed is still listed, with the command that installs them
(the extra of its distribution named after the plugin, when there is one), instead of breaking every command.
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

import lightning.pytorch as pl
import yaml

ENTRY_POINT_GROUP = "framework.plugins"
REAL_DATA_DIR = "real_data"  # configs below a folder of this name need user-supplied files
EXPERIMENTS_DIR = "experiments"  # experiment files (framework experiment run), not configs
WRAP = {"break_long_words": False, "break_on_hyphens": False}  # paths and class paths stay whole in the listings


class PluginLookupError(LookupError):
    """No installed plugin provides what was asked for (a config folder or a demo); the message lists what exists."""


@dataclass(frozen=True)
class PluginInfo:
    """What one registered plugin provides, or (``missing`` set) why it cannot be imported and how to fix that."""

    name: str
    module: str
    models: tuple[str, ...] = ()
    datamodules: tuple[str, ...] = ()
    configs: tuple[Path, ...] = field(default_factory=tuple)
    experiments: tuple[Path, ...] = field(default_factory=tuple)
    config_dir: Path | None = None
    demo: Path | None = None
    default_demo: bool = False
    missing: str | None = None  # "needs <module>: pip install ..." when a dependency is not installed

    def builtin_data_configs(self) -> tuple[Path, ...]:
        """The configs that run on built-in data (all but those below a ``real_data/`` folder)."""
        return tuple(c for c in self.configs if REAL_DATA_DIR not in c.relative_to(self.config_dir).parts[:-1])

    def builtin_data_experiments(self) -> tuple[Path, ...]:
        """The experiment files that run on built-in data (all but those below a ``real_data/`` folder)."""
        return tuple(e for e in self.experiments if REAL_DATA_DIR not in e.relative_to(self.config_dir).parts[:-1])


def _defined_subclasses(module: ModuleType, base: type) -> tuple[str, ...]:
    """Names of classes exported by ``module`` (its namespace or ``__all__``) that subclass ``base``."""
    names = getattr(module, "__all__", None) or dir(module)
    found = []
    for name in names:
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not inspect.isabstract(obj):
            found.append(obj.__name__)
    return tuple(sorted(set(found)))


def install_hint(plugin: str, missing_module: str, dist_name: str | None, dist_extras: list[str]) -> str:
    """The one-line fix for a plugin whose dependency ``missing_module`` is not installed.

    Uses the distribution's extra named after the plugin when it declares one (extras compare under PEP 685
    normalisation, so ``meta_rl`` matches ``meta-rl``), else names the missing module itself.
    """

    def normalise(name: str) -> str:
        return name.lower().replace("_", "-").replace(".", "-")

    if dist_name and normalise(plugin) in {normalise(e) for e in dist_extras}:
        return f"needs {missing_module}: pip install '{dist_name}[{plugin}]'"
    return f"needs {missing_module}: pip install {missing_module}"


def _missing_dependency(ep: EntryPoint, err: ModuleNotFoundError) -> str | None:
    """The install hint when ``err`` is a missing third-party module (not a broken plugin), else None."""
    missing = (err.name or "").split(".")[0]
    own_package = ep.value.split(".")[0]
    if not missing or missing == own_package:
        return None
    dist = getattr(ep, "dist", None)
    extras = (dist.metadata.get_all("Provides-Extra") or []) if dist is not None else []
    return install_hint(ep.name, missing, dist.metadata["Name"] if dist is not None else None, extras)


def _describe(ep: EntryPoint, module: ModuleType) -> PluginInfo:
    own = getattr(module, "CONFIG_DIR", None)
    config_dir = Path(own) if own is not None else None
    found = tuple(sorted(config_dir.rglob("*.yaml"))) if config_dir is not None and config_dir.is_dir() else ()
    experiments = tuple(p for p in found if EXPERIMENTS_DIR in p.relative_to(config_dir).parts[:-1])
    configs = tuple(p for p in found if p not in experiments)
    demo = getattr(module, "DEMO_CONFIG", None)
    return PluginInfo(
        name=ep.name,
        module=ep.value,
        models=_defined_subclasses(module, pl.LightningModule),
        datamodules=_defined_subclasses(module, pl.LightningDataModule),
        configs=configs,
        experiments=experiments,
        config_dir=config_dir,
        demo=Path(demo) if demo is not None else None,
        default_demo=bool(getattr(module, "DEFAULT_DEMO", False)),
    )


@cache
def load_plugins() -> tuple[PluginInfo, ...]:
    """Import every module registered under ``framework.plugins`` and describe it.

    A plugin whose third-party dependency is missing is described with ``missing`` set (its install command).

    Raises:
        ImportError: a registered module fails to import for any other reason; the message names the entry point.
    """
    infos = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            module = importlib.import_module(ep.value)
        except ModuleNotFoundError as err:
            hint = _missing_dependency(ep, err)
            if hint is None:
                raise _broken(ep, err) from err
            infos.append(PluginInfo(name=ep.name, module=ep.value, missing=hint))
            continue
        except Exception as err:  # re-raised with the entry point named, so the user knows which plugin broke
            raise _broken(ep, err) from err
        infos.append(_describe(ep, module))
    return tuple(infos)


def _broken(ep: EntryPoint, err: Exception) -> ImportError:
    return ImportError(
        f"plugin {ep.name!r} (entry point {ep.name} = {ep.value!r} in group {ENTRY_POINT_GROUP!r}) "
        f"failed to import: {err}. Fix the plugin or uninstall the package that registers it."
    )


def all_configs() -> list[Path]:
    """Every config that runs on built-in data, of every importable plugin (the conformance suite runs these)."""
    return [cfg for info in load_plugins() for cfg in info.builtin_data_configs()]


def all_experiments() -> list[Path]:
    """Every experiment file (``<CONFIG_DIR>/experiments/*.yaml``) of every importable plugin."""
    return [path for info in load_plugins() for path in info.experiments]


def config_dir(plugin: str) -> Path:
    """The config folder of an installed plugin, found by its registered name.

    Raises:
        PluginLookupError: no plugin of that name is installed, or it ships no configs (the message lists what exists).
    """
    infos = {info.name: info for info in load_plugins()}
    info = infos.get(plugin)
    if info is None or info.config_dir is None:
        with_configs = sorted(n for n, i in infos.items() if i.config_dir is not None)
        raise PluginLookupError(
            f"plugin {plugin!r} has no config folder; installed plugins with configs: {with_configs}"
        )
    return info.config_dir


def demo_config(plugin: str | None = None) -> Path:
    """The config ``framework demo [plugin]`` runs: that plugin's ``DEMO_CONFIG``, or the one plugin marked
    ``DEFAULT_DEMO`` when no name is given.

    Raises:
        PluginLookupError: the named plugin has no demo, or not exactly one installed plugin is the default.
    """
    infos = [info for info in load_plugins() if info.demo is not None]
    names = sorted(info.name for info in infos)
    if plugin is not None:
        chosen = [info for info in infos if info.name == plugin]
        if not chosen:
            raise PluginLookupError(f"plugin {plugin!r} declares no DEMO_CONFIG; plugins with a demo: {names}")
        return chosen[0].demo
    defaults = [info for info in infos if info.default_demo]
    if len(defaults) != 1:
        raise PluginLookupError(
            f"{len(defaults)} installed plugins set DEFAULT_DEMO; name one: `framework demo <plugin>` with <plugin> in "
            f"{names}"
        )
    return defaults[0].demo


def format_plugins(infos: tuple[PluginInfo, ...]) -> str:
    """A human-readable listing for ``framework plugins``."""
    if not infos:
        return f"No plugins registered under the entry-point group {ENTRY_POINT_GROUP!r}."
    lines = []
    for info in infos:
        lines.append(f"{info.name}  ({info.module})")
        if info.missing is not None:
            lines.append(f"  not available: {info.missing}")
            continue
        lines.append(f"  models:      {', '.join(info.models) or '-'}")
        lines.append(f"  datamodules: {', '.join(info.datamodules) or '-'}")
        cfgs = [_display_path(c) for c in info.configs]
        lines.append(f"  configs:     {', '.join(cfgs) or '-'}")
        if info.experiments:
            lines.append(f"  experiments: {', '.join(_display_path(e) for e in info.experiments)}")
        if info.demo is not None:
            lines.append(f"  demo:        framework demo {info.name}{'  (the default)' if info.default_demo else ''}")
    return "\n".join(lines)


def find_plugin(name: str) -> PluginInfo:
    """The installed plugin registered as ``name``.

    Raises:
        PluginLookupError: no plugin of that name is installed (the message lists the installed ones).
    """
    infos = {info.name: info for info in load_plugins()}
    if name not in infos:
        raise PluginLookupError(f"no plugin named {name!r}; installed plugins: {', '.join(sorted(infos)) or 'none'}.")
    return infos[name]


@dataclass(frozen=True)
class InitArgument:
    """One init argument of a model or datamodule class as the CLI parses it."""

    name: str
    type: str  # the annotation, without module prefixes
    default: str | None  # as it would be written in YAML; None when the argument is required
    help: str  # the description from the class's docstring ("" when it has none)


def init_arguments(cls: type) -> list[InitArgument]:
    """The init arguments of ``cls`` with type, default and description, resolved the way ``framework fit
    --model.help`` resolves them (jsonargparse's signature and docstring parsing, so what this lists is what the
    help shows)."""
    from jsonargparse._parameter_resolvers import get_signature_parameters  # the resolver behind the CLI's help

    return [
        InitArgument(
            name=param.name,
            type=_type_name(param.annotation),
            default=None if param.default is inspect.Parameter.empty else _yaml_value(param.default),
            help=" ".join((param.doc or "").split()),
        )
        for param in get_signature_parameters(cls, "__init__")
    ]


def _type_name(annotation: object) -> str:
    """``typing.Optional[torch.optim.optimizer.Optimizer]`` -> ``Optimizer | None``: short, as a reader writes it."""
    if annotation is inspect.Parameter.empty:
        return "any"
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    text = re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text)  # module prefixes
    optional = re.fullmatch(r"Optional\[(.*)\]", text)
    return f"{optional.group(1)} | None" if optional else text


def _yaml_value(value: object) -> str:
    """A default as it would be written in a YAML config (functions and classes by name)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_yaml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    if callable(value):
        return getattr(value, "__qualname__", repr(value))
    return str(value)


def _first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph (a full stop after a word, followed by a capital or a
    backtick, ends it; ``x . w``, ``e.g.`` and ``i.e.`` do not)."""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    first = re.split(r"(?<![\s.])(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z`])", paragraph, maxsplit=1)[0]
    return first.rstrip(".") + "." if first else ""


def _first_comment(path: Path) -> str:
    """The first sentence of the comment a config starts with (what the config is for), else ""."""
    block = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        block.append(line.lstrip("#").strip())
    return _first_sentence(" ".join(block))


def _title(path: Path) -> str:
    """The ``title:`` of an experiment file ("" when it has none or does not parse)."""
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return ""
    return str(content.get("title") or "") if isinstance(content, dict) else ""


def _describe_class(cls: type, section: str) -> list[str]:
    """The lines of one model (``section="model"``) or datamodule (``"data"``) class in ``framework plugins NAME``."""
    summary = _first_sentence(inspect.getdoc(cls) or "")
    lines = [f"  {section} {cls.__name__}  ({cls.__module__}.{cls.__qualname__})"]
    lines += (
        textwrap.wrap(summary, width=116, initial_indent="    ", subsequent_indent="    ", **WRAP) if summary else []
    )
    for arg in init_arguments(cls):
        lines.append(f"    {arg.name}: {arg.type}" + (" (required)" if arg.default is None else f" = {arg.default}"))
        lines += textwrap.wrap(
            arg.help or "(no description)", width=116, initial_indent=" " * 8, subsequent_indent=" " * 8, **WRAP
        )
    lines.append(f"    more: framework fit --{section}.help {cls.__name__}")
    return lines


def format_plugin(info: PluginInfo) -> str:
    """What ``framework plugins NAME`` prints: the plugin's model and datamodule classes, each init argument with
    its type, default and description, its configs (with the first sentence of their leading comment) and experiment
    files (with their ``title:``), and the commands that show more."""
    lines = [f"{info.name}  ({info.module})"]
    if info.missing is not None:
        return "\n".join([*lines, f"  not available: {info.missing}"])
    module = importlib.import_module(info.module)
    about = " ".join((inspect.getdoc(module) or "").split("\n\n")[0].split())
    lines += textwrap.wrap(about, width=118, initial_indent="  ", subsequent_indent="  ", **WRAP) if about else []
    for section, names in (("model", info.models), ("data", info.datamodules)):
        for name in names:
            lines += ["", *_describe_class(getattr(module, name), section)]
    lines += ["", "  configs (framework fit --config FILE):"]
    lines += [line for c in info.configs for line in _entry(_display_path(c), _first_comment(c))] or ["    -"]
    if info.experiments:
        lines += ["", "  experiments (framework experiment run FILE):"]
        lines += [line for e in info.experiments for line in _entry(_display_path(e), _title(e))]
    if info.demo is not None:
        lines += ["", f"  demo: framework demo {info.name}"]
    lines += [
        "",
        "  more: framework fit --model.help CLASS / --data.help CLASS (every option of a class, nested ones included);",
        "        framework fit --model CLASS --model.init_args.optimizer.help OPTIMIZER (an optimizer's options);",
        "        framework fit --config FILE --print_config (a config with every default filled in)",
    ]
    return "\n".join(lines)


def _entry(path: str, about: str) -> list[str]:
    """A config or experiment file with what it is for, wrapped under it."""
    return textwrap.wrap(f"{path}  {about}", width=118, initial_indent="    ", subsequent_indent=" " * 8, **WRAP) or []


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
