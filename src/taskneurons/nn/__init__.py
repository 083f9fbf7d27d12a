"""PyTorch modules of task-based neurons.

    from taskneurons.nn import TaskLinear, TaskMLP
    layer = TaskLinear(16, 8, "0.068*x**3 + 0.15*x + 0.76")       # y = b + W3 x**3 + W1 x
    net = TaskMLP(16, [64, 64], 1, "x**2 + x", activation="relu", output_formula="x")
"""

from __future__ import annotations

from .factored import FactoredTaskLinear
from .init import task_linear_init_, term_init_scales, term_second_moment
from .layer import TaskLinear, layer_parameter_count
from .mixed import MixedTaskLinear
from .mlp import (
    ACTIVATIONS,
    NORMS,
    TERM_WEIGHTS,
    TaskMLP,
    count_parameters,
    make_activation,
    match_parameters,
)

__all__ = [
    "TaskLinear",
    "TaskMLP",
    "MixedTaskLinear",
    "FactoredTaskLinear",
    "count_parameters",
    "match_parameters",
    "layer_parameter_count",
    "make_activation",
    "ACTIVATIONS",
    "NORMS",
    "TERM_WEIGHTS",
    "term_second_moment",
    "term_init_scales",
    "task_linear_init_",
]
