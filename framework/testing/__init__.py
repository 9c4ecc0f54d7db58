"""The conformance suite every plugin config must pass, and small fixtures for framework tests.

Plugin authors: ``from framework.testing.conformance import CHECKS`` and parametrize over your configs, as
``tests/conformance/test_configs.py`` does for the built-in ones.
"""
