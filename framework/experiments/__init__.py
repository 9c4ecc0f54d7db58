"""Experiments as framework code: experiment files (variants x seeds, tuning, metrics), a runner that fits and tests
every run through the CLI in its own process (locally or through submitit on SLURM), Optuna tuning on validation
data, and reports with paired statistics. Entry points: ``framework experiment run|report`` and ``framework tune``."""
