"""Plugin discovery: configs and demos come from the plugins (the core names none), a plugin whose extra is missing
is listed with its install command, and a wheel installed outside the source tree lists and runs every config."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from framework.cli import main
from framework.registry import REAL_DATA_DIR, PluginLookupError, config_dir, demo_config, install_hint, load_plugins

REPO = Path(__file__).resolve().parents[2]
BUILTIN = (
    "decoupled_descent",
    "drifting",
    "flow_matching",
    "gap_transformer",
    "graph_sparsify",
    "meta_rl",
    "moe_transformer",
    "topofisher",
)


def _run_framework(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "framework", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def _assert_demo_runs(env: dict[str, str], cwd: Path) -> None:
    """``framework demo`` (the default plugin), shortened, fits and tests in ``cwd`` and writes its checkpoint."""
    short = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
    short += ["--trainer.limit_test_batches=1", "--trainer.enable_progress_bar=false", "--run_dir=demo"]
    ran = _run_framework(["demo", *short], env, cwd, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "== test finished: FlowMatching ==" in ran.stdout
    assert (cwd / "demo" / "checkpoints" / "last.ckpt").is_file()


def test_every_builtin_plugin_declares_its_config_folder_and_a_runnable_demo():
    infos = {info.name: info for info in load_plugins()}
    assert set(BUILTIN) <= set(infos)
    for name in BUILTIN:
        info = infos[name]
        assert info.missing is None, info.missing
        assert info.config_dir is not None and info.config_dir.name == name and info.config_dir.is_dir()
        assert info.demo is not None and info.demo.is_file() and info.demo in info.configs
        on_disk = sorted(info.config_dir.rglob("*.yaml"))
        assert sorted(info.configs + info.experiments) == on_disk  # nested folders included, nothing lost
        assert info.experiments and all(p.parent.name == "experiments" for p in info.experiments)
        assert not set(info.configs) & set(info.experiments)
    nested = [c for c in infos["graph_sparsify"].configs if REAL_DATA_DIR in c.parts]
    assert nested and not set(nested) & set(infos["graph_sparsify"].builtin_data_configs())


def test_the_default_demo_is_the_one_plugin_that_claims_it():
    defaults = [info.name for info in load_plugins() if info.default_demo]
    assert defaults == ["flow_matching"]
    assert demo_config() == demo_config("flow_matching")
    assert demo_config("topofisher").parent.name == "topofisher"


def test_an_unknown_demo_fails_with_one_line_listing_the_choices(capsys):
    with pytest.raises(PluginLookupError, match=r"'nope'.*flow_matching"):
        demo_config("nope")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "nope"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'nope'" in err and "topofisher" in err


@pytest.mark.parametrize(
    ("extras", "expected"),
    [
        (["meta-rl", "all"], "needs gymnasium: pip install 'framework[meta_rl]'"),  # PEP 685 normalised name
        (["meta_rl"], "needs gymnasium: pip install 'framework[meta_rl]'"),
        (["topofisher"], "needs gymnasium: pip install gymnasium"),  # no extra for this plugin: name the module
        ([], "needs gymnasium: pip install gymnasium"),
    ],
)
def test_install_hint_uses_the_plugin_extra_when_the_distribution_declares_it(extras, expected):
    assert install_hint("meta_rl", "gymnasium", "framework", extras) == expected


def _fake_distribution(site: Path, package: str, init: str, extras: list[str]) -> None:
    """A package plus the dist-info pip would write for it, registering ``package`` as a plugin of that name."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(init)
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    metadata = ["Metadata-Version: 2.1", f"Name: {package.replace('_', '-')}-dist", "Version: 0.1"]
    metadata += [f"Provides-Extra: {extra}" for extra in extras]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    (info / "entry_points.txt").write_text(f"[framework.plugins]\n{package} = {package}\n")


def test_a_plugin_with_a_missing_dependency_is_listed_with_its_install_command(tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "needy_plugin", "import module_that_is_not_installed\n", extras=["needy-plugin"])
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "disabled"}
    listed = _run_framework(["plugins"], env, tmp_path, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "needy_plugin  (needy_plugin)" in listed.stdout
    assert "not available: needs module_that_is_not_installed: pip install 'needy-plugin-dist[needy_plugin]'" in (
        listed.stdout
    )
    assert "FlowMatching" in listed.stdout  # the other plugins are unaffected


def test_a_plugin_broken_in_its_own_code_is_refused_with_its_entry_point_named(tmp_path):
    site = tmp_path / "site"
    _fake_distribution(site, "broken_plugin", "from broken_plugin import no_such_submodule\n", extras=[])
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "disabled"}
    listed = _run_framework(["plugins"], env, tmp_path, timeout=120)
    assert listed.returncode != 0
    assert "plugin 'broken_plugin' (entry point broken_plugin = 'broken_plugin'" in listed.stderr


@pytest.mark.slow
def test_a_wheel_installed_outside_the_source_tree_lists_and_runs_every_config(tmp_path):
    """``pip wheel`` + ``pip install`` into a fresh folder, run from a folder that is not the checkout: every built-in
    config (nested ones included) comes from inside the installed package and ``framework demo`` fits and tests."""
    wheels, site, work, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "work", tmp_path / "source"
    work.mkdir()
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, text=True, cwd=REPO, check=True)
    for name in filter(None, tracked.stdout.split("\0")):  # a copy, so the build leaves no build/ in the checkout
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("framework-*.whl")
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=600
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    # PYTHONPATH comes before site-packages, so the wheel's copy shadows the checkout's editable install (whose
    # finder is appended after the path finder); the probe proves it.
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "disabled"}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import framework, framework_plugins; print(framework.__file__); print(framework_plugins.__file__)",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert all(line.startswith(str(site)) for line in probe.stdout.split()), probe.stdout

    listed = _run_framework(["plugins"], env, work, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for name in BUILTIN:
        assert f"{name}  (framework_plugins.{name})" in listed.stdout
    shipped = sorted(p.relative_to(REPO / "configs") for p in (REPO / "configs").rglob("*.yaml"))
    installed_configs = sorted(
        p.relative_to(site / "framework_plugins" / "configs")
        for p in (site / "framework_plugins" / "configs").rglob("*.yaml")
    )
    assert installed_configs == shipped
    assert any(REAL_DATA_DIR in p.parts for p in installed_configs)
    for config in shipped:
        assert str(site / "framework_plugins" / "configs" / config) in listed.stdout, config

    _assert_demo_runs(env, work)


def _extra_only_modules() -> set[str]:
    """Top-level modules installed by an extra (plugin extras, tensorboard, dev) and not by the core dependencies."""
    import tomllib
    from importlib.metadata import packages_distributions

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    norm = lambda name: name.lower().replace("_", "-")  # noqa: E731
    core = {norm(Requirement(r).name) for r in project["dependencies"]}
    extra = {norm(Requirement(r).name) for reqs in project["optional-dependencies"].values() for r in reqs}
    extra -= core | {"framework"}
    return {top for top, dists in packages_distributions().items() if {norm(d) for d in dists} & extra}


def test_the_core_runs_without_any_plugin_extra(tmp_path):
    """With every extra-only module made unimportable, the core imports, the plugins that need an extra are listed
    with their install command, and ``framework demo`` (a core-only plugin) fits and tests."""
    blocked = _extra_only_modules()
    assert {"gudhi", "gymnasium", "statsmodels", "torch_geometric", "networkx"} <= blocked
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import importlib.abc, importlib.machinery, sys\n"
        f"BLOCKED = {sorted(blocked)!r}\n"
        "class Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:  # a spec without origin whose loading fails like a missing module\n"
        "            return importlib.machinery.ModuleSpec(name, self)\n"
        "    def create_module(self, spec):\n"
        "        raise ModuleNotFoundError(f'No module named {spec.name!r}', name=spec.name)\n"
        "    def exec_module(self, module):\n"
        "        pass\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(blocker), "WANDB_MODE": "disabled"}
    core_modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in (REPO / "framework").rglob("*.py")
        if p.name != "__main__.py"
    )
    script = f"import importlib\nfor m in {core_modules!r}: importlib.import_module(m)\n"
    script += "print('core imported')\nimport gudhi"
    imported = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert imported.stdout.strip() == "core imported", imported.stderr  # and the blocker really blocks:
    assert imported.stderr.strip().endswith("ModuleNotFoundError: No module named 'gudhi'"), imported.stderr
    listed = _run_framework(["plugins"], env, tmp_path, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for plugin in ("gap_transformer", "graph_sparsify", "meta_rl", "topofisher"):
        assert f"pip install 'framework[{plugin}]'" in listed.stdout, listed.stdout
    assert "FlowMatching" in listed.stdout
    _assert_demo_runs(env, tmp_path)


# -- discoverable arguments: every init argument described, `framework plugins NAME`, short help ------------------
def _documented_classes() -> list[tuple[str, type]]:
    """(id, class) of every model and datamodule class of every registered plugin, plus the framework's toy classes
    (tests and benchmarks name them in configs)."""
    from framework.testing.toy import ToyRegression, ToyRegressionData

    found = []
    for info in load_plugins():
        if info.missing is None:
            module = importlib.import_module(info.module)
            found += [(f"{info.name}.{name}", getattr(module, name)) for name in info.models + info.datamodules]
    return found + [(f"toy.{cls.__name__}", cls) for cls in (ToyRegression, ToyRegressionData)]


def _example_plugin_classes(monkeypatch) -> list[type]:
    """The classes of examples/third_party_plugin (not installed in this environment: imported from its folder)."""
    monkeypatch.syspath_prepend(str(REPO / "examples" / "third_party_plugin"))
    monkeypatch.delitem(sys.modules, "framework_demo_plugin", raising=False)
    module = importlib.import_module("framework_demo_plugin")
    return [getattr(module, name) for name in module.__all__]


def _undescribed(cls: type) -> list[str]:
    """Init arguments of ``cls`` without a description, as the CLI's help resolves them (jsonargparse reads the
    ``Args:`` sections of the class and ``__init__`` docstrings), plus ``Args:`` entries that name no argument
    (a combined ``a, b: ...`` line documents neither a nor b)."""
    import docstring_parser
    from jsonargparse._parameter_resolvers import get_signature_parameters

    params = get_signature_parameters(cls, "__init__")
    missing = [p.name for p in params if not (p.doc or "").strip()]
    documented = [
        p.arg_name
        for doc in (cls.__doc__, cls.__init__.__doc__)
        if doc
        for p in docstring_parser.parse(doc, docstring_parser.DocstringStyle.GOOGLE).params
    ]
    stray = [f"documented but no argument: {name!r}" for name in documented if name not in {p.name for p in params}]
    return missing + stray


@pytest.mark.parametrize(("cls"), [cls for _, cls in _documented_classes()], ids=[i for i, _ in _documented_classes()])
def test_every_init_argument_of_every_plugin_class_has_a_description(cls):
    assert _undescribed(cls) == [], f"{cls.__qualname__}: describe these in the Args: section of its docstring"


def _nested_plugin_classes() -> list[type]:
    """Plugin classes a config names inside a model or datamodule (``class_path: framework_plugins...`` in a shipped
    config or experiment file), and every component class of TopoFisher's pipeline (summary networks,
    vectorizations, filtrations, simulators), named in a config or not."""
    import inspect

    from framework_plugins.topofisher.filtrations import Filtration
    from framework_plugins.topofisher.simulators import Simulator
    from framework_plugins.topofisher.summaries import SummaryNetwork
    from framework_plugins.topofisher.vectorizations import Vectorization

    def class_paths(node: object) -> list[str]:
        if isinstance(node, dict):
            own = [node["class_path"]] if isinstance(node.get("class_path"), str) else []
            return own + [path for value in node.values() for path in class_paths(value)]
        return [path for value in node for path in class_paths(value)] if isinstance(node, list) else []

    found: dict[str, type] = {}
    for info in load_plugins():
        for path in info.configs + info.experiments:
            for class_path in class_paths(yaml.safe_load(path.read_text())):
                if class_path.startswith("framework_plugins."):
                    module, _, name = class_path.rpartition(".")
                    cls = getattr(importlib.import_module(module), name)
                    found[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def subclasses(base: type) -> list[type]:
        return [c for sub in base.__subclasses__() for c in [sub, *subclasses(sub)]]

    for base in (SummaryNetwork, Vectorization, Filtration, Simulator):
        for cls in subclasses(base):
            if cls.__module__.startswith("framework_plugins.") and not inspect.isabstract(cls):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[key] for key in sorted(found)]


def test_every_plugin_class_a_config_nests_describes_every_init_argument():
    classes = _nested_plugin_classes()
    names = {cls.__name__ for cls in classes}
    assert {"TopologicalSummary", "PersLay", "GaussianSmoothing", "GRF", "GeometryProbe", "CNNFiltration"} <= names
    undescribed = {cls.__qualname__: missing for cls in classes if (missing := _undescribed(cls))}
    assert undescribed == {}


def test_the_example_plugin_classes_describe_every_init_argument(monkeypatch):
    classes = _example_plugin_classes(monkeypatch)
    assert [c.__name__ for c in classes] == ["DemoRegression", "DemoRegressionData"]
    for cls in classes:
        assert _undescribed(cls) == [], cls.__qualname__


def test_a_class_with_an_undescribed_or_combined_argument_is_caught():
    class Combined:
        """A class.

        Args:
            a, b: both at once (docstring parsers read one argument named "a, b").
        """

        def __init__(self, a: int = 1, b: int = 2, c: int = 3) -> None: ...

    assert _undescribed(Combined) == ["a", "b", "c", "documented but no argument: 'a, b'"]


def _normalised(text: str) -> str:
    return " ".join(text.split())


def test_plugins_name_lists_each_class_with_its_arguments_defaults_and_help_and_the_configs(capsys):
    from framework.registry import init_arguments
    from framework_plugins.moe_transformer import MoELanguageModel

    main(["plugins", "moe_transformer"])
    captured = capsys.readouterr()
    out, lines = captured.out, captured.out.splitlines()
    assert captured.err == ""
    assert lines[0] == "moe_transformer  (framework_plugins.moe_transformer)"
    assert "  model MoELanguageModel  (framework_plugins.moe_transformer.module.MoELanguageModel)" in lines
    assert "  data StdlibBytes  (framework_plugins.moe_transformer.datamodule.StdlibBytes)" in lines
    # each argument: "name: type = default", then its description
    help_of = {arg.name: arg.help for arg in init_arguments(MoELanguageModel)}
    assert help_of["d_model"].startswith("width of the byte embeddings")
    start = lines.index("    d_model: int = 64")
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith(" " * 8):
            break
        block.append(line)
    assert _normalised(" ".join(block)) == help_of["d_model"]
    assert "    top_k: int | None = null" in lines and "    max_train_bytes: int = 200000" in lines
    assert "    more: framework fit --model.help MoELanguageModel" in lines
    assert "    more: framework fit --data.help StdlibBytes" in lines
    # configs and experiment files, each with what it is for
    folder = config_dir("moe_transformer")
    comment = (folder / "quick.yaml").read_text().splitlines()[0].lstrip("# ")
    assert comment and f"configs/moe_transformer/quick.yaml {_normalised(comment)[:30]}" in _normalised(out)
    title = yaml.safe_load((folder / "experiments" / "optimizers.yaml").read_text())["title"]
    assert f"configs/moe_transformer/experiments/optimizers.yaml {_normalised(title)}" in _normalised(out)
    assert "framework demo moe_transformer" in out
    # without a name: the brief listing of every plugin, as before
    main(["plugins"])
    listing = capsys.readouterr().out
    assert "moe_transformer  (framework_plugins.moe_transformer)" in listing
    assert "  models:      MoELanguageModel" in listing and "d_model" not in listing


def test_plugins_with_an_unknown_name_exits_1_with_one_line_naming_the_plugins(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["plugins", "nope"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("framework: error: no plugin named 'nope'")
    assert all(name in err[0] for name in BUILTIN)


def test_model_help_of_topofisher_is_short_and_lists_only_summary_networks(capsys, monkeypatch):
    """``summary`` is typed with the plugin's own SummaryNetwork base, so the help lists its subclasses instead of
    every torch.nn class (it was ~840 lines)."""
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model.help", "TopoFisher"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 150, len(out.splitlines())
    assert "torch.nn.Linear" not in out
    for summary in ("TopologicalSummary", "IMNNNetwork", "PowerSpectrum", "PeakCounts"):
        assert summary in out
    assert "training seeds used to refit the MOPED compression" in _normalised(out)  # the descriptions are shown


@pytest.mark.parametrize(
    ("alias", "runtime"),
    [
        ("framework_plugins.meta_rl.envs:EnvName", "framework_plugins.meta_rl.envs:ENVS"),
        ("framework_plugins.drifting.datamodule:Target", "framework_plugins.drifting.datamodule:TARGETS"),
        ("framework_plugins.flow_matching.targets:Target", "framework_plugins.flow_matching.targets:TARGETS"),
        (
            "framework_plugins.graph_sparsify.datamodule:DatasetName",
            "framework_plugins.graph_sparsify.datamodule:DATASETS",
        ),
    ],
)
def test_the_literal_choices_of_a_config_match_the_names_the_code_accepts(alias, runtime):
    from typing import get_args

    def load(spec: str) -> object:
        module, name = spec.split(":")
        return getattr(importlib.import_module(module), name)

    assert get_args(load(alias)) == tuple(load(runtime))
