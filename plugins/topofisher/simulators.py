"""Seed-matched simulators: x(theta, seed), with the same noise for every theta of one seed, so that the central
difference (x(theta_fid + dtheta_a / 2) - x(theta_fid - dtheta_a / 2)) / dtheta_a has only the noise of the model's
response, not of the realisation. Each simulator knows its exact Fisher matrix where one exists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from framework_plugins.topofisher.grf import grf_fisher, power_spectrum
from framework_plugins.topofisher.spiral import spiral_fisher, spiral_noise, spiral_points
from framework_plugins.topofisher.tomography import (
    field_from_noise,
    grid_power,
    lognormal_gaussian_power,
    mode_sqrt,
    shape_noise_sigma,
    smooth,
)


def distinct_inputs(
    theta: torch.Tensor, seeds: Sequence[int]
) -> tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seed-matched batch repeats each seed 1 + 2p times and each theta once per seed: returns (distinct seeds in
    first-seen order, index of each row's seed among them, distinct thetas (float64), index of each row's theta), so
    that noise and spectra are computed once each."""
    seeds = list(seeds)
    distinct = list(dict.fromkeys(seeds))
    position = {s: i for i, s in enumerate(distinct)}
    seed_index = torch.tensor([position[s] for s in seeds], dtype=torch.long)
    thetas, theta_index = torch.unique(theta.to(torch.float64), dim=0, return_inverse=True)
    return distinct, seed_index, thetas, theta_index


class Simulator:
    """Base class: ``theta_fid`` (p,), ``dtheta`` (p,), ``simulate(theta (m, p), seeds (m,)) -> (m, *shape)``."""

    def __init__(self, theta_fid: Sequence[float], dtheta: Sequence[float]) -> None:
        if len(theta_fid) != len(dtheta):
            raise ValueError(f"theta_fid={list(theta_fid)} and dtheta={list(dtheta)} must have the same length.")
        if any(d <= 0 for d in dtheta):
            raise ValueError(f"dtheta={list(dtheta)} must be positive (the central-difference step per parameter).")
        self.theta_fid = torch.tensor(theta_fid, dtype=torch.float64)
        self.dtheta = torch.tensor(dtheta, dtype=torch.float64)

    @property
    def n_params(self) -> int:
        return len(self.theta_fid)

    def simulate(self, theta: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        raise NotImplementedError

    def exact_fisher(self) -> torch.Tensor | None:
        """The exact Fisher matrix at theta_fid, (p, p) float64, or None where it is unknown."""
        return None

    def thetas(self) -> torch.Tensor:
        """The 1 + 2p parameter points of one seed: fiducial, then theta_fid + dtheta_a / 2 for each a, then
        theta_fid - dtheta_a / 2 for each a. Shape (1 + 2p, p)."""
        step = torch.diag(self.dtheta) / 2
        return torch.cat([self.theta_fid[None], self.theta_fid + step, self.theta_fid - step])

    def seed_matched(self, seeds: Sequence[int]) -> torch.Tensor:
        """Simulations for each seed at the 1 + 2p points of :meth:`thetas`, float32, (len(seeds), 1 + 2p, *shape)."""
        thetas = self.thetas()
        m = len(thetas)
        sims = self.simulate(thetas.repeat(len(seeds), 1), [s for s in seeds for _ in range(m)])
        return sims.reshape(len(seeds), m, *sims.shape[1:]).float()


class GRF(Simulator):
    """2-D Gaussian random field, P(k) = A (k / k_p)^(-B), theta = (A, B), on an n x n periodic grid (grf.py).

    Args:
        n: grid side in pixels (>= 4); simulations are (n, n).
        theta_fid: fiducial (A, B): amplitude and slope of the power spectrum.
        dtheta: central-difference step of each parameter (> 0): simulations at theta_fid +- dtheta / 2.
        k_pivot: k_p, the wavenumber (k = 2 pi fftfreq, box length n pixels) at which P = A.
    """

    def __init__(
        self,
        n: int = 32,
        theta_fid: Sequence[float] = (1.0, 0.0),
        dtheta: Sequence[float] = (0.1, 0.1),
        k_pivot: float = 1.0,
    ) -> None:
        super().__init__(theta_fid, dtheta)
        if n < 4:
            raise ValueError(f"n={n} is too small; use a grid of at least 4 x 4 pixels.")
        self.n, self.k_pivot = n, k_pivot

    def simulate(self, theta: torch.Tensor, seeds: Sequence[int], chunk: int = 512) -> torch.Tensor:
        """Fields x = ifft2(sqrt(P_theta) fft2(w_seed)) for each (theta_i, seed_i), w_seed unit white noise drawn
        from ``Generator().manual_seed(seed)``: real, with E|fft2(x)_k|^2 = n^2 P(k). A seed-matched
        batch repeats seeds and thetas, so the white noise and its FFT are computed once per distinct seed and
        sqrt(P) once per distinct theta; real FFTs (sqrt(P) is even in k, so the product stays Hermitian)."""
        distinct, seed_index, thetas, theta_index = distinct_inputs(theta, seeds)
        amplitude = torch.sqrt(power_spectrum(thetas, self.n, self.k_pivot))[..., : self.n // 2 + 1]
        out = torch.empty(len(seed_index), self.n, self.n, dtype=torch.float64)
        for start in range(0, len(distinct), chunk):
            white = torch.stack(
                [
                    torch.randn(self.n, self.n, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
                    for s in distinct[start : start + chunk]
                ]
            )
            rows = ((seed_index >= start) & (seed_index < start + chunk)).nonzero().squeeze(1)
            noise = torch.fft.rfft2(white)[seed_index[rows] - start]
            out[rows] = torch.fft.irfft2(amplitude[theta_index[rows]] * noise, s=(self.n, self.n))
        return out

    def exact_fisher(self) -> torch.Tensor:
        return grf_fisher(self.theta_fid, self.n, self.k_pivot)


class NoisySpiral(Simulator):
    """n_points 2-D points on a noisy spiral plus uniform outliers, theta = (mu, w) (spiral.py). Output (n, 2).

    Args:
        n_points: points per simulation.
        theta_fid: fiducial (mu, w): radius per radian of the spiral r = mu phi + w eps, and its noise width.
        dtheta: central-difference step of each parameter (> 0): simulations at theta_fid +- dtheta / 2.
        outlier_fraction: probability that a point is a uniform outlier on the square, in [0, 1).
        phi_max: largest angle of the spiral in radians (phi ~ U(0, phi_max)).
        half_width: outliers are uniform on [-half_width, half_width]^2.
    """

    def __init__(
        self,
        n_points: int = 240,
        theta_fid: Sequence[float] = (0.6, 0.1),
        dtheta: Sequence[float] = (0.01, 0.005),
        outlier_fraction: float = 1 / 6,
        phi_max: float = 4 * math.pi,
        half_width: float = 11.0,
    ) -> None:
        super().__init__(theta_fid, dtheta)
        if not 0 <= outlier_fraction < 1:
            raise ValueError(f"outlier_fraction={outlier_fraction} must lie in [0, 1).")
        self.n_points, self.lam, self.phi_max, self.half_width = n_points, outlier_fraction, phi_max, half_width

    def simulate(self, theta: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
        noises = [spiral_noise(torch.Generator().manual_seed(s), self.n_points, self.lam, self.phi_max) for s in seeds]
        noise = {key: torch.stack([nz[key] for nz in noises]) for key in noises[0]}
        return spiral_points(theta.to(torch.float64), noise, self.half_width)

    def exact_fisher(self) -> torch.Tensor:
        return spiral_fisher(self.theta_fid, self.n_points, self.lam, self.phi_max, self.half_width)


class TomographicLensing(Simulator):
    """Tomographic convergence maps with a physical C_l (cosmology.py: flat LambdaCDM, Eisenstein-Hu linear power,
    Limber, LSST-Y10-like n(z) cut into equal-number bins), correlated across bins, Gaussian or shifted lognormal
    (tomography.py), with shape noise and smoothing; theta = (Omega_m, sigma_8). Output (bins, n, n) per simulation.

    The lognormal shifts lambda_i do not depend on theta; ``shift_scale`` multiplies them all: a larger scale makes the
    maps more Gaussian at the same C_l (``kind="gaussian"`` is the limit), which is the simulator shift of the
    experiments.

    Args:
        n: map side in pixels.
        side_deg: map side in degrees.
        theta_fid: fiducial (Omega_m, sigma_8).
        dtheta: central-difference step of each parameter (> 0).
        kind: ``lognormal`` or ``gaussian`` (the same C_l).
        shifts: lambda_i of each bin (> 0); their number sets the number of bins.
        shift_scale: multiplies every lambda_i (> 0).
        n_gal: galaxies per arcmin^2, shared equally by the bins.
        sigma_e: intrinsic ellipticity dispersion.
        noise_scale: multiplies the shape noise (0 = noiseless).
        smoothing_arcmin: Gaussian smoothing of the observed maps (0 = none).
    """

    def __init__(
        self,
        n: int = 128,
        side_deg: float = 5.0,
        theta_fid: Sequence[float] = (0.3, 0.8),
        dtheta: Sequence[float] = (0.02, 0.02),
        kind: Literal["lognormal", "gaussian"] = "lognormal",
        shifts: Sequence[float] = (0.016, 0.052),
        shift_scale: float = 1.0,
        n_gal: float = 27.0,
        sigma_e: float = 0.26,
        noise_scale: float = 1.0,
        smoothing_arcmin: float = 2.0,
    ) -> None:
        super().__init__(theta_fid, dtheta)
        if kind not in ("lognormal", "gaussian"):
            raise ValueError(f"kind={kind!r} is unknown; use 'lognormal' or 'gaussian'.")
        if len(shifts) < 1 or any(s <= 0 for s in shifts) or shift_scale <= 0:
            raise ValueError(
                f"shifts={list(shifts)}, shift_scale={shift_scale}: give one positive lambda per bin and a positive "
                "scale, e.g. shifts [0.016, 0.052]."
            )
        self.n, self.side_deg, self.kind, self.bins = n, side_deg, kind, len(shifts)
        self.shifts = torch.tensor(shifts, dtype=torch.float64) * shift_scale
        self.noise_sigma = noise_scale * shape_noise_sigma(n, side_deg, n_gal / self.bins, sigma_e)
        self.smoothing_arcmin = smoothing_arcmin
        self._amplitudes: dict[tuple[float, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def amplitude(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-mode amplitudes (n, n, bins, bins) of the Gaussian field and its pixel variance (bins,) at one
        theta (cached: a run simulates at 1 + 2p thetas)."""
        key = tuple(theta.tolist())
        if key not in self._amplitudes:
            power = grid_power(theta, self.n, self.side_deg, self.bins)
            if self.kind == "lognormal":
                power = lognormal_gaussian_power(power, self.shifts)
            amp = mode_sqrt(power)
            variance = torch.einsum("xyij,xyij->i", amp, amp) / self.n**2
            self._amplitudes[key] = (amp, variance)
        return self._amplitudes[key]

    def simulate(self, theta: torch.Tensor, seeds: Sequence[int], chunk: int = 256) -> torch.Tensor:
        """Maps for each (theta_i, seed_i): the seed's white noise (bins, 2, n, n) gives the field (first) and the
        shape noise (second); lognormal transform for ``kind="lognormal"``; noise; smoothing."""
        distinct, seed_index, thetas, theta_index = distinct_inputs(theta, seeds)
        z = torch.stack(
            [
                torch.randn(
                    self.bins, 2, self.n, self.n, generator=torch.Generator().manual_seed(s), dtype=torch.float64
                )
                for s in distinct
            ]
        )
        white_k = torch.fft.fft2(z[:, :, 0])
        out = torch.empty(len(seed_index), self.bins, self.n, self.n, dtype=torch.float64)
        for t, theta_t in enumerate(thetas):
            amp, variance = self.amplitude(theta_t)
            for rows in (theta_index == t).nonzero().squeeze(1).split(chunk):
                g = field_from_noise(white_k[seed_index[rows]], amp)
                if self.kind == "lognormal":
                    shift = self.shifts[:, None, None]
                    g = shift * (torch.exp(g - variance[:, None, None] / 2) - 1)
                observed = g + self.noise_sigma * z[seed_index[rows], :, 1]
                out[rows] = smooth(observed, self.side_deg, self.smoothing_arcmin)
        return out
