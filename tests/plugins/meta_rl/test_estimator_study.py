"""The estimator study: exact expectations over count vectors against the trajectory-level enumeration, the
Monte-Carlo statistics against the exact expectations, MetaRL's test-time hook and the report section."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from framework_plugins.meta_rl.analysis import STUDY_FIGURE, estimator_study_report, study_cell
from framework_plugins.meta_rl.estimator_study import (
    STATS,
    STUDY_ESTIMATORS,
    count_vectors,
    estimator_study,
    exact_expectations,
    summarize,
)
from framework_plugins.meta_rl.exact import all_batches, enumerate_trajectories, exact_return, select
from framework_plugins.meta_rl.expectations import bandit_setup, exact_meta_objective, expected_estimator, mdp_setup
from framework_plugins.meta_rl.meta import MetaPolicyGradient
from framework_plugins.meta_rl.module import MetaRL
from framework_plugins.meta_rl.policy import per_task


def _flat(grads) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


@pytest.mark.parametrize(("m", "n"), [(1, 5), (3, 4), (6, 3), (8, 2)])
def test_count_vectors_are_every_composition_once(m, n):
    rows = count_vectors(m, n)
    assert rows.shape == (math.comb(n + m - 1, m - 1), m)
    assert (rows >= 0).all() and (rows.sum(1) == n).all()
    assert len({tuple(r) for r in rows.tolist()}) == len(rows)


def _hessian_batch_expectation(meta, env, task, n_inner):
    """E[(I + alpha H_DiCE(D_h))^T g_o(theta')] with D_in (all ordered batches) and a one-trajectory D_h enumerated,
    the outer factor E[g_o] = grad J(theta') exact: an independent route to the closed form."""
    trajs, env_logp = enumerate_trajectories(env, task)
    params = per_task(meta.policy.params(), 1)
    q = (meta.log_prob(params, trajs).sum(-1)[0] + env_logp).exp().detach()
    total = torch.zeros((), dtype=torch.float64)
    for index in all_batches(len(q), n_inner):
        for h in range(len(q)):
            adapted = meta.adapt(params, select(trajs, index), select(trajs, torch.tensor([h])))
            value = exact_return(meta.policy, {k: v[0] for k, v in adapted.items()}, env, task, 1.0)
            g_out = torch.autograd.grad(value, list(adapted.values()), retain_graph=True)
            surrogate = sum((a * g.detach()).sum() for a, g in zip(adapted.values(), g_out, strict=True))
            total = total + q[index].prod() * q[h] * surrogate
    return _flat(torch.autograd.grad(total, list(meta.policy.parameters())))


CASES = [
    (bandit_setup, {"n_arms": 2}, 3),
    (bandit_setup, {}, 2),
    (mdp_setup, {"horizon": 2}, 1),
    (mdp_setup, {"horizon": 2}, 2),
]


@pytest.mark.parametrize(("setup", "kwargs", "n"), CASES, ids=["bandit2_n3", "bandit3_n2", "mdp_n1", "mdp_n2"])
def test_count_vector_expectations_equal_the_trajectory_enumeration(setup, kwargs, n):
    """grad V and E[every estimator] summed over count vectors equal the ordered-batch enumeration of
    expectations.py (and of the Hessian-batch variant with D_h enumerated) to rounding."""
    env, task, policy = setup(seed=4, **kwargs)
    exact = exact_expectations(policy, env, task, 0.5, 1.0, n)
    base = MetaPolicyGradient(policy, 0.5, 1.0)
    grad_v = _flat(torch.autograd.grad(exact_meta_objective(base, env, task, n), list(policy.parameters())))
    assert (exact["grad_v"] - grad_v).abs().max().item() < 1e-13
    for name, (estimator, score_baseline) in STUDY_ESTIMATORS.items():
        meta = MetaPolicyGradient(policy, 0.5, 1.0, estimator=estimator, score_baseline=score_baseline)
        if estimator == "sgmrl_hessian_batch":
            reference = _hessian_batch_expectation(meta, env, task, n)
        else:
            reference = _flat(expected_estimator(meta, env, task, n))
        assert (exact[name] - reference).abs().max().item() < 1e-13, name


def test_summarize_is_the_relative_bias_variance_and_mse_of_the_draws():
    """Closed form on draws that are +-1 around (1, 0) in the first coordinate: mean (1, 0), tr Cov = 4/3 (ddof 1)."""
    draws = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    out = summarize(draws, torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]))
    assert out["bias"] == pytest.approx(0.5)
    assert out["variance"] == pytest.approx((4 / 3) / 4)
    assert out["mse"] == pytest.approx(0.25 + 1 / 3)
    assert out["mc_z"] == pytest.approx(0.0)
    assert set(out) == set(STATS)


@pytest.fixture  # function scope: runs under the one-thread fixture of tests/plugins/conftest.py
def study():
    env, task, policy = mdp_setup(seed=5, horizon=2)
    rows = estimator_study(policy, env, task, 0.5, 1.0, (1, 4), draws=2000, seed=0)
    return {(r.estimator, r.n): r for r in rows}


def test_study_sgmrl_is_unbiased_and_maml_is_not(study):
    for n in (1, 4):
        assert study["sgmrl", n].bias < 1e-12 and study["sgmrl_pre_update", n].bias < 1e-12
        assert study["maml", n].bias > 1e-2 and study["fomaml", n].bias > 1e-3
        assert study["maml", n].mse == pytest.approx(study["maml", n].bias ** 2 + study["maml", n].variance)


def test_study_sample_means_agree_with_the_exact_expectations(study):
    assert all(r.mc_z < 5 for r in study.values())


def test_study_released_estimator_is_maml_draw_for_draw(study):
    for n in (1, 4):
        released, maml = study["sgmrl_released", n], study["maml", n]
        assert released.bias == pytest.approx(maml.bias, rel=1e-9)
        assert released.variance == pytest.approx(maml.variance, rel=1e-9)


def test_study_maml_variance_falls_like_one_over_n(study):
    ratio = study["maml", 1].variance / study["maml", 4].variance
    assert 2.5 < ratio < 6.5  # 4 for an average of N i.i.d. terms, up to Monte-Carlo error and the 1/N curvature


def test_metarl_test_hook_logs_the_study_and_checks_its_setting():
    module = MetaRL(
        env="bandit",
        env_kwargs={"n_arms": 2, "horizon": 1},
        hidden=(4,),
        gamma=1.0,
        study_sizes=[1, 2],
        study_draws=50,
    )
    out = module._study(torch.tensor(7))
    assert len(out) == 2 + 2 * len(STUDY_ESTIMATORS) * len(STATS)
    assert out["test/study_bias_sgmrl_N2"] < 1e-12 < out["test/study_bias_maml_N2"]
    assert out["test/study_grad_norm_N1"] > 0
    with pytest.raises(ValueError, match="baseline: none"):
        MetaRL(env="bandit", env_kwargs={"horizon": 1}, baseline="linear", study_sizes=[1])
    with pytest.raises(ValueError, match="gamma: 1.0"):
        MetaRL(env="tabular_mdp", env_kwargs={"horizon": 2, "reward_std": 0.0}, gamma=0.9, study_sizes=[1])
    with pytest.raises(ValueError, match="reward_std 0"):
        MetaRL(env="tabular_mdp", env_kwargs={"horizon": 2}, gamma=1.0, study_sizes=[1])
    with pytest.raises(ValueError, match="bandit or tabular_mdp"):
        MetaRL(env="point", gamma=1.0, study_sizes=[1])


def _records(values: dict[int, dict[str, float]]) -> dict[tuple[str, int], dict]:
    return {("bandit", seed): {"status": "ok", "wall_s": 1.0, "metrics": m} for seed, m in values.items()}


def test_report_section_is_the_mean_and_t_interval_over_seeds(tmp_path: Path):
    metrics = {}
    for seed, scale in ((0, 1.0), (1, 3.0)):
        m = {"test/study_grad_norm_N1": 1.0, "test/study_grad_norm_N4": 1.0}
        for est in STUDY_ESTIMATORS:
            for n in (1, 4):
                bias = 0.0 if est in ("sgmrl", "sgmrl_pre_update") else 0.1 * scale
                variance = scale * 8.0 / n * (10.0 if est == "sgmrl" else 1.0)
                m.update(
                    {
                        f"test/study_bias_{est}_N{n}": bias,
                        f"test/study_variance_{est}_N{n}": variance,
                        f"test/study_variance_se_{est}_N{n}": 0.1,
                        f"test/study_mse_{est}_N{n}": bias**2 + variance,
                        f"test/study_mc_z_{est}_N{n}": 1.5,
                    }
                )
        metrics[seed] = m
    runs = _records(metrics)
    cell = study_cell(runs, "bandit", "test/study_variance_maml_N4")
    assert cell.mean == pytest.approx(4.0) and cell.n == 2 and (cell.smallest, cell.largest) == (2.0, 6.0)
    half = 12.706204736174704 * 2 * math.sqrt(2) / math.sqrt(2)  # t_{0.975, 1} sd / sqrt(n); sd of (2, 6) = 2 sqrt 2
    assert (cell.low, cell.high) == pytest.approx((4.0 - half, 4.0 + half))
    text = estimator_study_report(tmp_path, {"variants": ["bandit"]}, runs, "")
    assert (tmp_path / STUDY_FIGURE).is_file()
    assert "| sgmrl | bias | < 1e-13 | < 1e-13 |" in text
    assert "| maml | variance | 16 [-86, 1.2e+02] | 4 [-21, 29] |" in text  # half-widths 12.706 * 8 and 12.706 * 2
    assert "- Bias at rounding level (< 1e-13) at every N: sgmrl, sgmrl_pre_update." in text
    assert "- maml: relative variance 16 at N=1, 4 at N=4 (x0.25)." in text
    assert "- Lowest mean MSE per N: N=1: sgmrl_pre_update, N=4: sgmrl_pre_update." in text
    # maml: mean bias^2 = (0.1^2 + 0.3^2) / 2 = 0.05; K* = (10 - 1) x mean maml variance / 0.05
    assert "K* = 2.88e+03 at N=1, 720 at N=4." in text


def test_count_vector_expectations_with_deterministic_arms_are_finite_and_continuous():
    """Arm means of exactly 0 and 1 (impossible outcomes, log-probability -inf) give the limit of nearby means."""
    env, task, policy = bandit_setup(seed=6)
    exact = exact_expectations(policy, env, {"means": torch.tensor([[0.0, 1.0, 0.3]], dtype=torch.float64)}, 0.5, 1, 4)
    near = {"means": torch.tensor([[1e-12, 1 - 1e-12, 0.3]], dtype=torch.float64)}
    for name, value in exact_expectations(policy, env, near, 0.5, 1.0, 4).items():
        assert exact[name].isfinite().all(), name
        assert (exact[name] - value).abs().max().item() < 1e-9, name
