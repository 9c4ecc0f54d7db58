"""The built-in plugins' configs, one folder per plugin; installed as ``framework_plugins.configs`` package data so a
wheel carries them (each plugin's ``CONFIG_DIR`` points at its folder here)."""
