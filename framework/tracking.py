"""What one ``framework`` command records about itself, laid out the way W&B documents multi-stage jobs.

Every command (fit, a resume, test, validate, predict) is its own W&B run with its own id; all runs of one run dir
share a W&B group (an experiment's runs share the experiment's group instead, ``$WANDB_RUN_GROUP``) and carry their
``job_type``. A command that loads a checkpoint logs at the checkpoint's training step (test metrics sit on the
training curve's x-axis) and records the checkpoint path and the id of the run that wrote it (``parent_run_id``).
The logger config is the readable form of the resolved config (``model.hidden``, ``data.n_train``, ``model.class``),
and YAML written here keeps every string a string for the config loader (``6239e636`` is not ``inf``).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import get_loader, set_dumper

GROUP_FILE = "wandb_group.txt"
CHECKPOINT_RUN_KEY = "framework_run"  # the W&B run (and job) that wrote a checkpoint


@dataclass(frozen=True)
class Invocation:
    """One command run on a run dir: what its W&B run, its invocation record and its checkpoints say about it.

    Attributes:
        job_type: ``fit``, ``resume``, ``validate``, ``test`` or ``predict``.
        run_dir: the run directory.
        run_name: ``<config dir>/<config name>``, the place of the run dir under ``runs/``.
        group: the W&B group of this run dir (or of the experiment); None without a W&B logger.
        wandb_run_id: this command's W&B run id; None without a W&B logger.
        ckpt_path: the checkpoint loaded, if any.
        ckpt_step: the training step of that checkpoint (where this command logs), if known.
        parent_run_id: the W&B run id of the command that wrote that checkpoint, if recorded.
    """

    job_type: str
    run_dir: str
    run_name: str
    group: str | None = None
    wandb_run_id: str | None = None
    ckpt_path: str | None = None
    ckpt_step: int | None = None
    parent_run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON and logger config)."""
        return asdict(self)


def job_type(subcommand: str, ckpt_path: str | None) -> str:
    """The W&B job type of a command: its subcommand, ``resume`` for a fit that continues a checkpoint."""
    return "resume" if subcommand == "fit" and ckpt_path else subcommand


def new_run_id() -> str:
    """A fresh W&B run id (8 hex digits; ids like ``6239e636`` stay strings through :func:`dump_yaml`)."""
    return secrets.token_hex(4)


def run_dir_group(run_dir: Path) -> str:
    """The W&B group of ``run_dir``: ``<config name>/<version>-<8 hex>``, created once and kept in
    ``run_dir/wandb_group.txt`` (the hex part keeps runs of equally named run dirs on other machines apart)."""
    path = run_dir / GROUP_FILE
    if path.is_file():
        return path.read_text().strip()
    group = f"{run_dir.parent.name}/{run_dir.name}-{secrets.token_hex(4)}"
    if os.environ.get("LOCAL_RANK", "0") == "0":
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(group)
    return group


def checkpoint_step(checkpoint: dict[str, Any]) -> int | None:
    """The step a checkpoint's fit logged its last metrics at (Lightning's ``_batches_that_stepped``, the x-axis of
    ``trainer/global_step``), falling back to its ``global_step``."""
    loops = checkpoint.get("loops") or {}
    epoch_loop = (loops.get("fit_loop") or {}).get("epoch_loop.state_dict") or {}
    step = epoch_loop.get("_batches_that_stepped", checkpoint.get("global_step"))
    return int(step) if step is not None else None


def readable_config(node: Any) -> Any:
    """A resolved config with every ``{class_path, init_args, dict_kwargs}`` folded into one mapping
    ``{class, <arg>: ...}``, so a logger shows ``model.hidden`` and ``model.optimizer.lr`` instead of
    ``model.init_args.hidden`` (and no Lightning internals such as ``_instantiator``)."""
    if isinstance(node, dict):
        if "class_path" in node:
            args = {**(node.get("init_args") or {}), **(node.get("dict_kwargs") or {})}
            return {"class": node["class_path"], **{k: readable_config(v) for k, v in args.items()}}
        return {k: readable_config(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [readable_config(v) for v in node]
    return node


class _StringSafeDumper(yaml.SafeDumper):
    """Quotes every string the config loader would not read back as that string (``6239e636`` -> ``inf``)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    try:
        ambiguous = get_loader("yaml")(value) != value
    except yaml.YAMLError:
        ambiguous = True
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'" if ambiguous else None)


_StringSafeDumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """YAML of plain data (key order kept) that jsonargparse's loader reads back to equal values: strings that look
    like numbers, booleans or null to it are quoted."""
    return yaml.dump(data, Dumper=_StringSafeDumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def keep_strings_in_yaml() -> None:
    """Make :func:`dump_yaml` jsonargparse's YAML dumper. jsonargparse serializes a class's init args by dumping them
    to YAML and loading that back with its own loader, which reads an unquoted ``6239e636`` as ``inf`` and ``1e5`` as
    ``100000.0``: every config it writes (``--print_config``, the run's recipe) would lose such strings."""
    set_dumper("yaml", dump_yaml)


def offline_run_dir(experiment: Any) -> Path | None:
    """The ``offline-run-*`` directory of an offline W&B run (what ``wandb sync`` uploads); None when the run is
    online or disabled."""
    if getattr(experiment, "disabled", False) or not getattr(experiment, "offline", False):
        return None
    files = getattr(experiment, "dir", None)
    return Path(files).parent if files else None


def sync_hint(offline_dir: Path) -> str:
    """The summary line naming this command's offline W&B run and how to upload it, or every run beside it (each
    command of a run dir is its own run, so syncing them all appends nothing to another run's history)."""
    return (
        f"wandb:       {offline_dir} (offline; upload: `wandb sync {offline_dir}`; "
        f"every run of this run dir: `wandb sync {offline_dir.parent}/offline-run-*`)"
    )
