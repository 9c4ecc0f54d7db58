"""The meta-RL LightningModule: one meta-iteration (rollouts, inner steps, outer update) per training step."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from framework.figures import figure
from framework.module import FrameworkModule
from framework_plugins.meta_rl.advantages import Baseline
from framework_plugins.meta_rl.datamodule import TaskSeedStream
from framework_plugins.meta_rl.envs import EnvName, make_env
from framework_plugins.meta_rl.meta import Estimator, MetaPolicyGradient, ScoreBaseline
from framework_plugins.meta_rl.policy import MLPPolicy

EVAL_SEED = 9173


def adam(params: Any) -> torch.optim.Optimizer:
    """Adam(lr=1e-3): the outer optimizer of the SG-MRL authors' runs, used when the config names none."""
    return torch.optim.Adam(params, lr=1e-3)


class MetaRL(FrameworkModule):
    """MAML / SG-MRL meta-training of an MLP policy on a task family, with manual optimization.

    Each training step takes a batch of task seeds, samples D_0..D_{K-1} and D_o on the local tasks (task i of
    the batch goes to DDP rank i mod world size), and takes one optimizer step on minus the meta-surrogate of
    :class:`MetaPolicyGradient` averaged over tasks. Training noise comes from a generator seeded by a draw from
    the global torch RNG (checkpointed by the framework) plus the rank. Evaluation (val/test/predict) adapts with
    fresh batches drawn from generators seeded by ``EVAL_SEED`` + batch index.

    Logged: ``train/loss`` (minus the surrogate; not a progress signal), ``train/pre_return``,
    ``train/post_return``, ``train/adaptation_gain``; ``val/pre_return``, ``val/post_return`` (after 1 inner
    step), ``val/adaptation_gain``; ``test/return_step<k>`` for k = 0..``test_inner_steps``, ``test/pre_return``,
    ``test/post_return``, ``test/adaptation_gain`` (after 1 step), ``test/final_return`` and the figure
    ``adaptation_curve``. Returns are undiscounted episode sums.

    Args:
        env: task family: ``bandit`` (Bernoulli arms), ``tabular_mdp`` (random tabular MDPs), ``point`` (2-D
            navigation to a random goal), ``cheetah_vel`` / ``cheetah_dir`` (HalfCheetah target velocity /
            direction; need MuJoCo).
        env_kwargs: the env's constructor arguments: ``horizon`` (every env), ``n_arms`` (bandit), ``n_states``,
            ``n_actions``, ``reward_std`` (tabular_mdp); null = its defaults.
        estimator: ``sgmrl`` (unbiased), ``maml``, ``fomaml`` or ``sgmrl_hessian_batch``.
        hidden: hidden layer widths of the tanh MLP policy.
        init_log_std: initial log standard deviation of the Gaussian policy (continuous envs: point, cheetah_*;
            unused by the discrete bandit and tabular_mdp).
        inner_lr: alpha, the step size of each inner (adaptation) policy-gradient ascent step.
        inner_steps: K, inner adaptation steps per task during meta-training (>= 1).
        test_inner_steps: inner adaptation steps at test and predict time (>= 1; validation takes 1).
        trajectories_per_task: N, the size of every batch D.
        gamma: discount factor of the advantages and of the training objective, in [0, 1] (logged returns are
            undiscounted).
        gae_lambda: lambda of generalised advantage estimation, in [0, 1]; used only with ``baseline: linear``.
        baseline: advantages: ``none`` (discounted reward-to-go) or ``linear`` (leave-one-out linear feature
            baseline + GAE).
        normalize_advantages: standardise the advantages per task (ProMP / MAML practice; makes the inner gradient
            a biased estimate of grad J).
        score_baseline: b in ``sgmrl``'s score-function term: ``leave_one_task_out`` (mean return of the other
            tasks), ``pre_update`` (return of an extra pre-update batch of the same task) or ``none``; only
            ``estimator: sgmrl`` uses it.
        optimizer: the outer optimizer, callable params -> torch.optim.Optimizer, given this module's named
            parameter groups (YAML: ``class_path`` with ``init_args``); default Adam(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every outer step (YAML: ``class_path`` with
            ``init_args``); null = constant learning rate.
    """

    def __init__(
        self,
        env: EnvName = "point",
        env_kwargs: dict[str, Any] | None = None,
        estimator: Estimator = "sgmrl",
        hidden: tuple[int, ...] = (100, 100),
        init_log_std: float = 0.0,
        inner_lr: float = 0.1,
        inner_steps: int = 1,
        test_inner_steps: int = 3,
        trajectories_per_task: int = 20,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        baseline: Baseline = "none",
        normalize_advantages: bool = False,
        score_baseline: ScoreBaseline = "leave_one_task_out",
        optimizer: OptimizerCallable = adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.automatic_optimization = False
        for name, value in (("inner_steps", inner_steps), ("trajectories_per_task", trajectories_per_task)):
            if value < 1:
                raise ValueError(f"model.init_args.{name}={value} must be >= 1.")
        if test_inner_steps < 1:
            raise ValueError(f"model.init_args.test_inner_steps={test_inner_steps} must be >= 1.")
        self.env = make_env(env, **(env_kwargs or {}))
        n_out = self.env.n_actions if self.env.discrete else self.env.action_dim
        policy = MLPPolicy(self.env.obs_dim, n_out, self.env.discrete, tuple(hidden), init_log_std)
        self.meta = MetaPolicyGradient(
            policy, inner_lr, gamma, gae_lambda, baseline, normalize_advantages, estimator, score_baseline
        )
        self.inner_steps, self.test_inner_steps, self.n_traj = inner_steps, test_inner_steps, trajectories_per_task
        self._curves: list[torch.Tensor] = []

    def on_train_start(self) -> None:  # a fit resumed mid-epoch starts here without on_train_epoch_start
        self.on_train_epoch_start()

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if isinstance(dataset, TaskSeedStream):
            dataset.set_epoch(self.current_epoch)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        seeds = batch[0][rank::world]
        if len(seeds) == 0:
            raise ValueError(f"data.init_args.meta_batch_size={len(batch[0])} is smaller than the {world} ranks.")
        noise_seed = int(torch.randint(0, 2**62, ()).item()) + rank  # global RNG: checkpointed, resumable
        step = self.meta.meta_step(
            self.env,
            self.env.tasks_from_seeds(seeds),
            self.n_traj,
            self.inner_steps,
            torch.Generator().manual_seed(noise_seed),
        )
        loss = -step.surrogate / len(seeds)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self.step_lr_schedulers()
        pre, post = step.pre.mean(), step.post.mean()
        self.log("train/loss", loss.detach())
        self.log_dict(
            {"train/pre_return": pre, "train/post_return": post, "train/adaptation_gain": post - pre}, prog_bar=True
        )
        return loss.detach()

    def _curve(self, batch: list[torch.Tensor], batch_idx: int, steps: int) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            tasks = self.env.tasks_from_seeds(batch[0].cpu())
            generator = torch.Generator().manual_seed(EVAL_SEED + batch_idx)
            return self.meta.adaptation_curve(self.env, tasks, self.n_traj, steps, generator)

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Adaptation curves ``(tasks, test_inner_steps + 1)`` of the batch's held-out tasks."""
        return self._curve(batch, batch_idx, self.test_inner_steps)

    def on_validation_epoch_start(self) -> None:
        self._curves = []

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._curves.append(self._curve(batch, batch_idx, 1))

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._curves.append(self._curve(batch, batch_idx, self.test_inner_steps))

    def _mean_curve(self) -> torch.Tensor:
        return self.gather_rows(self._curves).mean(0)

    def on_validation_epoch_end(self) -> None:
        curve = self._mean_curve()
        self.log_dict(
            {"val/pre_return": curve[0], "val/post_return": curve[1], "val/adaptation_gain": curve[1] - curve[0]}
        )

    def on_test_epoch_end(self) -> None:
        curve = self._mean_curve()
        self.log_dict({f"test/return_step{k}": value for k, value in enumerate(curve)})
        self.log_dict(
            {
                "test/pre_return": curve[0],
                "test/post_return": curve[1],
                "test/adaptation_gain": curve[1] - curve[0],
                "test/final_return": curve[-1],
            }
        )
        self._figure(curve)

    def _figure(self, curve: torch.Tensor) -> None:
        with figure(self.trainer, "adaptation_curve", figsize=(4, 3)) as (_, ax):
            ax.plot(range(len(curve)), curve.cpu().numpy(), marker="o")
            title = f"{self.hparams.env}: {self.hparams.estimator}"
            ax.set(xlabel="inner steps at test time", ylabel="mean return", title=title)
