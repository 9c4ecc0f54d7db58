"""Run the conformance suite over every config of every registered plugin."""

from __future__ import annotations

import pytest

from framework.registry import all_configs, load_plugins
from framework.testing.conformance import CONFIG_CHECKS, PLUGIN_CHECKS, QUICK_ONLY_CHECKS, check_print_config

CONFIGS = all_configs()
REAL_DATA_CONFIGS = [c for info in load_plugins() for c in info.configs if c not in info.builtin_data_configs()]


def _id(path) -> str:
    return f"{path.parent.name}/{path.stem}"


def test_every_plugin_ships_a_quick_config():
    assert CONFIGS, "no configs found: is the package installed (pip install -e .)?"
    plugins = {c.parent.name for c in CONFIGS}
    quick = {c.parent.name for c in CONFIGS if c.stem == "quick"}
    assert plugins == quick, f"plugins without configs/<name>/quick.yaml: {sorted(plugins - quick)}"


@pytest.mark.parametrize("check", list(CONFIG_CHECKS))
@pytest.mark.parametrize("config", [pytest.param(c, marks=pytest.mark.xdist_group(_id(c))) for c in CONFIGS], ids=_id)
def test_conformance(check, config, tmp_path):
    """Each check_* function raises AssertionError (with the reason) when the config does not conform. The checks
    of one config run one after another in one process (``make test`` distributes by ``xdist_group``), where a
    plugin may reuse the data its previous check built (TopoFisher's simulations and diagrams)."""
    CONFIG_CHECKS[check](config, tmp_path)


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.stem == "quick"], ids=_id)
@pytest.mark.parametrize("check", list(PLUGIN_CHECKS))
def test_plugin_conformance(check, config, tmp_path):
    """Checks of a plugin's classes rather than of one config's sizes, on its quick config; like the config checks,
    each raises AssertionError (with the reason) when the plugin does not conform."""
    PLUGIN_CHECKS[check](config, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("config", [c for c in CONFIGS if c.stem == "quick"], ids=_id)
@pytest.mark.parametrize("check", list(QUICK_ONLY_CHECKS))
def test_conformance_quick(check, config, tmp_path):
    check_fn = QUICK_ONLY_CHECKS[check]
    check_fn(config, tmp_path)


@pytest.mark.parametrize("config", REAL_DATA_CONFIGS, ids=_id)
def test_real_data_configs_parse(config, tmp_path):
    """Configs that read user-supplied files cannot fit here; they must still parse and resolve every class."""
    check_print_config(config, tmp_path)
