from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from framework.data import EpochSeededSampler, MemoizedDataset, make_loader, require_file


def test_epoch_order_depends_only_on_seed_and_epoch():
    data = range(50)
    a, b = EpochSeededSampler(data, seed=3), EpochSeededSampler(data, seed=3)
    a.set_epoch(4)
    list(b)  # b iterates epoch 0 first; a jumps straight to epoch 4, as a resumed run does
    b.set_epoch(4)
    assert list(a) == list(b)
    assert sorted(a) == list(range(50))
    a.set_epoch(5)
    assert list(a) != list(b)


def test_loader_iteration_does_not_touch_global_rng():
    loader = make_loader(TensorDataset(torch.arange(20.0)), batch_size=4, shuffle=True, seed=0)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for _ in loader:
        pass
    assert torch.equal(torch.rand(3), expected)


def test_bad_batch_size_names_the_field():
    with pytest.raises(ValueError, match="batch_size=0"):
        make_loader(TensorDataset(torch.zeros(3)), batch_size=0, shuffle=False)


def test_require_file_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not download data") as info:
        require_file(tmp_path / "ADNIMERGE.csv", "ADNIMERGE.csv", "download it from ida.loni.usc.edu")
    assert str(tmp_path / "ADNIMERGE.csv") in str(info.value)


def test_tensor_batches_equal_the_default_collate():
    x, y = torch.randn(37, 3), torch.arange(37)
    fast = make_loader(TensorDataset(x, y), batch_size=8, shuffle=True, seed=1)
    plain = torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=8, sampler=EpochSeededSampler(range(37), 1))
    batches = list(fast)
    assert len(batches) == 5
    for got, expected in zip(batches, plain, strict=True):
        torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)
        torch.testing.assert_close(got[1], expected[1], rtol=0, atol=0)


def _ragged(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A ragged transform: row i keeps its first (int(x[i, 0]) % 3 + 1) values, padded with NaN to the batch's
    widest row (as persistence diagrams are), plus a dense per-row output."""
    lengths = x[:, 0].long() % 3 + 1
    out = torch.full((len(x), int(lengths.max())), float("nan"))
    for i, n in enumerate(lengths.tolist()):
        out[i, :n] = x[i, :n]
    return out, 2 * x


def test_memoized_dataset_computes_each_item_once_and_serves_what_fn_would_on_the_batch():
    x = torch.arange(40.0).reshape(10, 4)
    calls: list[int] = []

    def fn(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(batch))
        return _ragged(batch)

    dataset = MemoizedDataset(x, fn, ragged_dim=-1)
    loader = make_loader(dataset, batch_size=4, shuffle=True, seed=3)
    for _ in range(3):  # three epochs
        for ragged, dense in loader:
            assert dense.shape == (len(ragged), 4)
            index = (dense[:, 0] / 8).long()  # row 0 of x[i] is 4 i, doubled
            expected, _ = _ragged(x[index])  # the same rows, computed in one batch
            # equal to computing these rows together: the width is the batch's widest row, whatever batch first
            # computed each item (so a resumed run serves identical tensors)
            assert torch.equal(ragged.nan_to_num(-1), expected.nan_to_num(-1))
    assert sum(calls) == len(x), "every item computed exactly once over three epochs"
    ragged, dense = dataset[2]  # x[2, 0] = 8 keeps 8 % 3 + 1 = 3 values
    assert torch.equal(ragged, x[2, :3]) and torch.equal(dense, 2 * x[2])


def _epoch(loader, epoch: int) -> list[list[int]]:
    loader.sampler.set_epoch(epoch)
    return [batch[0].tolist() for batch in loader]


def test_a_loader_restored_mid_epoch_serves_the_rest_of_that_epoch_in_order():
    """The state after k batches of epoch e, loaded into a fresh loader, skips exactly those k batches of epoch e;
    the next epoch, and a state taken at an epoch's end, skip nothing."""
    data = TensorDataset(torch.arange(20))
    straight = make_loader(data, 3, shuffle=True, seed=5)
    first, second = _epoch(straight, 0), _epoch(straight, 1)
    interrupted = make_loader(data, 3, shuffle=True, seed=5)
    interrupted.sampler.set_epoch(1)
    batches = iter(interrupted)
    taken = [next(batches)[0].tolist() for _ in range(2)]
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "batches_served": 2} and taken == second[:2]
    resumed = make_loader(data, 3, shuffle=True, seed=5)
    resumed.load_state_dict(state)
    assert _epoch(resumed, 1) == second[2:]
    assert _epoch(resumed, 2) == _epoch(straight, 2), "a loaded state applies to one iteration only"
    at_end = make_loader(data, 3, shuffle=True, seed=5)
    at_end.load_state_dict({"epoch": 0, "batches_served": len(first)})
    assert _epoch(at_end, 0) == first
    other_epoch = make_loader(data, 3, shuffle=True, seed=5)
    other_epoch.load_state_dict(state)
    assert _epoch(other_epoch, 2) == _epoch(straight, 2)


def test_a_fit_resumed_mid_epoch_ends_bit_identical_under_a_step_schedule(tmp_path):
    """Toy regression, 2 epochs of 8 batches with a cosine schedule over the run's steps (which makes Lightning
    build the train loader before restoring), killed after step 11 and resumed from the checkpoint of step 10."""
    from framework.cli import main
    from framework.testing.conformance import RunKilled

    common = [
        "fit",
        "--model=framework.testing.toy.ToyRegression",
        "--data=framework.testing.toy.ToyRegressionData",
        "--model.lr_scheduler=framework.optim.CosineAnnealingToEnd",
        "--trainer.max_epochs=2",
        "--trainer.limit_train_batches=8",
        "--trainer.logger=CSVLogger",
        "--trainer.enable_progress_bar=false",
        "--checkpoint.every_n_train_steps=1",
    ]
    straight = main([*common, f"--run_dir={tmp_path / 'straight'}"])
    assert straight.trainer.global_step == 16
    kill = '{"class_path": "framework.testing.conformance.KillAtStep", "init_args": {"step": 11}}'
    with pytest.raises(RunKilled):
        main([*common, f"--run_dir={tmp_path / 'resumed'}", f"--trainer.callbacks+={kill}"])
    resumed = main([*common, f"--run_dir={tmp_path / 'resumed'}", "--ckpt_path=last"])
    assert resumed.trainer.global_step == 16
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
