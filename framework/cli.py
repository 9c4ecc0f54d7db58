"""The ``framework`` command: LightningCLI with plugin discovery, run directories, safe resume and sane defaults.

``framework fit|validate|test|predict --config configs/<plugin>/<name>.yaml [overrides]`` runs a Trainer method;
``framework plugins`` lists what is installed (``framework plugins NAME``: one plugin's classes with every init
argument, its configs and experiment files); ``framework demo [plugin]`` fits and tests a plugin's demo config (the
plugin marked ``DEFAULT_DEMO`` when none is named); ``framework experiment run|report`` and ``framework tune`` run
experiment files and Optuna searches (:mod:`framework.experiments`).

Every run lives in one directory, ``runs/<config-dir>/<config-name>/version_<k>/`` (or ``--run_dir``): the recipe
``config.yaml``, ``invocations.jsonl``, ``checkpoints/{last,epoch=..}.ckpt``, ``figures/`` and the offline ``wandb/``
runs (one W&B run per command, all in the run dir's W&B group: :mod:`framework.tracking`).
``--ckpt_path last`` resumes the newest run of that config that has a ``last.ckpt`` and keeps writing into its
directory; if there is none it stops with an error instead of silently starting over.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml
from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.callbacks.progress import ProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from framework.callbacks import (
    AtomicModelCheckpoint,
    FiniteGuard,
    LineProgressBar,
    LoaderStateCallback,
    MetricHistory,
    NonFiniteError,
    PlainModelSummary,
    PredictionWriter,
    RNGStateCallback,
)
from framework.checkpoint import CheckpointError, load_checkpoint_safely
from framework.config_keys import ConfigValueError, with_config_key
from framework.contract import DataContractError
from framework.experiments.spec import ExperimentError
from framework.provenance import environment
from framework.registry import (
    PluginLookupError,
    demo_config,
    find_plugin,
    format_plugin,
    format_plugins,
    load_plugins,
)
from framework.tracking import (
    CHECKPOINT_RUN_KEY,
    Invocation,
    checkpoint_step,
    dump_yaml,
    job_type,
    keep_strings_in_yaml,
    new_run_id,
    offline_run_dir,
    readable_config,
    run_dir_group,
    sync_hint,
)

DEFAULT_SEED = 1234
RUNS_ROOT = Path("runs")
RUN_DIR_ENV = "FRAMEWORK_RUN_DIR"  # hands the resolved run dir to DDP child processes (they re-run sys.argv)
EXPERIMENT_ENV = "FRAMEWORK_EXPERIMENT"  # JSON {experiment, variant, seed} set by `framework experiment run`
LOGGER_CLASSES = {"WandbLogger", "CSVLogger", "TensorBoardLogger"}
CONFIG_IN_CHECKPOINT = "framework_config"
# what a resume continues unchanged (the optimizer state restores the old learning rate, the RNG state the old seed)
RESUME_FIXED = ("seed_everything", "model", "data")
RESUME_FIXED_TRAINER = ("precision", "accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm")
INVOCATIONS_FILE = "invocations.jsonl"
# top-level config keys the loggers get under `run` (this command's Invocation) instead of as config sections
LOGGED_ELSEWHERE = ("config", "run_dir", "ckpt_path", "weights_only")
RECIPE_HEADER = (
    "# The recipe of this run: `framework fit --config config.yaml` reproduces it from scratch in a new run dir.\n"
    "# How it was run (command lines, resumes, versions, git commit): invocations.jsonl beside this file.\n"
)
UNTRAINED = "untrained"  # --ckpt_path untrained: evaluate freshly initialised weights on purpose
PLUGINS_USAGE = (
    "usage: framework plugins [NAME]: every installed plugin, or one plugin's classes with each init argument, "
    "its configs and experiment files."
)
# shapes a model takes from its datamodule: model.init_args.<name> is linked to the datamodule's attribute <name>
# (where the model class has that argument and the datamodule that attribute); a config may still state it, equal.
# Each name maps to how the error for a disagreeing stated value describes the data's value.
LINKED_SHAPES = {"dim": "the data is {}-dimensional", "block_size": "the data's sequences are {} tokens long"}
LINKED_KEYS = tuple(f"model.init_args.{name}:" for name in LINKED_SHAPES)  # config_differences lines about them
# warnings nobody can act on, matched by the start of their message (every other warning still shows)
KNOWN_NOISE = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning's own use of torch's pytree, once per rank
    r"Your `IterableDataset` has `__len__` defined",  # the framework's loaders run in-process (num_workers=0)
    r"Checkpoint directory .* exists and is not empty",  # a run dir holds one fit: only a resume finds checkpoints
)
# Lightning's info lines that only advertise (matched by their start)
NOISE_INFO = ("💡 Tip: For seamless cloud logging",)
# W&B prints only warnings and errors; the summary names the offline run and its `wandb sync` (the user's env wins)
WANDB_CONSOLE = {"WANDB_QUIET": "true", "WANDB_SHOW_INFO": "false"}
USER_ERRORS = (
    CheckpointError,
    NonFiniteError,
    FileNotFoundError,
    PluginLookupError,
    DataContractError,
    ConfigValueError,
    ExperimentError,
    MisconfigurationException,  # Lightning's own checks of a trainer configuration (a callback that needs a logger)
)


class ConfigSaver(SaveConfigCallback):
    """Write the run's recipe and the record of this invocation into the run dir, and the resolved config to every
    logger (W&B run config, CSV/TensorBoard hparams, with the experiment/variant/seed of a run launched by
    ``framework experiment run``).

    ``config.yaml`` is the recipe: the resolved config of the first fit with every value filled in for this run dir
    (run dir, checkpoint path and directory, logger ids, names and W&B group) put back as the user gave it, so
    ``framework fit --config config.yaml`` reproduces the run from scratch in a new run dir; a resume never
    rewrites it. ``config_<command>.yaml`` is the same for the latest validate/test/predict. ``invocations.jsonl``
    gets one line per command (job type, command line, checkpoint loaded and its step, W&B run id, group and parent
    run, time, git commit, package versions). The loggers get the readable config (``model.hidden``) with this
    command's :class:`~framework.tracking.Invocation` under ``run``. Every checkpoint carries the sections a resume
    must not change (``checkpoint["framework_config"]``) and the W&B run that wrote it
    (``checkpoint["framework_run"]``).
    """

    resolved: dict[str, Any] | None = None

    def __init__(
        self,
        *args: Any,
        run_specific: dict[str, Any] | None = None,
        argv: list[str] | None = None,
        invocation: Invocation,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **{**kwargs, "save_to_log_dir": False})
        self.run_specific, self.argv, self.invocation = dict(run_specific or {}), list(argv or []), invocation

    def save_config(self, trainer: Any, pl_module: LightningModule, stage: str) -> None:
        config = yaml.safe_load(dump_parsed(self.parser, self.config))
        self.resolved = config
        run_dir = Path(trainer.default_root_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        recipe_path = run_dir / self.config_filename
        if self.config_filename != "config.yaml" or not recipe_path.is_file():  # a resume keeps the first record
            dumped = dump_parsed(self.parser, recipe(self.config, self.run_specific))
            recipe_path.write_text(RECIPE_HEADER + dump_yaml(yaml.safe_load(dumped)))
        run = self.invocation.as_dict()
        line = {
            "command": run["job_type"],
            "argv": self.argv,
            **{key: value for key, value in run.items() if key != "job_type"},
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            **environment(),
        }
        with (run_dir / INVOCATIONS_FILE).open("a") as fh:
            fh.write(json.dumps(line) + "\n")
        sections = {key: value for key, value in config.items() if key not in LOGGED_ELSEWHERE}
        record: dict[str, Any] = {**readable_config(sections), "run": {**run, "config_files": config.get("config")}}
        if os.environ.get(EXPERIMENT_ENV):
            record["experiment"] = json.loads(os.environ[EXPERIMENT_ENV])
        for logger in trainer.loggers:
            logger.log_hyperparams(record)

    def on_save_checkpoint(self, trainer: Any, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.resolved is not None:
            checkpoint[CONFIG_IN_CHECKPOINT] = resume_fixed(self.resolved)
        checkpoint[CHECKPOINT_RUN_KEY] = {
            "wandb_run_id": self.invocation.wandb_run_id,
            "job_type": self.invocation.job_type,
        }


def dump_parsed(parser: LightningArgumentParser, config: Namespace) -> str:
    """YAML of a config the parser has already validated (parsing validates), every key kept (None values and link
    targets too). Skipping jsonargparse's second validation changes no byte of the output and saves up to about 0.2 s
    per dump (three per fit; ``scripts/bench_framework.py --startup-only``)."""
    return parser.dump(config, skip_none=False, format="yaml", skip_link_targets=False, skip_validation=True)


def recipe(config: Namespace, run_specific: dict[str, Any]) -> Namespace:
    """A copy of ``config`` with each dotted key of ``run_specific`` (``trainer.logger[1].init_args.id`` for one
    of several loggers) set back to its value there."""
    out = config.clone()
    for key, value in run_specific.items():
        match = re.fullmatch(r"(trainer\.logger)\[(\d+)\]\.(.+)", key)
        if match:
            out[match.group(1)][int(match.group(2))][match.group(3)] = value
        elif key in out:
            out[key] = value
    return out


class FrameworkParser(LightningArgumentParser):
    """The CLI's argument parser: an argument error is one line on stderr (exit status 2) instead of the ~60-line
    usage before it; ``--help`` still lists every option (``FRAMEWORK_DEBUG=1`` raises the error instead)."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or os.environ.get("FRAMEWORK_DEBUG"):
            super().error(message, ex)
        prog = (getattr(ex, "subcommand_parser", None) or self).prog.replace(" [options]", "")
        line = " ".join(str(message).split())
        sys.stderr.write(f"{prog}: error: {line} (the accepted options: {prog} --help)\n")
        self.exit(2)


class FrameworkCLI(LightningCLI):
    """LightningCLI that imports every registered plugin first, so ``--model FlowMatching`` resolves by short name.

    Defaults: seed 1234 (``--seed_everything`` overrides), offline ``WandbLogger`` (``--trainer.logger CSVLogger``
    or ``TensorBoardLogger`` to switch), ``LearningRateMonitor``, an atomic ``ModelCheckpoint(save_last=True)``
    (``--checkpoint.*``), a NaN/inf loss guard, RNG state and loader positions in checkpoints, checkpoints loaded with
    ``weights_only=True``. Optimizers are injected into the model (``--model.init_args.optimizer``), not
    auto-configured.
    """

    run_dir: Path

    def __init__(
        self, args: ArgsType = None, run: bool = True, extra_callbacks: list[Any] | None = None, **kwargs: Any
    ) -> None:
        quiet_console()
        load_plugins()
        keep_strings_in_yaml()
        check_config_files(sys.argv[1:] if args is None else args)
        kwargs.setdefault("parser_class", FrameworkParser)
        kwargs.setdefault("seed_everything_default", DEFAULT_SEED)
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("save_config_callback", ConfigSaver)
        kwargs.setdefault("save_config_kwargs", {})
        argv = sys.argv[1:] if args is None else args
        self.argv = [str(a) for a in argv] if isinstance(argv, list | tuple) else []
        self.invoked = self.argv[0] if self.argv and self.argv[0] in LightningCLI.subcommands() else None
        # no argparse prefix matching: `--trainer.max_epoch 3` must be an error, not silently `max_epochs`
        # (one dict per subcommand: Lightning sets each subcommand parser's description in it)
        per_subcommand = {name: {"allow_abbrev": False} for name in self.subcommands()}
        kwargs.setdefault("parser_kwargs", {**per_subcommand, "allow_abbrev": False})
        defaults = [FiniteGuard(), RNGStateCallback(), LoaderStateCallback(), PredictionWriter(), MetricHistory()]
        kwargs.setdefault("trainer_defaults", {"callbacks": [*defaults, *(extra_callbacks or [])]})
        try:
            super().__init__(
                model_class=LightningModule,
                datamodule_class=LightningDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                args=args,
                run=run,
                **kwargs,
            )
        except ValueError as err:  # library code names its own parameter; name the config key that set it
            config = getattr(self, "config", None)
            if config is None:
                raise
            section = config.get(self.subcommand) if getattr(self, "subcommand", None) else config
            mapped = with_config_key(err, section.as_dict())
            if mapped is err:
                raise
            raise mapped from err

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        """Lightning's subcommands (name -> Trainer-method arguments the CLI skips), only the invoked one when the
        command line starts with it: each subcommand's parser costs about 0.1 s of signature parsing and a command
        runs one. ``framework --help`` and a misspelt subcommand still get all four."""
        every = LightningCLI.subcommands()
        return {self.invoked: every[self.invoked]} if self.invoked else every

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        """Lightning's subcommand parser, with ``verbose: false`` for ``validate`` and ``test``: their metrics are
        printed once, untruncated, in the framework's summary (``--verbose true`` adds Lightning's table)."""
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if "verbose" in self._subcommand_method_arguments[subcommand]:
            parser.set_defaults(verbose=False)
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="Directory of this run (config, checkpoints, figures, logs). Default: "
            "runs/<config dir>/<config name>/version_<k>, a new k per fit, the newest with --ckpt_path last.",
        )
        parser.add_lightning_class_args(AtomicModelCheckpoint, "checkpoint")
        for name in LINKED_SHAPES:  # jsonargparse skips a link whose datamodule lacks the attribute or model the arg
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
        parser.set_defaults(
            {
                "checkpoint.save_last": True,
                "checkpoint.enable_version_counter": False,  # one fit per run dir: last.ckpt is always the newest
                "trainer.logger": {
                    "class_path": "lightning.pytorch.loggers.WandbLogger",
                    "init_args": {"offline": True, "project": "framework"},
                },
                "trainer.callbacks": [{"class_path": "lightning.pytorch.callbacks.LearningRateMonitor"}],
            }
        )

    # -- parsing: resolve where the run lives and which checkpoint to load, before Lightning reads it ----------
    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        cfg = self.config[subcommand] if subcommand else self.config  # run=False has no subcommand level
        ckpt_path = cfg.get("ckpt_path")
        self.run_dir = resolve_run_dir(cfg.get("run_dir"), run_name(cfg), resume_last=ckpt_path == "last").absolute()
        cfg.run_dir = str(self.run_dir)
        if ckpt_path == "last":
            ckpt_dir = cfg.checkpoint.get("dirpath") if cfg.get("checkpoint") else None
            ckpt_path = str(Path(ckpt_dir or self.run_dir / "checkpoints") / "last.ckpt")
            if not Path(ckpt_path).is_file():
                raise CheckpointError(
                    f"ckpt_path='last': no {ckpt_path}. Nothing to resume in run dir {self.run_dir}; "
                    "pass --run_dir of the run to resume or --ckpt_path PATH, or drop --ckpt_path to start afresh."
                )
        if subcommand in ("validate", "test", "predict") and ckpt_path is None:
            raise CheckpointError(
                f"ckpt_path is not set: `framework {subcommand}` would evaluate untrained weights. Pass --ckpt_path "
                f"last (the run's newest checkpoint), --ckpt_path PATH, or --ckpt_path {UNTRAINED} to evaluate the "
                "freshly initialised model on purpose."
            )
        if ckpt_path == UNTRAINED:
            cfg.ckpt_path = ckpt_path = None
        if subcommand == "fit" and ckpt_path is None and os.environ.get("LOCAL_RANK", "0") == "0":
            refuse_second_fit(self.run_dir, cfg.checkpoint.get("dirpath") if cfg.get("checkpoint") else None)
        self.checkpoint: dict[str, Any] | None = None
        self.ckpt_step: int | None = None  # where a command that loads a checkpoint logs
        self.parent_run_id: str | None = None  # the W&B run that wrote that checkpoint
        if ckpt_path and ckpt_path not in ("best", "hpc"):
            # refuse corrupt or code-carrying files with a clear message
            self.checkpoint = load_checkpoint_safely(ckpt_path)
            cfg.ckpt_path = ckpt_path
            self.ckpt_step = checkpoint_step(self.checkpoint)
            self.parent_run_id = (self.checkpoint.get(CHECKPOINT_RUN_KEY) or {}).get("wandb_run_id")
        if subcommand and cfg.get("weights_only") is None:
            cfg.weights_only = True  # Lightning then loads every checkpoint with torch.load(weights_only=True)

    def _parse_ckpt_path(self) -> None:
        """Check the checkpoint against the config before Lightning lets its saved hyperparameters replace the
        config's model: a checkpoint of another model class is refused; a fit that resumes with changed model, data,
        seed or optimisation settings is refused (the restored optimizer and RNG state would silently keep the old
        ones while config.yaml recorded the new); for validate/test/predict the checkpoint's values win, and each
        one that differs from the config is named on stderr."""
        if self.checkpoint is None or not self.config.get("subcommand"):
            return
        subcommand = self.config["subcommand"]
        config = yaml.safe_load(dump_parsed(self.parser, self.config))[subcommand]
        ckpt_path = self.config[subcommand]["ckpt_path"]
        hparams = dict(self.checkpoint.get("hyper_parameters") or {})
        saved_class, model_class = hparams.pop("_class_path", None), (config.get("model") or {}).get("class_path")
        if saved_class and model_class and saved_class != model_class:
            raise CheckpointError(
                f"ckpt_path={ckpt_path!r} holds a {saved_class} checkpoint but the config's model is {model_class}. "
                "Pass the config the checkpoint was trained with (its run dir's config.yaml)."
            )
        if subcommand == "fit" and CONFIG_IN_CHECKPOINT in self.checkpoint:
            changed = config_differences(self.checkpoint[CONFIG_IN_CHECKPOINT], resume_fixed(config))
            changed = [line for line in changed if not line.startswith(LINKED_KEYS)]  # they follow the data
            if changed:
                raise CheckpointError(
                    f"resuming from {ckpt_path} with changed settings ({'; '.join(changed)}): a resume continues the "
                    "run exactly as it was (its optimizer state keeps the old learning rate, its RNG state the old "
                    "seed), so these would be recorded but not used. Drop the changed overrides to resume, or start a "
                    "new run (another --run_dir, without --ckpt_path). Allowed on resume: trainer.max_epochs / "
                    "max_steps, logging, callbacks."
                )
        hparams.pop("_instantiator", None)
        self.checkpoint = None  # not kept in memory for the whole run (Lightning loads the file itself to restore)
        init_args = (config.get("model") or {}).get("init_args") or {}
        overridden = config_differences(hparams, {k: init_args.get(k) for k in hparams}, prefix="model.init_args.")
        overridden = [line for line in overridden if not line.startswith(LINKED_KEYS)]  # set from the data anyway
        if overridden and subcommand != "fit":
            print_once(
                f"framework: note: the checkpoint's hyperparameters replace the config's: {'; '.join(overridden)}."
            )
        if hparams:  # what LightningCLI._parse_ckpt_path does, from the checkpoint already loaded (safely) above
            model = {"class_path": saved_class, "dict_kwargs": hparams} if saved_class else hparams
            self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        os.environ[RUN_DIR_ENV] = str(self.run_dir)
        job = job_type(self.subcommand or "fit", cfg.get("ckpt_path"))
        single = not isinstance(cfg.trainer.logger, list)
        loggers = [cfg.trainer.logger] if single else cfg.trainer.logger
        wandb_loggers = [lg for lg in loggers if isinstance(lg, Namespace) and is_wandb(lg)]
        # an experiment groups its runs by experiment ($WANDB_RUN_GROUP), anything else by run dir
        group = (os.environ.get("WANDB_RUN_GROUP") or run_dir_group(self.run_dir)) if wandb_loggers else None
        # every value filled in for this run dir, with the user's value before: the recipe gets those back
        filled: dict[str, Any] = {"run_dir": None, "ckpt_path": None}
        filled["trainer.default_root_dir"] = cfg.trainer.default_root_dir
        cfg.trainer.default_root_dir = str(self.run_dir)
        if cfg.checkpoint.dirpath is None:
            filled["checkpoint.dirpath"] = None
            cfg.checkpoint.dirpath = str(self.run_dir / "checkpoints")
        for i, logger in enumerate(loggers):
            if isinstance(logger, Namespace):
                where = "trainer.logger" if single else f"trainer.logger[{i}]"
                changed = place_logger_in_run_dir(logger, self.run_dir, job, group)
                filled.update({f"{where}.init_args.{key}": value for key, value in changed.items()})
        wandb_args = wandb_loggers[0].init_args if wandb_loggers else None  # its id is set by now
        invocation = Invocation(
            job_type=job,
            run_dir=str(self.run_dir),
            run_name=run_name(cfg),
            group=group,
            wandb_run_id=str(wandb_args.id or wandb_args.version) if wandb_args else None,
            ckpt_path=cfg.get("ckpt_path"),
            ckpt_step=self.ckpt_step,
            parent_run_id=self.parent_run_id,
        )
        self.save_config_kwargs.update(
            config_filename="config.yaml" if self.subcommand in ("fit", None) else f"config_{self.subcommand}.yaml",
            run_specific=filled,
            argv=list(self.argv),
            invocation=invocation,
        )

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        # the loggers get the readable resolved config from ConfigSaver instead of Lightning's record of the
        # model's and datamodule's hyperparameters (which carries LightningCLI internals such as `_instantiator`)
        self.model._log_hyperparams = False
        if self.datamodule is not None:
            self.datamodule._log_hyperparams = False
        self.check_linked_shapes()
        for logger in self.trainer.loggers:  # WandbLogger passes anonymous=None, which wandb warns has no effect
            if isinstance(logger, WandbLogger) and logger._wandb_init.get("anonymous", False) is None:
                del logger._wandb_init["anonymous"]

    def check_linked_shapes(self) -> None:
        """After the links of :data:`LINKED_SHAPES` set the model's ``dim`` / ``block_size`` from the datamodule: a
        value the config states must agree (else one :class:`ConfigValueError` naming both keys), and the config
        records the value the model was built with (config.yaml, checkpoints and loggers show it)."""
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        init_args = cfg.model.get("init_args") if isinstance(cfg.get("model"), Namespace) else None
        for name in LINKED_SHAPES:
            if init_args is not None and name not in init_args:
                # a model without this argument: jsonargparse skips the link, but Lightning still records the linked
                # value among the model's hyperparameters (and load_from_checkpoint would pass it to __init__)
                self.model.hparams.pop(name, None)
                continue
            if init_args is None or not hasattr(self.datamodule, name):
                continue
            linked = getattr(self.datamodule, name)
            if init_args[name] != linked and name in self.stated_model_arguments():
                raise ConfigValueError(
                    f"model.init_args.{name}={init_args[name]!r} but {LINKED_SHAPES[name].format(linked)} "
                    f"(data.init_args.{name}={linked!r}): the model's {name} is linked to the datamodule's. Drop "
                    f"model.init_args.{name} (it is then set from the data) or give both the same value."
                )
            init_args[name] = linked

    def stated_model_arguments(self) -> set[str]:
        """Which of :data:`LINKED_SHAPES` this command's config files and flags state as model init arguments (none
        when the CLI was given a dict instead of a command line)."""
        if not self.argv:
            return set()
        given = self.parser.parse_args(self.argv, defaults=False)
        section = given.get(self.subcommand) if self.subcommand else given
        model = section.get("model") if isinstance(section, Namespace) else None
        init_args = model.get("init_args") if isinstance(model, Namespace) else None
        return {name for name in LINKED_SHAPES if isinstance(init_args, Namespace) and name in init_args}

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The Trainer, with the framework's console defaults where the config leaves them open: the model summary
        is :class:`~framework.callbacks.PlainModelSummary` (no FLOPs line of 0) unless ``enable_model_summary`` is set
        or a ``ModelSummary`` callback is given, and when stdout is not a terminal (a log file, a SLURM job) the
        progress bar is :class:`~framework.callbacks.LineProgressBar` (one line per epoch) unless
        ``enable_progress_bar`` is false or a progress bar callback is given."""
        config = self.config_init.get(str(self.subcommand), self.config_init).get("trainer") or {}
        given = config.get("callbacks") or []
        callbacks = list(given) if isinstance(given, list) else [given]
        added: list[Any] = []
        if config.get("enable_model_summary") is None and not any(isinstance(c, ModelSummary) for c in callbacks):
            kwargs.setdefault("enable_model_summary", False)  # else Lightning adds its own summary as well
            added.append(PlainModelSummary())
        if (
            config.get("enable_progress_bar") is not False
            and not sys.stdout.isatty()
            and not any(isinstance(c, ProgressBar) for c in callbacks)
        ):
            added.append(LineProgressBar())
        if added:
            kwargs.setdefault("callbacks", [*callbacks, *added])
        return super().instantiate_trainer(**kwargs)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        finally:
            finish_wandb_run()

    def log_at_checkpoint_step(self) -> None:
        """Before validate/test/predict: log at the loaded checkpoint's training step (the x-axis of the fit's
        curves, ``trainer/global_step``) instead of at 0; Lightning restores that step only for a fit."""
        if self.ckpt_step is not None:
            self.trainer.fit_loop.epoch_loop._batches_that_stepped = self.ckpt_step

    before_validate = before_test = before_predict = log_at_checkpoint_step

    def after_fit(self) -> None:
        print_summary(self, "fit")

    def after_test(self) -> None:
        print_summary(self, "test")

    def after_validate(self) -> None:
        print_summary(self, "validate")

    def after_predict(self) -> None:
        """Log how many batches were predicted (at the checkpoint's step) and print the summary."""
        batches = float(sum(self.trainer.num_predict_batches))
        for logger in self.trainer.loggers:
            logger.log_metrics({"predict/batches": batches}, step=self.ckpt_step or 0)
            logger.save()
        print_summary(self, "predict")


# -- checks on what a run may load or overwrite ---------------------------------------------------------------
def check_config_files(args: ArgsType) -> None:
    """Every ``--config`` / ``-c`` file of a command line must be YAML holding a mapping of sections; an empty file,
    a list or a syntax error is one :class:`ConfigValueError` line naming the file (instead of the parser's
    ``Unexpected config:``)."""
    if not isinstance(args, list | tuple):
        return
    args = [str(a) for a in args]
    paths = [b for a, b in zip(args, args[1:], strict=False) if a in ("--config", "-c")]
    paths += [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    for path in map(Path, paths):
        if not path.is_file():
            continue  # the parser names a missing file itself
        try:
            content = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            where = getattr(err, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise ConfigValueError(f"--config {path}: not valid YAML{line} ({getattr(err, 'problem', err)}).") from err
        if not isinstance(content, dict):
            got = "nothing (the file is empty)" if content is None else f"a {type(content).__name__}"
            raise ConfigValueError(
                f"--config {path} holds {got}; a config is a mapping of sections such as trainer:, model:, data:."
            )


def resume_fixed(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config (a ``framework fit`` section) that a resume must leave unchanged."""
    fixed = {key: config.get(key) for key in RESUME_FIXED}
    trainer = config.get("trainer") or {}
    fixed["trainer"] = {key: trainer.get(key) for key in RESUME_FIXED_TRAINER}
    return fixed


def config_differences(saved: Any, now: Any, prefix: str = "") -> list[str]:
    """``key: saved -> now`` for every dotted key whose value differs between two plain config trees (tuples and
    lists compare equal)."""
    if isinstance(saved, dict) and isinstance(now, dict):
        return [
            line
            for key in sorted(set(saved) | set(now), key=str)
            for line in config_differences(saved.get(key), now.get(key), f"{prefix}{key}.")
        ]
    plain = [list(v) if isinstance(v, tuple) else v for v in (saved, now)]
    return [] if plain[0] == plain[1] else [f"{prefix.rstrip('.')}: checkpoint {saved!r}, config {now!r}"]


def refuse_second_fit(run_dir: Path, ckpt_dir: str | None) -> None:
    """A run directory holds one fit: starting a fresh one where checkpoints exist would mix two runs (and make
    ``--ckpt_path last`` ambiguous), so it is refused with the two ways forward."""
    folder = Path(ckpt_dir) if ckpt_dir else run_dir / "checkpoints"
    found = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
    if found:
        raise CheckpointError(
            f"run_dir={str(run_dir)!r} already holds a fit ({found[0]}); a run dir holds one fit. Resume it with "
            "--ckpt_path last, or start a new run in another --run_dir (or without --run_dir: a new version_<k>)."
        )


@rank_zero_only
def print_once(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- run directories ------------------------------------------------------------------------------------------------
def run_name(cfg: Namespace) -> str:
    """``<config dir>/<config stem>`` of the last ``--config`` given (for a run dir's recipe, the name of the run it
    came from: its re-run lands in a new ``version_<k>`` beside the original), else the model's class name."""
    configs = cfg.get("config") or []
    if configs:
        path = Path(str(configs[-1]))
        record = path.parent / INVOCATIONS_FILE
        if path.name == "config.yaml" and record.is_file():
            first = json.loads(record.read_text().splitlines()[0])
            if first.get("run_name"):
                return str(first["run_name"])
        return f"{path.parent.name}/{path.stem}"
    model = cfg.get("model")
    class_path = model.get("class_path") if isinstance(model, Namespace) else None
    return class_path.rsplit(".", 1)[-1] if class_path else "run"


def resolve_run_dir(explicit: str | None, name: str, resume_last: bool) -> Path:
    """The directory of this run.

    ``explicit`` wins; a DDP child inherits its parent's choice through ``$FRAMEWORK_RUN_DIR``; ``resume_last``
    picks the newest ``version_<k>`` with a ``checkpoints/last.ckpt``; otherwise a fresh ``version_<k+1>``.
    """
    if explicit:
        return Path(explicit)
    if os.environ.get(RUN_DIR_ENV) and os.environ.get("LOCAL_RANK", "0") != "0":
        return Path(os.environ[RUN_DIR_ENV])
    base = RUNS_ROOT / name
    versions = sorted(
        (int(m.group(1)), p) for p in base.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))
    )
    if resume_last:
        resumable = [p for _, p in versions if (p / "checkpoints" / "last.ckpt").is_file()]
        if not resumable:
            raise CheckpointError(
                f"ckpt_path='last': no run under {base}/ has checkpoints/last.ckpt. "
                "Start one with `framework fit` first, or pass --run_dir / --ckpt_path PATH."
            )
        return resumable[-1]
    return base / f"version_{versions[-1][0] + 1 if versions else 0}"


def place_logger_in_run_dir(logger: Namespace, run_dir: Path, job: str, group: str | None) -> dict[str, Any]:
    """Point a W&B / CSV / TensorBoard logger config at ``run_dir`` unless the user chose a place; return the
    init arguments it changed, with their values before (what the recipe keeps).

    W&B: every command is a new run (a fresh id unless the user gave one) named ``<config>/<version> <job>``, in
    ``group`` with ``job_type`` ``job`` (fit, resume, validate, test, predict), so ``wandb sync`` of a run dir's
    offline runs appends nothing to another run's history. CSV / TensorBoard write ``fit`` and ``resume`` logs to
    ``run_dir`` itself (a resumed fit appends) and other commands to ``run_dir/<command>/``, so a ``test`` never
    rewrites the training curves.
    """
    args = logger.get("init_args")
    if str(logger.get("class_path", "")).rsplit(".", 1)[-1] not in LOGGER_CLASSES or args is None:
        return {}
    before = {key: args.get(key) for key in ("save_dir", "offline", "id", "name", "version", "group", "job_type")}
    if args.get("save_dir") in (None, ".", "lightning_logs"):
        args.save_dir = str(run_dir)
    if is_wandb(logger):
        if os.environ.get("WANDB_MODE"):  # the user's WANDB_MODE (online/offline/disabled) wins over offline=True
            args.offline = False
        if args.get("id") is None and args.get("version") is None:
            args.id = new_run_id()
        if args.get("name") is None:
            args.name = f"{run_dir.parent.name}/{run_dir.name} {job}"
        if args.get("group") is None:
            args.group = group
        if args.get("job_type") is None:
            args.job_type = job
    else:
        if args.get("name") is None:
            args.name = ""
        if args.get("version") is None:
            args.version = "" if job in ("fit", "resume") else job
    return {key: value for key, value in before.items() if key in args and args.get(key) != value}


def is_wandb(logger: Namespace) -> bool:
    """Whether a logger config is a ``WandbLogger``."""
    return str(logger.get("class_path", "")).rsplit(".", 1)[-1] == "WandbLogger"


def finish_wandb_run() -> None:
    """Close this process's W&B run, so the next run in the same process (tests, notebooks) starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


# -- output -----------------------------------------------------------------------------------------------------
class DropNoiseInfo(logging.Filter):
    """Drops Lightning's info lines that start with one of :data:`NOISE_INFO`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(NOISE_INFO)


def quiet_console() -> None:
    """Keep the console to what a researcher acts on: ignore the warnings of :data:`KNOWN_NOISE` (by message; any
    other warning still shows), drop Lightning's advertising info lines and let W&B print only its warnings and
    errors unless ``WANDB_QUIET`` / ``WANDB_SHOW_INFO`` are set (the summary says where the offline run is)."""
    for pattern in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    rank_zero_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, DropNoiseInfo) for f in rank_zero_log.filters):
        rank_zero_log.addFilter(DropNoiseInfo())
    for key, value in WANDB_CONSOLE.items():
        os.environ.setdefault(key, value)


@rank_zero_only
def print_summary(cli: FrameworkCLI, stage: str) -> None:
    """Print the metrics of ``stage`` and where the run's artefacts are (an offline W&B run: the directory of this
    command's run and the ``wandb sync`` that uploads it)."""
    trainer = cli.trainer
    if trainer.fast_dev_run:
        return
    prefixes = {"fit": ("train/", "val/"), "validate": ("val/",), "test": ("test/",), "predict": ()}[stage]
    metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith(prefixes)}
    run_dir = cli.run_dir
    ckpt = trainer.checkpoint_callback
    lines = [f"\n== {stage} finished: {type(cli.model).__name__} ==", f"run dir:     {run_dir}"]
    width = max(map(len, metrics), default=0)
    lines.extend(f"  {key:<{width}}  {value:.6g}" for key, value in metrics.items())
    loaded = trainer.ckpt_path if stage != "fit" else None
    written = getattr(ckpt, "last_model_path", "") if ckpt is not None else ""
    if loaded or written:
        lines.append(f"checkpoint:  {loaded or written}{' (loaded)' if loaded else ''}")
    figures = run_dir / "figures"
    if figures.is_dir():
        lines.append(f"figures:     {figures} ({len(list(figures.rglob('*.png')))} png in {figures.name}/<job>-<n>/)")
    if stage == "predict":
        lines.extend(f"predictions: {path}" for path in sorted(run_dir.glob("predictions.*")))
    for logger in trainer.loggers:
        if not isinstance(logger, WandbLogger):
            continue
        offline_dir = offline_run_dir(logger.experiment)
        url = None if offline_dir is not None else getattr(logger.experiment, "url", None)
        if offline_dir is not None:
            lines.append(sync_hint(offline_dir))
        elif url:  # an online run (WANDB_MODE=online): W&B itself prints only warnings and errors
            lines.append(f"wandb:       {url}")
    print("\n".join(lines), flush=True)


def demo(extra: list[str]) -> None:
    """``framework demo [plugin] [overrides]``: fit the plugin's demo config on built-in data, then test its last
    checkpoint in the same run dir. Without a plugin name the registry picks the one marked ``DEFAULT_DEMO``."""
    plugin = extra.pop(0) if extra and not extra[0].startswith("-") else None
    config = demo_config(plugin)
    fit = FrameworkCLI(args=["fit", "--config", str(config), *extra])
    FrameworkCLI(args=["test", "--config", str(config), "--run_dir", str(fit.run_dir), "--ckpt_path", "last", *extra])


def plugins(extra: list[str]) -> None:
    """``framework plugins``: every installed plugin in brief; ``framework plugins NAME``: that plugin's model and
    datamodule classes with each init argument (type, default, description), its configs and experiment files.

    Raises:
        PluginLookupError: an unknown plugin name, or more than one argument (the message says what is accepted).
    """
    if extra and extra[0] in ("-h", "--help"):
        print(PLUGINS_USAGE)
        return
    if len(extra) > 1:
        raise PluginLookupError(f"plugins takes at most one plugin name, got {extra}. {PLUGINS_USAGE}")
    print(format_plugin(find_plugin(extra[0])) if extra else format_plugins(load_plugins()))


def console_main() -> None:
    """The ``framework`` console script and ``python -m framework``: :func:`main` with exit status 0 on success.

    (A console script passes its function's return value to ``sys.exit``, which would print the CLI object and exit
    with status 1, so the object :func:`main` returns for in-process callers is dropped here.)
    """
    main()


def main(args: ArgsType = None) -> FrameworkCLI | None:
    """Run the CLI in this process (tests and benchmarks call it; :func:`console_main` is the shell entry point).

    Returns the CLI object of a Trainer subcommand (tests inspect ``cli.trainer`` and ``cli.model``). Errors a user
    can fix (bad checkpoint, nothing to resume, missing data file, non-finite loss) exit with status 1 and one clear
    message instead of a traceback; set ``FRAMEWORK_DEBUG=1`` to see the traceback.
    """
    argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict | Namespace) else None
    try:
        if argv is not None and argv[:1] == ["plugins"]:
            plugins(argv[1:])
            return None
        if argv is not None and argv[:1] == ["demo"]:
            demo(argv[1:])
            return None
        if argv is not None and argv[:1] in (["experiment"], ["tune"]):
            from framework.experiments import commands  # imports this module: loaded on demand

            status = commands.experiment(argv[1:]) if argv[0] == "experiment" else commands.tune(argv[1:])
            if status:
                raise SystemExit(status)
            return None
        return FrameworkCLI(args=args)
    except USER_ERRORS as err:
        if os.environ.get("FRAMEWORK_DEBUG"):
            raise
        print(f"framework: error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
    finally:
        os.environ.pop(RUN_DIR_ENV, None)


if __name__ == "__main__":
    main()
