"""Where a result came from: the code's git commit and the versions of the packages that decide it."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def environment() -> dict[str, Any]:
    """The git commit of the checkout the ``framework`` package runs from (``None`` for an installed wheel; ``-dirty``
    when tracked files have changes) and the versions of Python and of the packages that decide a result."""
    versions = {"python": platform.python_version()}
    for package in ("framework", "torch", "lightning", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    commit = None
    try:
        git = ["git", "-C", str(Path(__file__).resolve().parents[1])]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        commit = head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return {"git_commit": commit, "versions": versions}
