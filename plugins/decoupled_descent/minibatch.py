"""Mini-batch decoupled descent: the Onsager memory of every sample, in the batch or not, at every step.

With a batch B_t drawn independently of the data values (a seeded shuffle), the cavity argument of the README
("Why the correction cancels the data-reuse bias") goes through step by step with two changes: sample i's own
gradient enters only on the steps where i is in B_t, and the other samples' response acts through the batch's
Hessians only, C_t^B = (Delta / d) sum_{j in B_t} H_j (``onsager_matrix`` of the batch). Hence, for **all** n rows,

    V^t = mu V^{t-1} + (1 - tau) (G^t 1[i in B_t] + M^t (lam I + C_t^B)^T),     M^{t+1} = M^t - eta_t V^t,

i.e. the full-batch filter with the gradients of the samples outside the batch set to zero (their memory still
decays and couples through C_t^B: W keeps moving in response to their earlier gradients). The full batch is the
special case B_t = all samples.
"""

from __future__ import annotations

import torch

from framework.optim.decoupled_descent import OnsagerMemory, sgd_filter_step


class MiniBatchOnsagerMemory(OnsagerMemory):
    """:class:`~framework.optim.decoupled_descent.OnsagerMemory` that also accepts a partial batch of distinct
    samples (the rule in the module doc); with every sample in the batch it is the full-batch memory.

    Args:
        width: K, the number of first-layer units.
        noise_var: Delta, the per-coordinate noise variance of x.
    """

    def step(self, index: torch.Tensor, grad: torch.Tensor, onsager: torch.Tensor, sgd: dict[str, float]) -> None:
        """M <- SGD filter of (G on the batch rows, 0 elsewhere) + M (lam I + C_B)^T for all n rows.

        index: (b,) distinct sample ids of the batch (gathered over ranks); grad: (b, K) their G rows; onsager:
        (K, K) = C_B over the batch; sgd: the optimizer's (lr, momentum, dampening, weight_decay).
        """
        n = self.memory.shape[0]
        if index.numel() > n:  # a DistributedSampler padded the ranks' shares: the full-batch memory names the fix
            super().step(index, grad, onsager, sgd)
        if torch.unique(index).numel() != index.numel():
            raise ValueError(
                f"n_train={n}: a step saw {index.numel()} indices ({torch.unique(index).numel()} distinct); every "
                "sample may appear at most once per step."
            )
        drive = torch.zeros_like(self.memory)
        drive[index] = grad.to(self.memory.dtype)
        coupling = sgd["weight_decay"] * torch.eye(self.width, dtype=self.memory.dtype, device=drive.device)
        velocity = self.velocity if bool(self.started) else None
        self.memory, self.velocity = sgd_filter_step(
            self.memory,
            velocity,
            drive,
            coupling + onsager.to(self.memory.dtype),
            sgd["lr"],
            sgd["momentum"],
            sgd["dampening"],
        )
        self.started = torch.ones_like(self.started)
