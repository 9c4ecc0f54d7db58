"""The layering contract of the README, read from the source (AST, no imports): the core imports no plugin, no plugin
imports another, each core module serves several users, and every module-level third-party import is declared by
the core's dependencies or by its plugin's extra."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import defaultdict
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
CORE, PLUGINS, CONFIGS = REPO / "framework", REPO / "plugins", REPO / "configs"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
NAMESPACE = "framework_plugins"

# Core modules with fewer than two plugin users and no core user, kept in the core on purpose. Each line says why.
GENERIC_ALLOW_LIST = {
    # Patient/group-disjoint splits: generic data infrastructure (one plugin today, any grouped dataset tomorrow).
    "framework.data.grouped_splits",
    # Muon and its energy monitor: optimizer and callback any model selects from its config (only the MoE configs
    # do today); the core is where a swappable optimizer belongs.
    "framework.optim.muon",
    "framework.callbacks.hamiltonian",
    # The decoupled-descent probe: a callback any model with probe_features() can use (graph_sparsify's today; the
    # decoupled_descent plugin uses the DD optimizer modules it is built on).
    "framework.callbacks.decoupled_probe",
    # The local executor's fork-server preload: multiprocessing imports it by name (executors.py passes the string).
    "framework.experiments.preload",
    # Helpers for the test suite and conformance checks (tests are their users, not plugins).
    "framework.testing.digest",
    "framework.testing.toy",
    "framework.testing.conformance",
}


def _module_name(path: Path) -> str:
    """``framework/optim/muon.py`` -> ``framework.optim.muon``; ``plugins/x/y.py`` -> ``framework_plugins.x.y``."""
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "plugins":
        parts[0] = NAMESPACE
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module_level_only: bool = False) -> set[str]:
    """Absolute dotted names imported by a file (relative imports resolved against its package); ``from a import b``
    yields both ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    nodes = tree.body if module_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _python_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _plugin_of(path: Path) -> str | None:
    rel = path.relative_to(PLUGINS)
    return rel.parts[0] if len(rel.parts) > 1 else None


def _normalise(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


def _declared(requirements: list[str]) -> set[str]:
    return {_normalise(Requirement(r).name) for r in requirements}


def _third_party(names: set[str]) -> set[str]:
    tops = {name.split(".")[0] for name in names}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in {"framework", NAMESPACE, "__future__"}}


def test_the_core_imports_no_plugin():
    offenders = {
        _module_name(f): sorted(n for n in _imports(f) if n.split(".")[0] in {NAMESPACE, "plugins"})
        for f in _python_files(CORE)
    }
    assert not {m: n for m, n in offenders.items() if n}


def test_no_plugin_imports_another_plugin():
    others = {p.name for p in PLUGINS.iterdir() if (p / "__init__.py").is_file()}
    offenders = {}
    for f in _python_files(PLUGINS):
        plugin = _plugin_of(f)
        if plugin is None:
            continue
        bad = []
        for name in _imports(f):
            parts = name.split(".")
            if parts[0] == "plugins" or (parts[0] == NAMESPACE and len(parts) > 1 and parts[1] in others - {plugin}):
                bad.append(name)
        if bad:
            offenders[_module_name(f)] = bad
    assert not offenders


def test_module_level_third_party_imports_are_declared_by_the_core_or_the_plugin_extra():
    dists = {top: {_normalise(d) for d in ds} for top, ds in packages_distributions().items()}
    core = _declared(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    undeclared = {}
    for f in [*_python_files(CORE), *_python_files(PLUGINS)]:
        plugin = _plugin_of(f) if f.is_relative_to(PLUGINS) else None
        allowed = core | (_declared(extras[plugin]) if plugin in extras else set())
        for top in _third_party(_imports(f, module_level_only=True)):
            if not dists.get(top, {top}) & allowed:
                undeclared.setdefault(_module_name(f), []).append(top)
    assert not undeclared, f"module-level imports not declared in pyproject.toml: {undeclared}"


def _config_references() -> dict[str, set[str]]:
    """Core names used as ``class_path`` in each plugin's configs: {dotted name: {plugin, ...}}."""
    users: dict[str, set[str]] = defaultdict(set)

    def walk(node: object, plugin: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "class_path" and isinstance(value, str) and value.startswith("framework."):
                    users[value].add(plugin)
                walk(value, plugin)
        elif isinstance(node, list):
            for item in node:
                walk(item, plugin)

    for config in CONFIGS.rglob("*.yaml"):
        walk(yaml.safe_load(config.read_text()), config.relative_to(CONFIGS).parts[0])
    return users


def _reexports(package_init: Path) -> dict[str, str]:
    """Names a package ``__init__`` re-exports, mapped to the submodule that defines them."""
    package = _module_name(package_init)
    found = {}
    for node in ast.parse(package_init.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            module = f"{package}.{node.module}" if node.level else node.module
            found.update({f"{package}.{alias.asname or alias.name}": module for alias in node.names})
    return found


def test_every_core_module_has_a_second_user_or_is_on_the_allow_list():
    """A core module is used by two plugins (code or configs), by another core module, or is a listed utility.
    Package ``__init__`` re-exports are followed to the defining module and do not count as users themselves."""
    core_modules = {_module_name(f) for f in _python_files(CORE) if f.name not in {"__init__.py", "__main__.py"}}
    reexported = {k: v for init in CORE.rglob("__init__.py") for k, v in _reexports(init).items()}
    plugin_users: dict[str, set[str]] = defaultdict(set)
    core_users: dict[str, set[str]] = defaultdict(set)

    def used_module(name: str) -> str | None:
        name = reexported.get(name, name)
        return next((m for m in core_modules if name == m or name.startswith(m + ".")), None)

    for name, plugins in _config_references().items():
        if (module := used_module(name)) is not None:
            plugin_users[module] |= plugins

    for f in _python_files(PLUGINS):
        for module in filter(None, map(used_module, _imports(f))):
            plugin_users[module].add(_plugin_of(f) or NAMESPACE)
    for f in _python_files(CORE):
        user = _module_name(f)
        if user in core_modules:
            for module in filter(None, map(used_module, _imports(f))):
                if module != user:
                    core_users[module].add(user)
    lonely = sorted(
        m for m in core_modules if len(plugin_users[m]) < 2 and not core_users[m] and m not in GENERIC_ALLOW_LIST
    )
    assert not lonely, {m: sorted(plugin_users[m]) for m in lonely}


def test_the_package_list_covers_every_package_folder():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {_module_name(f) for f in [*CORE.rglob("__init__.py"), *PLUGINS.rglob("__init__.py")]}
    on_disk.add(f"{NAMESPACE}.configs")
    assert on_disk == listed
    assert (CONFIGS / "__init__.py").is_file()


@pytest.mark.parametrize("plugin", sorted(p.name for p in PLUGINS.iterdir() if (p / "__init__.py").is_file()))
def test_every_plugin_is_registered_and_has_its_config_folder(plugin):
    entry_points = PYPROJECT["project"]["entry-points"]["framework.plugins"]
    assert entry_points[plugin] == f"{NAMESPACE}.{plugin}"
    assert (CONFIGS / plugin).is_dir()
