"""The conformance suite every plugin config must pass, and small fixtures for framework tests.

Plugin authors: ``from framework.testing.conformance import CHECKS`` (every check) and parametrize over your
configs; ``tests/conformance/test_configs.py`` runs ``CONFIG_CHECKS`` on every built-in config and ``PLUGIN_CHECKS``
on each plugin's quick config.
"""
