"""The experiment file: a base config, named variants, seeds, metrics, optional tuning and a smoke size.

One YAML per paper experiment, at ``configs/<plugin>/experiments/<name>.yaml``::

    title: Muon family vs AdamW on the MoE transformer
    description: one paragraph, printed at the top of the report
    base: [../quick.yaml]                 # optional: config files (relative to this file) every run starts from
    set: {trainer.max_steps: 1000}        # overrides for every run (dotted keys, YAML values)
    seed:
      values: [0, 1, 2, 3, 4]
      sets: [seed_everything, data.init_args.seed]   # the config keys one seed controls, stated once
      controls: model init, data order and the simulated data set
    variants:                             # name -> list of config files and {key: value} overrides
      adamw: [../adamw.yaml]
      muon: [../muon.yaml, {model.init_args.optimizer.init_args.lr: 0.02}]
      tuned:                              # or the long form, with its own search space
        configs: [../muon.yaml]
        set: {trainer.max_epochs: 3}
        space: {model.init_args.optimizer.init_args.lr: {low: 1.0e-3, high: 0.1, log: true}}
    reference: adamw                      # paired differences are taken against this variant
    metrics: {test/bpb: min, test/acc: max}   # what to report, and which direction wins
    curves: [val/loss]                    # optional: validation curves to keep per run and plot
    paper: {muon: {test/bpb: 1.23}}       # optional: the paper's numbers, printed beside ours
    tune:                                 # optional: the same search budget for every variant
      metric: val/loss
      direction: minimize
      trials: 20
      space: {model.init_args.optimizer.init_args.lr: {low: 1.0e-4, high: 1.0e-1, log: true}}
      set: {trainer.max_steps: 300}       # optional: overrides for the trials only (a shorter search horizon)
      sampler: tpe                        # or grid: every point of a space of {choices} once (trials = grid size;
                                          # a variant whose grid is one point, e.g. a control, runs it once)
    smoke:                                # what makes the whole experiment run in well under a minute
      seeds: [0, 1]
      set: {trainer.max_steps: 5}
      trials: 2
    analysis: framework_plugins.flow_matching.analysis:exact_euler_tables   # optional custom report section
    early_stopping: {metric: val/mse, mode: min, patience: 10}   # optional: see below
    requires: [mujoco]                    # optional: modules it needs beyond the plugin's own extra

Every run is ``framework fit`` then ``framework test --ckpt_path last`` with the arguments
``--config <base...> --config <variant configs...> --<key>=<value>... --config <tuned best.yaml>``.

With ``early_stopping`` every fit and every tuning trial stops once ``metric`` has not improved for ``patience``
validations (Lightning's ``EarlyStopping``, ``min_delta`` optional), the checkpoint callback keeps the best
validation checkpoint, the test evaluates that checkpoint instead of the last one, and a tuning trial's objective is
the best value of the tuning metric over its validations (the value the selected checkpoint would have). The callback
and the monitor are ordinary config arguments of the run, so its recipe (``config.yaml``) reproduces them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

TOP_LEVEL_KEYS = {
    "title",
    "description",
    "base",
    "set",
    "seed",
    "variants",
    "reference",
    "metrics",
    "curves",
    "paper",
    "tune",
    "smoke",
    "analysis",
    "slurm",
    "early_stopping",
    "requires",
}
CONFIGS_DIR = "configs"  # configs/<plugin>/[real_data/]experiments/<name>.yaml
DIRECTIONS = {"min": "min", "max": "max", "minimize": "min", "maximize": "max"}


class ExperimentError(ValueError):
    """An experiment file is malformed; the message names the file, the field, the value and the fix."""


@dataclass(frozen=True)
class Variant:
    """One compared setting: extra config files, overrides and (optionally) its own search space."""

    name: str
    configs: tuple[Path, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    space: dict[str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class TuneSpec:
    """An Optuna search run per variant on validation data: same trial budget and space size for every variant."""

    metric: str
    direction: str
    trials: int
    space: dict[str, dict[str, Any]]
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)
    sampler: str = "tpe"  # or "grid": every point of a choices-only space once


@dataclass(frozen=True)
class EarlyStoppingSpec:
    """Stop a fit when ``metric`` (a validation metric) has not improved by ``min_delta`` for ``patience``
    validations; the best validation checkpoint is the one tested."""

    metric: str
    mode: str  # "min" or "max"
    patience: int
    min_delta: float = 0.0

    def args(self) -> list[str]:
        """The run arguments that install it: Lightning's ``EarlyStopping`` appended to ``trainer.callbacks`` and the
        checkpoint callback monitoring the same metric (so ``best_model_path`` is the selected checkpoint)."""
        callback = {
            "class_path": "lightning.pytorch.callbacks.EarlyStopping",
            "init_args": {
                "monitor": self.metric,
                "mode": self.mode,
                "patience": self.patience,
                "min_delta": self.min_delta,
            },
        }
        return [
            f"--trainer.callbacks+={json.dumps(callback)}",
            override_arg("checkpoint.monitor", self.metric),
            override_arg("checkpoint.mode", self.mode),
        ]


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file (with the smoke size applied when asked)."""

    path: Path
    name: str
    plugin: str
    title: str
    description: str
    base: tuple[Path, ...]
    overrides: dict[str, Any]
    smoke_overrides: dict[str, Any]  # applied last, over variant overrides too (empty unless smoke)
    seeds: tuple[int, ...]
    seed_keys: tuple[str, ...]
    seed_controls: str
    variants: tuple[Variant, ...]
    reference: str | None
    metrics: dict[str, str]
    curves: tuple[str, ...]
    paper: dict[str, dict[str, float]]
    tune: TuneSpec | None
    analysis: str | None
    slurm: dict[str, Any]
    smoke: bool
    early_stopping: EarlyStoppingSpec | None = None
    requires: tuple[str, ...] = ()  # importable modules the experiment needs (e.g. mujoco)

    def missing_modules(self) -> list[str]:
        """The modules of ``requires`` that this environment cannot import."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    @property
    def file(self) -> str:
        """The file as the docs name it: ``configs/<plugin>/.../<name>.yaml`` for a built-in one, else its path."""
        parts = self.path.parts
        if CONFIGS_DIR in parts:
            start = len(parts) - 1 - parts[::-1].index(CONFIGS_DIR)
            return "/".join(parts[start:])
        return str(self.path)

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def trials_for(self, variant: Variant) -> int:
        """The variant's trial budget: the experiment's, or its grid size under a grid search (smaller only for a
        one-point grid, or in a smoke size)."""
        assert self.tune is not None
        if self.tune.sampler != "grid":
            return self.tune.trials
        return min(self.tune.trials, math.prod(len(v) for v in grid_space(self.space_for(variant)).values()))

    def space_for(self, variant: Variant) -> dict[str, dict[str, Any]]:
        """The search space of ``variant``: its own, else the experiment's."""
        assert self.tune is not None
        return variant.space if variant.space is not None else self.tune.space


@dataclass(frozen=True)
class RunSpec:
    """One (variant, seed): the full argument list shared by its fit and test, and where it lives."""

    experiment: str
    variant: str
    seed: int
    args: tuple[str, ...]
    run_dir: Path
    digest: str
    curves: tuple[str, ...] = ()
    test_checkpoint: str = "last"  # "best": the checkpoint callback's best_model_path (early stopping)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "args": list(self.args), "run_dir": str(self.run_dir), "curves": list(self.curves)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSpec:
        return cls(
            **{**data, "args": tuple(data["args"]), "run_dir": Path(data["run_dir"]), "curves": tuple(data["curves"])}
        )


def _fail(path: Path, field_name: str, value: Any, fix: str) -> ExperimentError:
    return ExperimentError(f"{path}: {field_name}={value!r}: {fix}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _config_path(path: Path, field_name: str, item: Any) -> Path:
    if not isinstance(item, str) or not item.endswith((".yaml", ".yml")):
        raise _fail(path, field_name, item, "give a config file (*.yaml, relative to the experiment file) or a mapping")
    resolved = (path.parent / item).resolve()
    if not resolved.is_file():
        raise _fail(path, field_name, item, f"no such config file {resolved}")
    return resolved


def _overrides(path: Path, field_name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(path, field_name, value, "give a mapping of dotted config keys to values")
    return dict(value)


def _space(path: Path, field_name: str, value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not value:
        raise _fail(path, field_name, value, "give a mapping {dotted.key: {low, high[, log, type]} or {choices}}")
    for key, dist in value.items():
        if not isinstance(dist, dict) or not ({"low", "high"} <= dist.keys() or "choices" in dist):
            raise _fail(path, f"{field_name}.{key}", dist, "give {low: .., high: ..} (log: true optional) or {choices}")
    return {k: dict(v) for k, v in value.items()}


def _variant(path: Path, name: str, value: Any) -> Variant:
    field_name = f"variants.{name}"
    if isinstance(value, dict):
        unknown = set(value) - {"configs", "set", "space"}
        if unknown:
            raise _fail(path, field_name, sorted(unknown), "a variant mapping takes only configs, set and space")
        items, overrides = _as_list(value.get("configs") or []), _overrides(path, f"{field_name}.set", value.get("set"))
        space = _space(path, f"{field_name}.space", value["space"]) if "space" in value else None
    else:
        items, overrides, space = _as_list(value or []), {}, None
    configs = []
    for item in items:
        if isinstance(item, dict):
            overrides.update(_overrides(path, field_name, item))
        else:
            configs.append(_config_path(path, field_name, item))
    return Variant(name=name, configs=tuple(configs), overrides=overrides, space=space)


def load_experiment(path: str | Path, smoke: bool = False) -> Experiment:
    """Parse and check an experiment file; with ``smoke`` apply its ``smoke:`` section (seeds, overrides, trials).

    Raises:
        ExperimentError: a missing or malformed field (the message names the file, the field and the fix).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise ExperimentError(f"experiment file {path} does not exist")
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise ExperimentError(f"{path}: an experiment file is a YAML mapping (base, variants, seed, metrics, ...)")
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise _fail(path, "keys", sorted(unknown), f"known keys are {sorted(TOP_LEVEL_KEYS)}")
    for required in ("variants", "seed", "metrics"):
        if required not in raw:
            raise _fail(path, required, None, "this field is required")

    smoke_raw = raw.get("smoke") or {}
    if smoke and not smoke_raw:
        raise _fail(path, "smoke", None, "add a smoke: section (seeds, set) to run it with --smoke")
    seed_raw = raw["seed"]
    if not isinstance(seed_raw, dict) or not seed_raw.get("values"):
        raise _fail(path, "seed", seed_raw, "give seed: {values: [0, 1, ...], sets: [seed_everything, ...]}")
    seeds = smoke_raw.get("seeds", seed_raw["values"]) if smoke else seed_raw["values"]
    if not all(isinstance(s, int) for s in seeds) or len(set(seeds)) != len(seeds):
        raise _fail(path, "seed.values", seeds, "give distinct integers")

    variants_raw = raw["variants"]
    if not isinstance(variants_raw, dict) or not variants_raw:
        raise _fail(path, "variants", variants_raw, "give a mapping of variant name to configs/overrides")
    variants = tuple(_variant(path, str(name), value) for name, value in variants_raw.items())
    reference = raw.get("reference")
    if reference is not None and reference not in variants_raw:
        raise _fail(path, "reference", reference, f"name one of the variants {list(variants_raw)}")

    metrics_raw = raw["metrics"]
    if isinstance(metrics_raw, list):
        metrics_raw = dict.fromkeys(metrics_raw, "min")
    if not isinstance(metrics_raw, dict) or not metrics_raw:
        raise _fail(path, "metrics", metrics_raw, "give {metric: min|max}")
    metrics = {}
    for key, direction in metrics_raw.items():
        if direction not in DIRECTIONS:
            raise _fail(path, f"metrics.{key}", direction, "say which direction wins: min or max")
        metrics[key] = DIRECTIONS[direction]

    overrides = _overrides(path, "set", raw.get("set"))
    smoke_overrides = _overrides(path, "smoke.set", smoke_raw.get("set")) if smoke else {}
    tune = _tune(path, raw.get("tune"), variants, int(seeds[0]), smoke_raw.get("trials") if smoke else None)
    if smoke and tune is not None:  # the smoke size wins over the trials' own horizon
        smoke_keys = set(_overrides(path, "smoke.set", smoke_raw.get("set")))
        tune = replace(tune, overrides={k: v for k, v in tune.overrides.items() if k not in smoke_keys})
    return Experiment(
        path=path,
        name=path.stem,
        plugin=_plugin_name(path),
        title=str(raw.get("title") or path.stem),
        description=str(raw.get("description") or "").strip(),
        base=tuple(_config_path(path, "base", item) for item in _as_list(raw.get("base") or [])),
        overrides=overrides,
        smoke_overrides=smoke_overrides,
        seeds=tuple(int(s) for s in seeds),
        seed_keys=tuple(seed_raw.get("sets") or ["seed_everything"]),
        seed_controls=str(seed_raw.get("controls") or ""),
        variants=variants,
        reference=reference,
        metrics=metrics,
        curves=tuple(raw.get("curves") or ()),
        paper={str(k): dict(v) for k, v in (raw.get("paper") or {}).items()},
        tune=tune,
        analysis=raw.get("analysis"),
        slurm=dict(raw.get("slurm") or {}),
        smoke=smoke,
        early_stopping=_early_stopping(path, raw.get("early_stopping")),
        requires=_requires(path, raw.get("requires")),
    )


def _plugin_name(path: Path) -> str:
    """The folder under ``configs/`` (``configs/<plugin>/[real_data/]experiments/x.yaml``), else the folder above
    ``experiments/`` (or the file's own folder) for a file outside a configs tree."""
    parts = path.parts
    if CONFIGS_DIR in parts[:-2]:
        return parts[len(parts) - parts[::-1].index(CONFIGS_DIR)]
    return path.parent.parent.name if path.parent.name == "experiments" else path.parent.name


def _requires(path: Path, raw: Any) -> tuple[str, ...]:
    names = _as_list(raw) if raw is not None else []
    if not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise _fail(path, "requires", raw, "give a list of importable module names, e.g. [mujoco]")
    return tuple(names)


def _early_stopping(path: Path, raw: Any) -> EarlyStoppingSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "metric" not in raw or "patience" not in raw:
        raise _fail(path, "early_stopping", raw, "give early_stopping: {metric: val/<m>, mode: min, patience: N}")
    unknown = set(raw) - {"metric", "mode", "patience", "min_delta"}
    if unknown:
        raise _fail(path, "early_stopping", sorted(unknown), "it takes only metric, mode, patience and min_delta")
    metric = str(raw["metric"])
    if not metric.startswith("val/"):
        raise _fail(path, "early_stopping.metric", metric, "stop on validation data only: use a val/<metric>")
    mode = DIRECTIONS.get(str(raw.get("mode", "min")))
    if mode is None:
        raise _fail(path, "early_stopping.mode", raw.get("mode"), "use min or max")
    patience = raw["patience"]
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
        raise _fail(path, "early_stopping.patience", patience, "give a whole number of validations >= 1")
    min_delta = raw.get("min_delta", 0.0)
    if not isinstance(min_delta, (int, float)) or isinstance(min_delta, bool) or min_delta < 0:
        raise _fail(path, "early_stopping.min_delta", min_delta, "give a number >= 0")
    return EarlyStoppingSpec(metric=metric, mode=mode, patience=patience, min_delta=float(min_delta))


def _tune(path: Path, raw: Any, variants: tuple[Variant, ...], seed: int, smoke_trials: Any) -> TuneSpec | None:
    if raw is None:
        if any(v.space is not None for v in variants):
            raise _fail(path, "tune", None, "a variant declares a space: add a tune: section (metric, trials)")
        return None
    if not isinstance(raw, dict) or "metric" not in raw or "trials" not in raw:
        raise _fail(path, "tune", raw, "give tune: {metric: val/<m>, trials: N, space: {...}}")
    metric = str(raw["metric"])
    if not metric.startswith("val/"):
        raise _fail(path, "tune.metric", metric, "tuning selects on validation data only: use a val/<metric>")
    direction = DIRECTIONS.get(str(raw.get("direction", "minimize")))
    if direction is None:
        raise _fail(path, "tune.direction", raw.get("direction"), "use minimize or maximize")
    default_space = _space(path, "tune.space", raw["space"]) if "space" in raw else None
    sizes = {v.name: len(v.space if v.space is not None else default_space or {}) for v in variants}
    if 0 in sizes.values():
        missing = [name for name, size in sizes.items() if size == 0]
        raise _fail(path, "tune.space", None, f"variants {missing} have no search space: add tune.space")
    if len(set(sizes.values())) > 1:
        raise _fail(path, "space", sizes, "every variant must search the same number of hyperparameters (fairness)")
    sampler = str(raw.get("sampler", "tpe"))
    if sampler not in ("tpe", "grid"):
        raise _fail(path, "tune.sampler", sampler, "use tpe (Optuna TPE with median pruning) or grid")
    trials = int(smoke_trials if smoke_trials is not None else raw["trials"])
    if sampler == "grid":  # a grid search covers its range: trials = grid size (a smoke size may run fewer)
        for variant in variants:
            try:
                grid = grid_space(variant.space if variant.space is not None else default_space or {})
            except ExperimentError as err:
                raise _fail(path, f"variants.{variant.name}.space", "grid", str(err)) from None
            size = math.prod(len(values) for values in grid.values())
            if size not in (1, int(raw["trials"])):  # one point: a fixed setting, e.g. a never-trained control
                raise _fail(path, "tune.trials", raw["trials"], f"a grid search runs each of its {size} points once")
    return TuneSpec(
        metric=metric,
        direction=direction,
        trials=trials,
        space=default_space or {},
        seed=int(raw.get("seed", seed)),
        overrides=_overrides(path, "tune.set", raw.get("set")),
        sampler=sampler,
    )


def grid_space(space: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """The grid ``{key: choices}`` of a search space; raises naming a key that gives a range instead of choices."""
    for key, dist in space.items():
        if "choices" not in dist:
            raise ExperimentError(f"space.{key}={dist}: a grid search needs {{choices: [...]}} for every key")
    return {key: list(dist["choices"]) for key, dist in space.items()}


# -- the argument list of one run ------------------------------------------------------------------------------
def override_arg(key: str, value: Any) -> str:
    """``--key=value`` with the value in the YAML/JSON form jsonargparse parses (strings stay strings)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return f"--{key}={text}"


def run_args(exp: Experiment, variant: Variant, seed: int, best: Path | None = None) -> list[str]:
    """The arguments shared by a run's fit and test: base and variant configs, overrides, seed keys, tuned values."""
    args = [arg for cfg in (*exp.base, *variant.configs) for arg in ("--config", str(cfg))]
    args += [override_arg(k, v) for k, v in {**exp.overrides, **variant.overrides, **exp.smoke_overrides}.items()]
    args += [override_arg(key, seed) for key in exp.seed_keys]
    if exp.early_stopping is not None:
        args += exp.early_stopping.args()
    if best is not None:
        args += ["--config", str(best)]
    return args


def args_digest(args: list[str] | tuple[str, ...]) -> str:
    """sha256 (first 16 hex digits) of a run's arguments with every ``--config`` file replaced by its parsed
    content, so editing a config value, an override or a tuned value changes it (and a finished run is redone),
    while editing a comment does not."""
    expanded = []
    for i, arg in enumerate(args):
        if i > 0 and args[i - 1] == "--config":
            expanded.append(yaml.safe_load(Path(arg).read_text()))
        elif arg != "--config":
            expanded.append(arg)
    return hashlib.sha256(json.dumps(expanded, sort_keys=True, default=str).encode()).hexdigest()[:16]
