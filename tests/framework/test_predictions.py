"""``framework predict`` writes predictions.npz and predictions.csv with the id of every row; read back here with
numpy and pandas only (no framework, no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.callbacks.predictions import table
from framework.cli import main
from framework.registry import config_dir

QUICK_FIT = [
    "--trainer.max_epochs=1",
    "--trainer.max_steps=-1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.logger=CSVLogger",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]

# plugin -> (id columns, output columns in the .npz)
COLUMNS = {
    "gap_transformer": (["participant", "anchor_years"], ["observed", "lme", "prediction"]),
    "graph_sparsify": (["node"], ["dense_logits", "sparse_logits"]),
    "meta_rl": (["task"], ["return"]),
    "flow_matching": (["index"], ["prediction"]),
}


@pytest.mark.parametrize("plugin", sorted(COLUMNS))
def test_predict_writes_rows_with_their_ids_that_numpy_and_pandas_read_back(plugin, tmp_path):
    run_dir = tmp_path / "run"
    args = ["--config", str(config_dir(plugin) / "quick.yaml"), f"--run_dir={run_dir}", *QUICK_FIT]
    main(["fit", *args])
    main(["predict", *args, "--ckpt_path=last"])
    ids, outputs = COLUMNS[plugin]
    with np.load(run_dir / "predictions.npz") as npz:
        arrays = dict(npz)
    assert list(arrays) == ids + outputs
    n = len(arrays[ids[0]])
    assert n > 0 and all(len(a) == n for a in arrays.values())
    keys = list(zip(*(arrays[c].tolist() for c in ids), strict=True))
    assert len(set(keys)) == n, "every row's id is unique"
    frame = pd.read_csv(run_dir / "predictions.csv")
    assert len(frame) == n
    for column in ids:
        np.testing.assert_array_equal(frame[column].to_numpy(), arrays[column])
    first = outputs[-1]
    wide = arrays[first].reshape(n, -1)
    spread = [first] if arrays[first].ndim == 1 else [c for c in frame.columns if c.startswith(f"{first}_")]
    np.testing.assert_allclose(frame[spread].to_numpy(), wide, rtol=1e-6)
    if plugin == "flow_matching":
        np.testing.assert_array_equal(arrays["index"], np.arange(n))  # the sample index in the predict split


def test_multi_value_columns_spread_row_major_over_numbered_columns():
    names, rows = table({"id": np.array([3, 4]), "out": np.arange(8).reshape(2, 2, 2)})
    assert names == ["id", "out_0_0", "out_0_1", "out_1_0", "out_1_1"]
    assert rows.tolist() == [[3, 0, 1, 2, 3], [4, 4, 5, 6, 7]]
