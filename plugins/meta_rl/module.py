"""The meta-RL LightningModule: one meta-iteration (rollouts, inner steps, outer update) per training step."""

from __future__ import annotations

import copy
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from framework.figures import figure, mean_band
from framework.module import FrameworkModule
from framework_plugins.meta_rl.advantages import Baseline
from framework_plugins.meta_rl.datamodule import TaskSeedStream
from framework_plugins.meta_rl.envs import EnvName, TensorBandit, TensorTabularMDP, make_env
from framework_plugins.meta_rl.estimator_study import STATS, check_study_setting, estimator_study
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
    ``adaptation_curve`` (mean over tasks with a 95% band; at the end of fit of the last validation's tasks after 1
    inner step, at test after 0..``test_inner_steps``). ``predict`` rows carry their ``task`` seed.
    Returns are undiscounted episode sums. With ``study_sizes``, the test also runs the
    estimator study (:mod:`~framework_plugins.meta_rl.estimator_study`) at the current policy on the first test
    task (rank 0): ``test/study_<stat>_<estimator>_N<n>`` for stat in bias, variance, variance_se, mse, mc_z
    (relative to |grad V|) and ``test/study_grad_norm_N<n>``.

    Args:
        env: task family, built in: ``bandit`` (Bernoulli arms), ``tabular_mdp`` (random tabular MDPs), ``point``
            (2-D navigation to a random goal), ``cheetah_vel`` / ``cheetah_dir`` (HalfCheetah target velocity /
            direction; need MuJoCo); or any gymnasium id registered with ``gymnasium.register`` whose env has
            ``sample_tasks(n, rng)`` and ``set_task(task)`` (the TaskEnv protocol of the plugin README), given as
            ``id`` or ``module:id`` (imports the module that registers it), e.g. ``framework/PointNav-v0``.
        env_kwargs: the env's constructor arguments: ``horizon`` (every env; a registered id defaults to its
            ``max_episode_steps``), ``n_arms`` (bandit), ``n_states``, ``n_actions``, ``reward_std``
            (tabular_mdp), a registered id's own ``gymnasium.make`` keyword arguments; null = its defaults.
        estimator: ``sgmrl`` (the unbiased estimator of the SG-MRL theory), ``sgmrl_released`` (the score term as in
            the authors' released code: coefficient mean of per-task normalised advantages, ~0, so MAML in effect),
            ``maml``, ``fomaml`` or ``sgmrl_hessian_batch``.
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
            tasks), ``pre_update`` (return of an extra pre-update batch of the same task), the per-step
            ``inner_batch`` (return of the other trajectories of the same inner batch, no extra rollout) or
            ``learned`` (linear state/time features and that return, weights fitted on the other tasks of the
            meta-batch; see :mod:`~framework_plugins.meta_rl.score_baselines`), or ``none``; all keep the estimator
            unbiased; only ``estimator: sgmrl`` uses it.
        optimizer: the outer optimizer, callable params -> torch.optim.Optimizer, given this module's named
            parameter groups (YAML: ``class_path`` with ``init_args``); default Adam(lr=1e-3).
        lr_scheduler: callable optimizer -> LR scheduler, stepped after every outer step (YAML: ``class_path`` with
            ``init_args``); null = constant learning rate.
        study_sizes: inner batch sizes N of the test-time estimator study (bias, variance and MSE of every
            estimator against the exact meta-gradient, in float64); null = no study. Needs env bandit or
            tabular_mdp with reward_std 0, baseline none, normalize_advantages false and gamma 1 (or horizon 1).
        study_draws: Monte-Carlo draws of each estimator per N in the estimator study (>= 2).
    """

    def __init__(
        self,
        env: EnvName | str = "point",
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
        study_sizes: list[int] | None = None,
        study_draws: int = 10000,
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
        if study_sizes is not None:
            if not isinstance(self.env, TensorBandit | TensorTabularMDP) or getattr(self.env, "reward_std", 0.0):
                raise ValueError("model.init_args.study_sizes needs env bandit or tabular_mdp with reward_std 0.")
            if min(study_sizes, default=0) < 1 or study_draws < 2:
                raise ValueError("model.init_args.study_sizes must be >= 1 and study_draws >= 2.")
            check_study_setting(self.meta, self.env)
        self._curves: list[torch.Tensor] = []
        self._study_seed: torch.Tensor | None = None
        self._val_curves: torch.Tensor | None = None

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

    def prediction_columns(
        self, batch: list[torch.Tensor], prediction: torch.Tensor, index: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The predictions file's columns (:class:`~framework.callbacks.PredictionWriter`): ``task`` (the seed that
        draws the held-out task) and ``return`` (the mean return after 0..``test_inner_steps`` inner steps)."""
        return {"task": batch[0], "return": prediction}

    def on_validation_epoch_start(self) -> None:
        self._curves = []

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._curves.append(self._curve(batch, batch_idx, 1))

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        if batch_idx == 0:
            self._study_seed = batch[0][0].cpu()
        self._curves.append(self._curve(batch, batch_idx, self.test_inner_steps))

    def on_validation_epoch_end(self) -> None:
        curves = self.gather_rows(self._curves)
        self._val_curves = curves.detach().cpu()  # the figure at the end of fit draws the last validation's
        curve = curves.mean(0)
        self.log_dict(
            {"val/pre_return": curve[0], "val/post_return": curve[1], "val/adaptation_gain": curve[1] - curve[0]}
        )

    def on_fit_end(self) -> None:
        if self._val_curves is not None:
            self._figure(self._val_curves, "validation")

    def on_test_epoch_end(self) -> None:
        curves = self.gather_rows(self._curves)
        curve = curves.mean(0)
        self.log_dict({f"test/return_step{k}": value for k, value in enumerate(curve)})
        self.log_dict(
            {
                "test/pre_return": curve[0],
                "test/post_return": curve[1],
                "test/adaptation_gain": curve[1] - curve[0],
                "test/final_return": curve[-1],
            }
        )
        self._figure(curves.detach().cpu(), "test")
        if self.hparams.study_sizes is not None and self.trainer.global_rank == 0 and self._study_seed is not None:
            self.log_dict(self._study(self._study_seed), rank_zero_only=True)

    def _study(self, seed: torch.Tensor) -> dict[str, float]:
        """The estimator study on the task of ``seed`` at a float64 copy of the current policy."""
        with torch.inference_mode(False), torch.enable_grad():  # tensors made under inference mode take no grad
            env = make_env(self.hparams.env, **{**(self.hparams.env_kwargs or {}), "dtype": torch.float64})
            task = env.tasks_from_seeds(seed.reshape(1).clone())
            policy = copy.deepcopy(self.meta.policy).double()
            rows = estimator_study(
                policy,
                env,
                task,
                self.meta.inner_lr,
                self.meta.gamma,
                tuple(self.hparams.study_sizes),
                self.hparams.study_draws,
                EVAL_SEED,
            )
        out = {f"test/study_grad_norm_N{r.n}": r.grad_norm for r in rows}
        for r in rows:
            out.update({f"test/study_{k}_{r.estimator}_N{r.n}": getattr(r, k) for k in STATS})
        return out

    def _figure(self, curves: torch.Tensor, split: str) -> None:
        """``adaptation_curve``: mean return after 0..k inner steps over the ``split`` tasks (``curves``: (tasks,
        k + 1)), with its 95% band over tasks."""
        with figure(self.trainer, "adaptation_curve", figsize=(4, 3)) as (_, ax):
            mean_band(ax, list(range(curves.shape[1])), curves.numpy(), split, over="tasks", marker="o")
            title = f"{self.hparams.env}: {self.hparams.estimator}"
            ax.set(xlabel="inner steps", ylabel="mean return", title=title, xticks=range(curves.shape[1]))
            ax.legend(fontsize=7)
