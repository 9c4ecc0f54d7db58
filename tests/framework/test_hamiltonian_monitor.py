"""The Hamiltonian monitor inside a real Muon run: K equals an independent SVD computation; figure written."""

from __future__ import annotations

import pytest
import torch

from framework.callbacks.hamiltonian import momentum_kinetic_energy
from framework.cli import main
from framework.registry import config_dir


@pytest.mark.parametrize("orthogonalizer", ["regularized", "newton_schulz"])
def test_monitor_logs_f_k_h_and_draws_them(tmp_path, orthogonalizer):
    run_dir = tmp_path / "run"
    cli = main(
        [
            "fit",
            "--config",
            str(config_dir("moe_transformer") / "quick.yaml"),
            f"--run_dir={run_dir}",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=6",
            "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--model.init_args.optimizer.init_args.orthogonalizer={orthogonalizer}",
            "--model.init_args.optimizer.init_args.reg_eps=0.001",
            "--trainer.callbacks+=framework.callbacks.HamiltonianMonitor",
            "--trainer.callbacks.every_n_steps=1",
        ]
    )
    m = cli.trainer.callback_metrics
    assert float(m["energy/H"]) == pytest.approx(float(m["energy/f"]) + float(m["energy/K"]), rel=1e-6)
    opt = cli.trainer.optimizers[0]
    independent = 0.0
    for group in opt.param_groups:
        if group["use_muon"]:
            for p in group["params"]:
                for block in opt.views[p].blocks(opt.state[p]["momentum_buffer"]):
                    s = torch.linalg.svdvals(block.double())
                    independent += ((s**2 + 1e-6).sqrt() - 1e-3).sum().item()
    assert momentum_kinetic_energy([opt]) == pytest.approx(independent, rel=1e-9)
    assert independent > 0
    assert (run_dir / "figures" / "energy.png").is_file()
