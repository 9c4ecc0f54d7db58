"""One SG-MRL meta-iteration on 2-D navigation (20 tasks x 20 trajectories x 100 steps, MLP 100x100): batched
tensor env vs the same rollouts through gymnasium's SyncVectorEnv (400 Python envs), in the same process.

    python scripts/bench_meta_rl.py [--threads 2] [--repeats 5] [--peer-repeats 2]

Targets (issue #7): <= 1.5 s per meta-iteration on 2 cores, >= 10x faster than SyncVectorEnv.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from framework_plugins.meta_rl.envs import GymVectorTaskEnv, PointNavEnv, TensorTaskEnv, make_env
from framework_plugins.meta_rl.meta import MetaPolicyGradient
from framework_plugins.meta_rl.policy import MLPPolicy
from framework_plugins.meta_rl.rollout import rollout

N_TASKS, N_TRAJ, HORIZON, HIDDEN = 20, 20, 100, (100, 100)


def meta_iteration(
    env: TensorTaskEnv, meta: MetaPolicyGradient, optimizer: torch.optim.Optimizer, tasks: dict, seed: int
) -> float:
    """Seconds for one meta-iteration: D_in, inner step, D_o, surrogate, backward, Adam step."""
    start = time.perf_counter()
    step = meta.meta_step(env, tasks, N_TRAJ, 1, torch.Generator().manual_seed(seed))
    optimizer.zero_grad()
    (-step.surrogate / N_TASKS).backward()
    optimizer.step()
    return time.perf_counter() - start


def rollout_time(env: TensorTaskEnv, policy: MLPPolicy, tasks: dict) -> float:
    start = time.perf_counter()
    rollout(env, policy, policy.params(), tasks, N_TRAJ, torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer-repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tensor_env = make_env("point", horizon=HORIZON)
    gym_env = GymVectorTaskEnv(PointNavEnv, tensor_env)
    policy = MLPPolicy(2, 2, False, HIDDEN)
    meta = MetaPolicyGradient(policy, inner_lr=0.1, gamma=0.99, gae_lambda=0.997, baseline="linear")
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    tasks = tensor_env.sample_tasks(N_TASKS, torch.Generator().manual_seed(1))
    meta_iteration(tensor_env, meta, optimizer, tasks, 0)  # warm-up
    ours = [meta_iteration(tensor_env, meta, optimizer, tasks, i) for i in range(args.repeats)]
    ours_rollout = statistics.median(rollout_time(tensor_env, policy, tasks) for _ in range(args.repeats))
    peer = [meta_iteration(gym_env, meta, optimizer, tasks, i) for i in range(args.peer_repeats)]
    peer_rollout = statistics.median(rollout_time(gym_env, policy, tasks) for _ in range(args.peer_repeats))
    t_ours, t_peer = statistics.median(ours), statistics.median(peer)
    print(
        f"threads={args.threads} torch={torch.__version__}; {N_TASKS} tasks x {N_TRAJ} traj x {HORIZON} steps, "
        f"MLP {HIDDEN}"
    )
    print(f"tensor env:     meta-iteration {t_ours:.3f} s (median of {args.repeats}), one rollout {ours_rollout:.3f} s")
    print(
        f"SyncVectorEnv:  meta-iteration {t_peer:.3f} s (median of {args.peer_repeats}), "
        f"one rollout {peer_rollout:.3f} s"
    )
    print(
        f"ratio (SyncVectorEnv / tensor env): meta-iteration {t_peer / t_ours:.1f}x, "
        f"rollout {peer_rollout / ours_rollout:.1f}x"
    )


if __name__ == "__main__":
    main()
