"""Data module splits and errors; a trained quick model beats a moment-matched Gaussian."""

from __future__ import annotations

import pytest
import torch

from framework.cli import main
from framework.registry import config_dir
from framework_plugins.flow_matching import FlowMatchingData
from framework_plugins.flow_matching.targets import TARGETS
from framework_plugins.flow_matching.velocity import VelocityMLP


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_builds_disjoint_seeded_splits(target):
    dim = {"digits": 64}.get(target, 2)
    dm = FlowMatchingData(target=target, dim=dim, n_train=300, n_val=50, n_test=60, seed=3)
    dm.setup()
    again = FlowMatchingData(target=target, dim=dim, n_train=300, n_val=50, n_test=60, seed=3)
    again.setup()
    for split in ("train", "val", "test"):
        assert dm.splits[split][0].shape[1] == dim
        assert torch.isfinite(dm.splits[split][0]).all()
        torch.testing.assert_close(dm.splits[split][0], again.splits[split][0], rtol=0, atol=0)
    if target != "digits":
        assert [len(dm.splits[s][0]) for s in ("train", "val", "test")] == [300, 50, 60]
    rows = {tuple(r.tolist()) for r in dm.splits["train"][0]}
    assert not rows & {tuple(r.tolist()) for r in dm.splits["test"][0]}


def test_bad_target_and_dim_name_the_field():
    with pytest.raises(ValueError, match="target='mnist'"):
        FlowMatchingData(target="mnist")
    with pytest.raises(ValueError, match="dim=3 but target='digits' is 64-dimensional"):
        FlowMatchingData(target="digits", dim=3)


def test_velocity_accepts_scalar_and_batched_time():
    net = VelocityMLP(dim=3, hidden=8, depth=2)
    x = torch.randn(5, 3)
    torch.testing.assert_close(net(x, 0.3), net(x, torch.full((5,), 0.3)))
    with pytest.raises(ValueError, match="depth=0"):
        VelocityMLP(dim=3, depth=0)


@pytest.mark.slow
def test_trained_quick_model_beats_a_moment_matched_gaussian(tmp_path):
    config = config_dir("flow_matching") / "quick.yaml"
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    main(["fit", "--config", str(config), *quiet, f"--run_dir={tmp_path / 'run'}"])
    cli = main(["test", "--config", str(config), *quiet, f"--run_dir={tmp_path / 'run'}", "--ckpt_path=last"])
    m = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    for metric in ("w2", "energy", "sliced_w2"):
        assert m[f"test/{metric}"] < 0.6 * m[f"test/{metric}_gaussian_baseline"], (metric, m)
    assert m["test/mmd"] < m["test/mmd_gaussian_baseline"]
    assert m["test/w2_N1"] > m["test/w2_N64"], "one Euler step should be far worse than 64"
    for name in ("w2_vs_steps", "lipschitz_vs_t", "samples"):
        assert (tmp_path / "run" / "figures" / "test-1" / f"{name}.png").is_file()
    assert (tmp_path / "run" / "figures" / "fit-1" / "samples.png").is_file()
