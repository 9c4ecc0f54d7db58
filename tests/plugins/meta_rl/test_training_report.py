"""The comparison section of the meta-training reports: paired t intervals and verdicts on known numbers."""

from __future__ import annotations

from pathlib import Path

from framework_plugins.meta_rl.training_report import comparisons_markdown, training_comparisons


def _runs() -> dict:
    """post_return per seed: maml 10, 20, 30; sgmrl maml + (1, 2, 3); untrained maml - (5, 6, 7); a failed run."""
    runs = {}
    for seed, base in enumerate((10.0, 20.0, 30.0)):
        for variant, value in (("maml", base), ("sgmrl", base + 1 + seed), ("untrained", base - 5 - seed)):
            metrics = {"test/post_return": value, "test/final_return": value}
            runs[variant, seed] = {"status": "ok", "wall_s": 2.0, "metrics": metrics}
    runs["sgmrl", 3] = {"status": "failed", "wall_s": 1.0, "metrics": {"test/post_return": -1e9}}
    return runs


def test_comparisons_give_the_paired_t_interval_and_its_verdict():
    text = comparisons_markdown({"variants": ["sgmrl", "maml", "untrained"]}, _runs())
    # differences (1, 2, 3): mean 2, sd 1, half-width t_{0.975, 2} / sqrt(3) = 4.302653 / 1.732051 = 2.4842
    assert "| test/post_return | 3 | 2 [-0.484, 4.48] | 3/3 | no difference resolved |" in text
    # maml - untrained: (5, 6, 7): mean 6 [3.52, 8.48]
    assert "never-trained control (MAML paper) | test/post_return | 3 | 6 [3.52, 8.48] | 3/3 | higher |" in text
    # sgmrl - untrained: (6, 8, 10): mean 8, sd 2, [3.03, 13]
    assert "| test/final_return | 3 | 8 [3.03, 13] | 3/3 | higher |" in text
    assert "sgmrl_learned" not in text  # pairs with an absent variant are left out
    assert text.count("\n| `") == 6  # 3 pairs x 2 metrics


def test_the_hook_appends_the_wall_time_table(tmp_path: Path):
    text = training_comparisons(tmp_path, {"variants": ["maml", "untrained"]}, _runs(), "")
    assert "## Comparisons behind the papers' claims" in text and "| maml | 3 | 2.0 |" in text
