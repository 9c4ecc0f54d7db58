"""Feature encoders and the 1-NN two-sample test against independent implementations (numpy, scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from framework_plugins.drifting.features import PCAFeatures, RandomConvFeatures, build_encoder
from framework_plugins.drifting.two_sample import knn_two_sample

GEN = torch.Generator().manual_seed(0)


def test_pca_features_are_whitened_principal_components():
    scales = torch.tensor([3.0, 2, 1, 0.5, 0.2, 0.1], dtype=torch.float64)
    data = torch.randn(500, 6, generator=GEN, dtype=torch.float64) * scales + 5
    enc = PCAFeatures(6, 3).double()
    enc.fit(data)
    feats = enc(data).numpy()
    np.testing.assert_allclose(np.cov(feats.T), np.eye(3), atol=1e-10)  # whitened
    centred = data.numpy() - data.numpy().mean(0)
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)  # independent PCA: SVD of the centred data
    expected = centred @ vt[:3].T / (sing[:3] / np.sqrt(len(data) - 1))
    np.testing.assert_allclose(np.abs(feats), np.abs(expected), atol=1e-8)  # equal up to each component's sign


def test_random_conv_features_are_fixed_and_shaped():
    a, b = RandomConvFeatures(64, 16), RandomConvFeatures(64, 16)
    x = torch.randn(5, 64, generator=GEN)
    torch.testing.assert_close(a(x), b(x))  # the same frozen weights in every run
    assert a(x).shape == (5, 16 * 4 * 4) and (a(x) >= 0).all()
    assert not any(p.requires_grad for p in a.parameters())
    with pytest.raises(ValueError, match="square images"):
        RandomConvFeatures(60, 4)
    assert build_encoder("none", 64, 16) is None
    with pytest.raises(ValueError, match="encoder_dim"):
        build_encoder("pca", 8, 9)


def test_one_nn_accuracy_matches_scikit_learn_leave_one_out():
    neighbors = pytest.importorskip("sklearn.neighbors")
    model_selection = pytest.importorskip("sklearn.model_selection")
    x = torch.randn(40, 5, generator=GEN, dtype=torch.float64)
    y = torch.randn(50, 5, generator=GEN, dtype=torch.float64) + 0.7
    accuracy, _ = knn_two_sample(x, y, n_perm=10)
    pooled, labels = torch.cat([x, y]).numpy(), np.r_[np.zeros(40), np.ones(50)]
    scores = model_selection.cross_val_score(
        neighbors.KNeighborsClassifier(n_neighbors=1), pooled, labels, cv=model_selection.LeaveOneOut()
    )
    assert accuracy == pytest.approx(scores.mean(), abs=1e-12)


def test_two_sample_p_value_is_valid_under_the_null_and_powerful_under_a_shift():
    """A permutation p-value is super-uniform when both samples share a law: P(p <= alpha) <= alpha. Over 200 null
    draws at alpha = 0.1 the rejections are Binomial(200, <= 0.1): mean <= 20, more than 32 has probability < 0.3%.
    (Ties in the discrete accuracy make the test conservative: 8 to 22 rejections over 30 base seeds.) A shift of 1
    in every coordinate of 8 dimensions is rejected on every draw."""

    def draw(n: int, shift: float = 0.0) -> torch.Tensor:
        return torch.randn(n, 8, generator=GEN) + shift

    null = [knn_two_sample(draw(40), draw(40), n_perm=99, seed=s) for s in range(200)]
    rejections = sum(p <= 0.1 for _, p in null)
    assert 3 <= rejections <= 32, rejections  # neither anti-conservative nor degenerate (a p-value stuck at 1)
    assert abs(np.mean([acc for acc, _ in null]) - 0.5) < 0.05
    for seed in range(5):
        accuracy, p = knn_two_sample(draw(150), draw(150, shift=1.0), n_perm=300, seed=seed)
        assert accuracy > 0.75 and p < 0.01
    copied = torch.randn(150, 8, generator=GEN)
    assert knn_two_sample(copied, copied.clone(), n_perm=10)[0] == 0.0  # memorised points: every neighbour is a twin


@pytest.mark.parametrize("encoder", ["pca", "random_conv"])
def test_feature_space_drifting_fits_its_encoder_and_logs_the_two_sample_test(tmp_path, encoder):
    from framework.cli import main
    from framework.registry import config_dir

    args = [
        "--config",
        str(config_dir("drifting") / "digits.yaml"),
        f"--run_dir={tmp_path / 'run'}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.logger=CSVLogger",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
        f"--model.init_args.encoder={encoder}",
    ]
    main(["fit", *args])
    cli = main(["test", *args, "--ckpt_path=last"])
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    assert 0.0 <= metrics["test/c2st"] <= 1.0 and 0.0 < metrics["test/c2st_pvalue"] <= 1.0
    assert "test/c2st_gaussian_baseline" in metrics
    state = cli.model.encoder.state_dict()
    assert all(v.abs().sum() > 0 for v in state.values())  # PCA fitted in fit, restored from the checkpoint at test
