"""Optimizer tools any model can use: named parameter groups (decay / no-decay, routable by name and shape)."""

from framework.optim.param_groups import default_no_decay, named_param_groups

__all__ = ["default_no_decay", "named_param_groups"]
