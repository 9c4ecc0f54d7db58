"""The physical tomographic lensing simulator: cosmology closed forms, the maps' power spectra against the input
C_l (auto and cross), and the lognormal shift changing the skewness at a fixed power spectrum."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from framework_plugins.topofisher.cosmology import (
    HUBBLE_DISTANCE,
    comoving_distance,
    convergence_cl,
    eh_transfer,
    growth,
    linear_power,
    source_bins,
    tophat_variance,
)
from framework_plugins.topofisher.simulators import TomographicLensing
from framework_plugins.topofisher.tomography import grid_ell, grid_power, smooth


def test_cosmology_closed_forms():
    z = np.array([0.5, 1.0, 3.0])
    # Einstein-de Sitter: chi = 2 (c / H0) (1 - 1 / sqrt(1 + z)), D = a
    np.testing.assert_allclose(comoving_distance(z, 1.0), 2 * HUBBLE_DISTANCE * (1 - 1 / np.sqrt(1 + z)), rtol=1e-5)
    np.testing.assert_allclose(growth(z, 1.0), 1 / (1 + z), rtol=1e-4)
    assert growth(np.array([1.0]), 0.3)[0] > 1 / 2  # Lambda slows growth: D(z = 1) / D(0) > a
    k = np.logspace(-5, 2, 4000)
    assert eh_transfer(np.array([1e-5]), 0.3)[0] == pytest.approx(1, abs=1e-3)
    assert np.sqrt(tophat_variance(k, linear_power(k, 0.3, 0.8), 8.0)) == pytest.approx(0.8, rel=1e-6)
    zz = np.linspace(0, 4, 801)
    nz = source_bins(3, zz)
    np.testing.assert_allclose(np.trapezoid(nz, zz, axis=1), 1, rtol=1e-10)
    ell = np.array([100.0, 1000.0])
    cl = convergence_cl(ell, 0.3, 0.8, 2)
    np.testing.assert_allclose(convergence_cl(ell, 0.3, 0.4, 2), cl / 4, rtol=1e-10)  # C_l ~ sigma_8^2 (linear)
    assert (cl[1, 1] > cl[0, 1]).all() and (cl[0, 1] > cl[0, 0]).all()  # deeper sources: more lensing
    assert (cl[0, 1] ** 2 < cl[0, 0] * cl[1, 1]).all()  # a correlation below 1


@pytest.mark.parametrize("kind", ["gaussian", "lognormal"])
def test_map_power_spectra_match_the_input_cl(kind):
    sim = TomographicLensing(n=64, kind=kind, noise_scale=0, smoothing_arcmin=0)
    maps = sim.simulate(sim.theta_fid[None].repeat(400, 1), list(range(400)))
    fk = torch.fft.fft2(maps)
    measured = (fk[:, :, None] * fk[:, None].conj()).real / 64**2  # (m, i, j, n, n)
    power = grid_power(sim.theta_fid, 64, 5.0, 2)
    ell = grid_ell(64, 5.0)
    for low, high in [(72, 400), (400, 1200), (1200, 3000), (3000, 5000)]:
        ring = (ell >= low) & (ell < high)
        for i, j in ((0, 0), (1, 1), (0, 1)):
            per_map = measured[:, i, j][:, ring].mean(-1)
            expected = power[i, j][ring].mean()
            error = per_map.std() / np.sqrt(len(per_map))
            assert abs(per_map.mean() - expected) < 4 * error + 0.01 * expected, (kind, low, i, j)


def test_lognormal_shift_changes_skewness_at_a_fixed_power_spectrum():
    seeds = list(range(200))
    maps = {
        scale: TomographicLensing(n=64, noise_scale=0, smoothing_arcmin=0, shift_scale=scale).simulate(
            torch.tensor([[0.3, 0.8]]).repeat(200, 1), seeds
        )
        for scale in (1.0, 3.0)
    }
    gaussian = TomographicLensing(n=64, kind="gaussian", noise_scale=0, smoothing_arcmin=0)
    maps["gaussian"] = gaussian.simulate(torch.tensor([[0.3, 0.8]]).repeat(200, 1), seeds)
    ell = grid_ell(64, 5.0)
    power, skewness = {}, {}
    for name, x in maps.items():
        p = torch.fft.fft2(x).abs() ** 2
        power[name] = torch.stack([p[..., (ell >= lo) & (ell < lo * 3)].mean() for lo in (100, 300, 900, 2700)])
        z = (x - x.mean((-1, -2), keepdim=True)) / x.std((-1, -2), keepdim=True)
        skewness[name] = (z**3).mean((0, 2, 3))  # per bin
    for name in (3.0, "gaussian"):
        np.testing.assert_allclose(power[name], power[1.0], rtol=0.05)
    assert (skewness[1.0] > 0.3).all()  # ~ 3 sigma / lambda
    assert (skewness[3.0] < 0.5 * skewness[1.0]).all() and (skewness[3.0] > 0.05).all()
    assert skewness["gaussian"].abs().max() < 0.05


def test_smoothing_multiplies_the_power_by_the_gaussian_window():
    x = torch.randn(4, 2, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ratio = torch.fft.fft2(smooth(x, 5.0, 2.0)).abs() / torch.fft.fft2(x).abs()
    window = torch.exp(-0.5 * (grid_ell(32, 5.0) * np.radians(2.0 / 60)) ** 2)
    torch.testing.assert_close(ratio, window.expand_as(ratio))


def test_bad_shifts_are_refused():
    with pytest.raises(ValueError, match="shifts"):
        TomographicLensing(shifts=[0.01, -0.02])
