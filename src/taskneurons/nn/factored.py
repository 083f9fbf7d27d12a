"""FactoredTaskLinear: task-based neurons whose term weights are shared per input, ``W_k = W diag(a_k)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..formula import Formula, Term, torch_functions
from .init import as_generator, task_linear_init_
from .layer import (
    BASES,
    _check_width,
    _Float64Bases,
    _orthonormal_basis,
    check_bias,
    check_dtype,
    check_input,
    no_autocast,
    reset_inner_constants,
    term_plan,
    term_values,
)
from .mixed import check_linear_inputs, index_buffer

__all__ = ["FactoredTaskLinear", "factored_terms"]


def factored_terms(formula: str | Formula) -> tuple[Term, ...]:
    """The terms a :class:`FactoredTaskLinear` evaluates: ``x`` first, then the formula's other terms."""
    terms = Formula(formula).terms
    return (Term.parse("x"), *(t for t in terms if t.power != 1))


class FactoredTaskLinear(_Float64Bases):
    r"""Task-based neurons with per-input term coefficients: ``y = b + W g(x)``, where

    .. math:: g_i(x_i) = x_i + \sum_k a_{ki} \psi_k(x_i)

    applies the formula to every input variable with coefficients learned per input and shared
    by all neurons of the layer. It is the layer ``y = b + sum_k W_k phi_k(x)`` of
    :class:`TaskLinear` with every term block tied to one matrix, ``W_k = W diag(a_k)``: a neuron
    weighs input ``i`` by ``W[j, i]`` after the input has run through its own copy of the
    discovered formula -- VSR's model ``sum_i g(x_i)``, with ``g`` fitted per input and one
    weight per (neuron, input). It adds ``(K - 1) * in_features`` parameters to ``nn.Linear``'s
    (K terms counting x) where :class:`TaskLinear` multiplies them by K, so under a parameter
    budget it keeps almost the width of the linear-neuron layer.

    The term ``x`` is always present with coefficient 1 (so ``a = 0`` is exactly a linear layer);
    ``psi_k`` are the formula's other terms. Initialisation: ``weight`` and ``bias`` are drawn
    exactly as :class:`torch.nn.Linear` draws them and ``a = 0``, so at initialisation the layer
    *is* ``nn.Linear(in_features, out_features)`` with the same random stream -- output variance
    included -- and training moves the inputs' formulas away from the identity only as far as the
    data ask.

    Parameters
    ----------
    in_features, out_features : int
    formula : str or Formula
        The neuron formula; its coefficients are not used (the layer learns ``a``), its inner
        constants become learnable per input, as in :class:`TaskLinear`.
    bias : bool
    basis : {"terms", "orthonormal"}
        ``"terms"``: ``psi_k = phi_k``, the formula's terms as written. ``"orthonormal"``: the
        terms other than x orthonormalised against 1 and x (and each other) under the uniform
        distribution on [-1, 1] -- the range the estimators scale inputs to -- so that the
        coefficients ``a`` are decorrelated from the linear weights. Same function class. Falls
        back to ``"terms"`` when a term is not finite on [-1, 1] (``log(x)``, ``1/x``).
    linear_inputs : sequence of int
        Inputs that keep ``g_i(x) = x`` (e.g. two-valued columns, on which every term is affine).
    device, dtype
        Factory arguments, as for ``nn.Linear``.

    Shape: ``(*, in_features) -> (*, out_features)``.

    Attributes
    ----------
    weight : Parameter (out_features, in_features)
    bias : Parameter (out_features,) or None
    term_coefficients : Parameter (K - 1, n_task_inputs)
        ``a``: row k-1 weighs ``psi_k`` on each input that takes the formula. Shape ``(0, n)``
        when the formula is ``x`` alone.
    inner_constants : Parameter (n_inner_constants, n_task_inputs) or None
    terms : tuple of Term
        ``x``, then the formula's other terms.
    """

    def __init__(self, in_features: int, out_features: int, formula: str | Formula, bias: bool = True,
                 basis: str = "terms", linear_inputs: Sequence[int] = (), device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if basis not in BASES:
            raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
        factory = {"device": device, "dtype": check_dtype(dtype)}
        bias = check_bias(bias)
        self.in_features = _check_width("in_features", in_features)
        self.out_features = _check_width("out_features", out_features)
        self.formula = Formula(formula)
        self.basis = basis
        self.terms = factored_terms(self.formula)
        self.n_terms = len(self.terms)
        self.linear_inputs = check_linear_inputs(linear_inputs, self.in_features) if linear_inputs else ()
        linear = set(self.linear_inputs)
        task_inputs = tuple(i for i in range(self.in_features) if i not in linear)
        n_task = len(task_inputs)
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.term_coefficients = nn.Parameter(torch.empty(self.n_terms - 1, n_task, **factory))
        n_constants = sum(len(t.constants) for t in self.terms)
        if n_constants:
            self.inner_constants = nn.Parameter(torch.empty(n_constants, n_task, **factory))
        else:
            self.register_parameter("inner_constants", None)
        # None when every input takes the formula: forward then skips the gather and scatter.
        self._task_inputs = task_inputs
        self.register_buffer("task_index", index_buffer(task_inputs, device) if self.linear_inputs else None,
                             persistent=False)
        self._plan = term_plan(self.terms)
        self._functions = torch_functions()
        # term_mixing (K-1, K), re-derived from float64 on dtype changes (_Float64Bases): psi_k = sum_j M[k-1, j] (phi_j - mu_j), phi_0 = x; see _basis.
        mixing, means = _basis(self.terms, basis)
        self._basis64 = {"term_mixing": mixing, "term_means": means}
        # on the weight's device, also under a `with torch.device(...)` context (see TaskLinear)
        self.register_buffer("term_mixing", mixing.to(self.weight.device, self.weight.dtype), persistent=False)
        self.register_buffer("term_means", means.to(self.weight.device, self.weight.dtype), persistent=False)
        self.reset_parameters()

    def _rebuild_constants(self) -> None:
        # after .to(), to_empty() and load_state_dict(assign=True) (see _Float64Bases)
        super()._rebuild_constants()
        if self.task_index is not None:  # a constant: re-derived, not converted (see MixedTaskLinear._apply)
            self.task_index = index_buffer(self._task_inputs, self.weight.device)

    def reset_parameters(self, generator: torch.Generator | int | None = None) -> None:
        """``nn.Linear``'s draws for weight and bias (same random stream; an int seeds a new CPU
        generator), ``a = 0``, inner constants at the formula's values."""
        task_linear_init_(self.weight, self.bias, (1.0,), generator=as_generator(generator))
        with torch.no_grad():
            self.term_coefficients.zero_()
        reset_inner_constants(self.inner_constants, self.terms)

    def input_coefficients(self) -> tuple[Tensor, Tensor]:
        """``(c, s)`` with ``g_i(x) = sum_j c[j, i] phi_j(x) - s[i]`` on the inputs that take the formula.

        ``c`` has shape ``(K, n_task_inputs)``, rows in :attr:`terms` order (row 0 is x's
        coefficient: 1 plus the orthonormal basis' share); ``s`` has shape ``(n_task_inputs,)``.
        """
        coefficients, shift = self._term_space()
        identity = torch.zeros_like(coefficients)
        identity[0] = 1.0
        return coefficients + identity, shift

    def _term_space(self) -> tuple[Tensor, Tensor]:
        # a^T M maps the basis coefficients to the terms (O(K^2 * in), no batch dimension); the
        # centring of psi becomes one constant per input. Outside autocast: in bfloat16 the large,
        # cancelling entries of M would leave g(x) mostly rounding (12 % error).
        with no_autocast(self.term_mixing.device.type):
            coefficients = self.term_mixing.T @ self.term_coefficients      # (K, n_task)
            return coefficients, self.term_means @ coefficients             # (n_task,)

    def transform(self, input: Tensor) -> Tensor:
        """``g(x)``, every input through its own formula: ``(*, in_features) -> (*, in_features)``."""
        check_input(self, input)
        if self.n_terms == 1:
            return input
        x = input if self.task_index is None else input.index_select(-1, self.task_index)
        coefficients, shift = self._term_space()
        values = term_values(x, self._plan, self.inner_constants, self._functions)
        values = torch.stack(values, dim=-2)                                # (*, K, n_task)
        warped = x + (values * coefficients).sum(-2) - shift
        if self.task_index is None:
            return warped
        return input.index_copy(-1, self.task_index, warped)

    def forward(self, input: Tensor) -> Tensor:
        """Apply the layer: ``(*, in_features) -> (*, out_features)``."""
        return F.linear(self.transform(input), self.weight, self.bias)

    def extra_repr(self) -> str:
        basis = f", basis={self.basis}" if self.basis != "terms" else ""
        linear = f", linear_inputs={list(self.linear_inputs)}" if self.linear_inputs else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, formula='{self.formula}', n_terms={self.n_terms}{basis}{linear}")


def _basis(terms: tuple[Term, ...], basis: str) -> tuple[Tensor, Tensor]:
    """``(M, mu)``, float64: ``psi_k = sum_j M[k-1, j] (phi_j - mu_j)`` for the terms after x.

    "terms" (or when the orthonormal basis does not exist): ``M = [0 | I]``, ``mu = 0``.
    "orthonormal": rows 1.. of the inverse Cholesky factor of the terms' covariance on U(-1, 1)
    with x first, so every psi_k is orthogonal to 1, x and the other psi (see
    :func:`~taskneurons.nn.layer._orthonormal_basis`).
    """
    k = len(terms)
    if basis == "orthonormal" and k > 1:
        mixing, means = _orthonormal_basis(terms, centred=True)
        if mixing is not None:
            return mixing[1:].clone(), means
    cpu64 = {"dtype": torch.float64, "device": "cpu"}  # originals stay on the CPU, also under a meta context
    return torch.eye(k, **cpu64)[1:].clone(), torch.zeros(k, **cpu64)
