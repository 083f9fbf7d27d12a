"""MixedTaskLinear: task-based neurons on some inputs, a plain linear map on the others."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import DataError
from ..formula import Formula
from .init import _draw, as_generator
from .layer import TaskLinear, _check_width

__all__ = ["MixedTaskLinear", "check_linear_inputs", "index_buffer"]


def check_linear_inputs(linear_inputs: Sequence[int], in_features: int) -> tuple[int, ...]:
    """Sorted, distinct input indices in ``[0, in_features)`` that leave at least one input for the formula."""
    try:
        items = list(linear_inputs)
        if any(isinstance(i, bool) for i in items):
            raise TypeError
        # operator.index takes ints and the items of integer arrays, but refuses 1.9 and "1"
        indices = sorted({operator.index(i) for i in items})
    except TypeError:
        raise ValueError(f"linear_inputs must be a sequence of integer input indices, got {linear_inputs!r}") from None
    if indices and (indices[0] < 0 or indices[-1] >= in_features):
        raise ValueError(f"linear_inputs must index the {in_features} inputs (0..{in_features - 1}), got {indices}")
    if len(indices) == in_features:
        raise ValueError(f"linear_inputs lists all {in_features} inputs, which leaves none for the formula; "
                         "use formula 'x' (an ordinary linear layer) instead")
    return tuple(indices)


def index_buffer(indices: Sequence[int], device: Any) -> Tensor:
    """The long tensor of input ``indices`` that a layer's ``index_select`` reads, on ``device``."""
    return torch.tensor(indices, dtype=torch.long, device=device)


class MixedTaskLinear(nn.Module):
    """``y = b + sum_k W_k phi_k(x_T) + V x_L``: the formula's terms on the inputs ``T``, only the
    linear term on the inputs ``L`` (``linear_inputs``).

    Made for inputs that take two values (one-hot columns, flags). On such an input every term is
    exactly affine, ``phi(x) = a + c*x`` (two points fix a line), so the K-1 other weight blocks
    of a :class:`TaskLinear` would only repeat the linear one: this layer spends those parameters
    elsewhere. On the remaining inputs it is a :class:`TaskLinear` (attribute ``task``, which owns
    the bias); the linear part is ``nn.Linear(len(L), out, bias=False)`` (attribute ``linear``),
    initialised like ``nn.Linear(in_features, out)``, so that at init the output variance is at
    most about twice that of ``nn.Linear`` on all inputs.

    Parameters
    ----------
    in_features, out_features : int
    formula : str or Formula
    linear_inputs : sequence of int
        Indices of the inputs that take only the linear term (at least one input must be left).
    bias, basis, device, dtype
        As for :class:`TaskLinear`.

    Shape: ``(*, in_features) -> (*, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, formula: str | Formula, linear_inputs: Sequence[int],
                 bias: bool = True, basis: str = "terms", device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_features = _check_width("in_features", in_features)
        self.out_features = _check_width("out_features", out_features)
        self.linear_inputs = check_linear_inputs(linear_inputs, self.in_features)
        linear = set(self.linear_inputs)
        task_inputs = tuple(i for i in range(self.in_features) if i not in linear)
        factory = {"device": device, "dtype": dtype}
        self.task = TaskLinear(len(task_inputs), self.out_features, formula, bias=bias, basis=basis, **factory)
        self.linear = nn.Linear(len(self.linear_inputs), self.out_features, bias=False, **factory)
        # Index buffers move with .to(device); they are fixed by the constructor, so not saved.
        self._task_inputs = task_inputs
        self.register_buffer("task_index", index_buffer(task_inputs, device), persistent=False)
        self.register_buffer("linear_index", index_buffer(self.linear_inputs, device), persistent=False)
        # load_state_dict(assign=True) replaces the parameters, not these unsaved buffers: move them along
        # (a post hook: it runs after the parts, whose weights tell where the parameters now are).
        self.register_load_state_dict_post_hook(_index_buffers_after_load)
        self.reset_parameters()

    def _apply(self, fn, *args, **kwargs):
        # The index buffers are constants: re-derive them rather than let fn convert them, which
        # for to_empty() (from the meta device) would leave them uninitialised.
        super()._apply(fn, *args, **kwargs)
        self._rebuild_index_buffers(self.task_index.device)
        return self

    def _rebuild_index_buffers(self, device: Any) -> None:
        self.task_index = index_buffer(self._task_inputs, device)
        self.linear_index = index_buffer(self.linear_inputs, device)

    @property
    def formula(self) -> Formula:
        return self.task.formula

    @property
    def n_terms(self) -> int:
        return self.task.n_terms

    def reset_parameters(self, generator: torch.Generator | int | None = None) -> None:
        """Re-draw both parts: the TaskLinear as :meth:`TaskLinear.reset_parameters`, the linear
        weights from U(-1/sqrt(in_features), 1/sqrt(in_features)) as ``nn.Linear`` would. An int
        seeds one new CPU generator for both."""
        generator = as_generator(generator)
        self.task.reset_parameters(generator)
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            _draw(self.linear.weight, generator, lambda t: t.uniform_(-bound, bound, generator=generator))

    def forward(self, input: Tensor) -> Tensor:
        """Apply the layer: ``(*, in_features) -> (*, out_features)``."""
        if input.dim() == 0 or input.shape[-1] != self.in_features:
            raise DataError(f"{type(self).__name__} expects inputs of shape (*, {self.in_features}), "
                            f"got {tuple(input.shape)}; pass {self.in_features} features in the last "
                            "dimension or build the layer with the right in_features")
        return self.task(input.index_select(-1, self.task_index)) + \
            self.linear(input.index_select(-1, self.linear_index))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"linear_inputs={list(self.linear_inputs)}")


def _index_buffers_after_load(module: MixedTaskLinear, incompatible_keys: Any) -> None:
    """load_state_dict post hook of MixedTaskLinear: index buffers where the task part's weight now is."""
    module._rebuild_index_buffers(module.task.weight.device)
