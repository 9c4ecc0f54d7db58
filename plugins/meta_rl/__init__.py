"""Meta-RL: MAML and SG-MRL (the debiased stochastic-gradient meta-gradient with the score-function term) on
gymnasium task families (Bernoulli bandits, tabular MDPs, 2-D navigation, HalfCheetahVel/Dir with MuJoCo), with
batched tensor environments for speed.

Papers: Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks" (arXiv
1703.03400); Fallah, Georgiev, Mokhtari & Ozdaglar, "On the Convergence Theory of Debiased Model-Agnostic
Meta-Reinforcement Learning" (SG-MRL, OpenReview Xs-vglI4EBi). See README.md.
"""

from framework_plugins import builtin_config_dir
from framework_plugins.meta_rl.datamodule import MetaRLTasks
from framework_plugins.meta_rl.module import MetaRL

CONFIG_DIR = builtin_config_dir("meta_rl")
DEMO_CONFIG = CONFIG_DIR / "quick.yaml"

__all__ = ["MetaRL", "MetaRLTasks"]
