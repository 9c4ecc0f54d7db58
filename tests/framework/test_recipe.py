"""A run dir's ``config.yaml`` is a recipe (re-running it starts a fresh, equal run) and ``invocations.jsonl`` the
record of every command run on it, which no later command rewrites."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from framework.cli import main
from framework.registry import config_dir

QUICK = config_dir("flow_matching") / "quick.yaml"
SHORT = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.limit_test_batches=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--model.init_args.eval_samples=64",
    "--model.init_args.w2_steps=[1]",
]


def _record(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "invocations.jsonl").read_text().splitlines()]


def test_the_recipe_starts_a_fresh_equal_run_and_the_record_only_grows():
    first = main(["fit", "--config", str(QUICK), *SHORT])
    original = first.run_dir
    assert original == (Path("runs") / "flow_matching" / "quick" / "version_0").absolute()
    recipe_text = (original / "config.yaml").read_text()
    recipe = yaml.safe_load(recipe_text)
    assert recipe["run_dir"] is None and recipe["ckpt_path"] is None and recipe["checkpoint"]["dirpath"] is None
    assert recipe["trainer"]["default_root_dir"] is None and str(original) not in recipe_text
    logger = recipe["trainer"]["logger"]["init_args"]
    assert [logger[key] for key in ("id", "name", "group", "job_type", "save_dir")] == [None, None, None, None, "."]

    # the recipe alone, as a user would pass it: a new run dir beside the original, a new W&B run and group
    again = main(["fit", "--config", str(original / "config.yaml")])
    assert again.run_dir == original.parent / "version_1"
    for a, b in zip(first.model.parameters(), again.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    (fit,), (refit,) = _record(original), _record(again.run_dir)
    assert refit["wandb_run_id"] != fit["wandb_run_id"] and refit["group"] != fit["group"]
    assert refit["argv"] == ["fit", "--config", str(original / "config.yaml")] and refit["ckpt_path"] is None

    # a resume and a test of the original append their own records and leave its recipe alone
    at_original = ["--config", str(QUICK), *SHORT, f"--run_dir={original}", "--ckpt_path=last"]
    main(["fit", *at_original, "--trainer.max_epochs=2"])
    main(["test", *at_original])
    assert (original / "config.yaml").read_text() == recipe_text and (original / "config_test.yaml").is_file()
    lines = _record(original)
    assert lines[0] == fit and [line["command"] for line in lines] == ["fit", "resume", "test"]
    assert lines[1]["ckpt_path"] == str(original / "checkpoints" / "last.ckpt") and lines[1]["ckpt_step"] == 2
    assert "--trainer.max_epochs=2" in lines[1]["argv"] and lines[1]["parent_run_id"] == fit["wandb_run_id"]
    assert all(set(line) >= {"argv", "time", "git_commit", "versions"} for line in lines)
    assert all(line["versions"]["torch"] and line["git_commit"] for line in lines)


def test_strings_that_yaml_reads_as_numbers_survive_the_recipe():
    """jsonargparse dumps a class's init args and loads them back: unquoted, ``6239e636`` came back as ``inf`` and
    ``1e5`` as ``100000.0``, and the recipe would not parse."""
    strings = ["--trainer.logger=CSVLogger", "--trainer.logger.init_args.name=6239e636", "--run_dir=a"]
    main(["fit", "--config", str(QUICK), *SHORT, *strings, "--trainer.logger.init_args.prefix=1e5"])
    rerun = main(["fit", "--config", "a/config.yaml", "--run_dir=b"])
    assert (rerun.trainer.logger.name, rerun.trainer.logger._prefix) == ("6239e636", "1e5")
    assert Path("b/6239e636").is_dir()
