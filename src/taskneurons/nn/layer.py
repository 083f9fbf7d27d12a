"""TaskLinear: a layer of task-based neurons, ``y = b + sum_k W_k phi_k(x)``, as one fused matmul."""

from __future__ import annotations

import contextlib
import operator
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from ..formula import Formula, Term, evaluate_program, power_chain, torch_functions
from .init import as_generator, task_linear_init_, term_init_scales

__all__ = ["TaskLinear", "layer_parameter_count", "BASES"]

#: How a TaskLinear parameterises the span of its terms (see ``TaskLinear``'s ``basis``).
BASES = ("terms", "orthonormal")


class _Float64Bases(nn.Module):
    """Keeps basis buffers exact across dtype changes: ``self._basis64`` maps buffer names to their
    float64 originals, from which every ``.to()``, ``.double()``, ``.cuda()`` ... re-derives them."""

    _basis64: dict[str, Tensor]

    def _apply(self, fn, *args, **kwargs):
        # Converting the buffers as stored would give a layer built in float32 and converted to
        # float64 float32-rounded bases, not what a layer built in float64 computes.
        super()._apply(fn, *args, **kwargs)
        self._rebuild_constants()
        return self

    def _rebuild_constants(self) -> None:
        """Re-derive the constant buffers on the weight's device and in its dtype."""
        for name, value in self._basis64.items():
            setattr(self, name, value.to(self.weight.device, self.weight.dtype))

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        # load_state_dict(assign=True), e.g. into a model built on the meta device, replaces the
        # parameters but not these unsaved buffers, which would stay behind on the old device.
        self._rebuild_constants()


def reset_inner_constants(inner_constants: Tensor | None, terms: tuple[Term, ...]) -> None:
    """Set row j of ``inner_constants`` (n_constants, n_inputs) to the j-th inner constant of ``terms``."""
    if inner_constants is None:
        return
    values = [c for t in terms for c in t.constants]
    with torch.no_grad():
        column = torch.tensor(values, dtype=inner_constants.dtype, device="cpu")
        inner_constants.copy_(column[:, None].expand(-1, inner_constants.shape[1]))


class TaskLinear(_Float64Bases):
    r"""Task-based neurons: ``y = b + sum_k W_k phi_k(x)``, the terms applied elementwise.

    The terms ``phi_1..phi_K`` come from a formula (``"2*x**5 - 3*x**3 + x"`` has the terms
    ``x**5, x**3, x``); its coefficients and constant are *not* used as values -- each output
    neuron learns its own weights ``W_k`` and bias -- but its inner constants (the 1.7 of
    ``sin(1.7*x)``) become learnable parameters, one per input feature, initialised at the
    formula's value. ``formula="x"`` is exactly :class:`torch.nn.Linear`: same parameter names and
    shapes, same initial distribution, identical outputs.

    Computation: the K term values are computed once and concatenated into a
    ``(*, K*in_features)`` tensor (powers by reuse, x**5 = x**3 * x**2), then one ``F.linear``
    applies ``weight = [W_1 | ... | W_K]``. No Python branches on data, so the layer works under
    ``torch.compile(fullgraph=True)``.

    Initialisation (:meth:`reset_parameters`): ``nn.Linear``'s Kaiming-uniform draw on the
    ``(out, K*in)`` weight (bound ``1/sqrt(K*in)``), then block ``W_k`` divided by
    ``sqrt(E[phi_k(x)**2])`` for ``x ~ N(0, 1)`` (1 for x, sqrt(3) for x**2, sqrt(945) for
    x**5). With ``basis="terms"``, on standard-normal inputs the output variance at init then
    equals ``nn.Linear``'s for any K and any terms of finite second moment (measured in the tests:
    within 20 %). ``basis="orthonormal"`` is normalised on U(-1, 1) instead, where its output
    variance matches ``nn.Linear``'s for every K (on N(0, 1) its high powers start far larger).
    On inputs in [-1, 1] ``basis="terms"`` polynomial layers
    start smaller than ``nn.Linear`` (0.31x for ``2*x**5 - 3*x**3 + 3*x**2 + x + 1``, 0.17x for
    all powers up to 7), which keeps deep stacks of high powers finite at init; other terms stay
    within a factor 2 (1.8x for ``x**3 + sin(1.7*x) + exp(x/11) + tanh(2*x) + x``). The bias is
    ``U(-1/sqrt(K*in), 1/sqrt(K*in))``. See :mod:`taskneurons.nn.init`.

    Parameters
    ----------
    in_features, out_features : int
        Input and output widths (>= 1).
    formula : str or Formula
        The neuron formula in the one symbol ``x``.
    bias : bool
        Learn an additive bias (the formula's constant term plays this role).
    basis : {"terms", "orthonormal"}
        ``"terms"`` learns one weight matrix per term, as written. ``"orthonormal"`` learns the
        same function class through an orthonormal basis of the terms' span (orthogonal to the
        constants too) under the uniform distribution on [-1, 1] -- the range the estimators
        scale inputs to. Powers such as x, x**3, x**5 are 90 %+ correlated there; decorrelating
        them conditions gradient descent much better without changing what the layer can
        represent or its parameter count. ``weight`` then holds the basis coefficients;
        :meth:`term_parameters` gives the weights on the terms themselves. The layer keeps the
        raw terms instead (``basis_mixing is None``) when a term is not finite on [-1, 1]
        (``log(x)``, ``1/x``) or the terms are nearly linearly dependent there.
    device, dtype
        Factory arguments for the parameters, as for ``nn.Linear``.

    Shape
    -----
    - input: ``(*, in_features)``
    - output: ``(*, out_features)``

    Numerics
    --------
    Like ``nn.Linear``, the layer does not inspect values: checking them in ``forward`` would cost a
    device sync per call and break ``torch.compile`` graphs. So inputs whose powers exceed the
    dtype's range give IEEE results: ``x**7`` of ``1e6`` is 1e42, ``inf`` in float32 (max 3.4e38;
    float64 holds it), and the matmul then mixes ``+inf`` and ``-inf`` into ``NaN`` outputs.
    The guards are around the layer: the estimators scale inputs to [-1, 1] and clip new ones
    (``input_clip``), :func:`~taskneurons.training.fit_module` raises
    :class:`~taskneurons.errors.NumericalError` when the loss stays non-finite, and the
    estimators raise it rather than return a NaN prediction. Used on its own, feed the layer
    inputs of about unit scale (or float64). ``basis="orthonormal"`` is built for inputs in
    [-1, 1]: on larger inputs its high-degree basis functions grow faster than the raw powers.
    In float16/bfloat16 and under autocast an orthonormal layer applies its weights to the basis
    functions computed in float32 (:meth:`orthonormal_features`), as accurate as ``nn.Linear``
    under autocast. A layer *converted* to bfloat16 also rounds its inner constants (1.7 becomes
    1.703), and the basis amplifies that change (errors near 10 % for ``sin(1.7*x)``); keep such
    layers in float32 and use autocast for mixed precision.

    Attributes
    ----------
    weight : Parameter of shape (out_features, n_terms * in_features)
        Term-major blocks: ``weight[:, k*in:(k+1)*in]`` is ``W_k`` (see :meth:`term_weight`).
    bias : Parameter of shape (out_features,) or None
    inner_constants : Parameter of shape (n_inner_constants, in_features) or None
        Row j is the j-th inner constant of the formula, in term order, one value per input
        feature; ``None`` when the terms have no inner constants (e.g. polynomials).
    formula : Formula
    terms : tuple of Term
    n_terms : int

    Examples
    --------
    >>> layer = TaskLinear(8, 4, "0.068*x**3 + 0.15*x + 0.76")
    >>> layer(torch.randn(32, 8)).shape
    torch.Size([32, 4])
    """

    in_features: int
    out_features: int
    n_terms: int

    def __init__(self, in_features: int, out_features: int, formula: str | Formula, bias: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None, basis: str = "terms") -> None:
        super().__init__()
        if basis not in BASES:
            raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
        factory = {"device": device, "dtype": check_dtype(dtype)}
        bias = check_bias(bias)
        self.basis = basis
        self.in_features = _check_width("in_features", in_features)
        self.out_features = _check_width("out_features", out_features)
        self.formula = Formula(formula)
        self.terms: tuple[Term, ...] = self.formula.terms
        self.n_terms = len(self.terms)
        self.weight = nn.Parameter(torch.empty(self.out_features, self.n_terms * self.in_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        n_constants = sum(len(t.constants) for t in self.terms)
        if n_constants:
            self.inner_constants = nn.Parameter(torch.empty(n_constants, self.in_features, **factory))
        else:
            self.register_parameter("inner_constants", None)
        self._build_plan()
        # "orthonormal": the layer learns coefficients of an orthonormal basis of the same span
        # (see _orthonormal_basis); the weights are mapped back to the terms in forward.
        # Without a bias the basis must not be centred: the map back would need a constant term.
        mixing, means = _orthonormal_basis(self.terms, centred=bias) \
            if basis == "orthonormal" and not self._identity else (None, None)
        # On the weight's device: also under a `with torch.device(...)` context, which device=None
        # follows for the parameters but not for buffers made from the float64 CPU originals.
        device, buffer_dtype = self.weight.device, self.weight.dtype
        self.register_buffer("basis_mixing", None if mixing is None else mixing.to(device, buffer_dtype),
                             persistent=False)
        self.register_buffer("basis_means", None if means is None else means.to(device, buffer_dtype),
                             persistent=False)
        # For narrow layers the map back to the terms is one small matmul with kron(A, I_in), plus a
        # matvec for the bias shift: 2 ops instead of einsum's ~10 per step, which halves the step
        # time of a small first layer. Above _KRON_MAX_WIDTH the (K*in)^2 matrix costs more than it saves.
        use_kron = mixing is not None and self.n_terms * self.in_features <= _KRON_MAX_WIDTH
        # float64 originals live on the CPU even under a torch.device('meta') context (see _Float64Bases)
        kron = torch.kron(mixing, torch.eye(self.in_features, dtype=mixing.dtype, device="cpu")) \
            if use_kron else None
        self.register_buffer("basis_kron", None if kron is None else kron.to(device, buffer_dtype),
                             persistent=False)
        shift = kron @ means.repeat_interleave(self.in_features) if use_kron else None
        self.register_buffer("basis_shift", None if shift is None else shift.to(device, buffer_dtype),
                             persistent=False)
        # float64 originals of those buffers, from which _apply re-derives them on a dtype change
        self._basis64 = {name: value for name, value in (("basis_mixing", mixing), ("basis_means", means),
                                                         ("basis_kron", kron), ("basis_shift", shift))
                         if value is not None}
        self.init_scales: tuple[float, ...] = (term_init_scales(self.terms) if mixing is None
                                               else (3.0 ** -0.5,) * self.n_terms)
        self.reset_parameters()

    # -- set-up -------------------------------------------------------------------------------
    def _build_plan(self) -> None:
        """Fix, once, the order of operations forward runs (so forward has no decisions to make)."""
        self._plan = term_plan(self.terms)
        self._identity = self.n_terms == 1 and self.terms[0].power == 1
        self._functions = torch_functions()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw new weights and bias (see the class docstring) and reset the inner constants.

        Parameters
        ----------
        generator : torch.Generator, int or None
            Random stream for reproducible initialisation without global seeding (an int seeds a
            new CPU generator, as for TaskMLP); ``None`` uses PyTorch's global generator, exactly
            like ``nn.Linear.reset_parameters``.
        """
        task_linear_init_(self.weight, self.bias, self.init_scales, generator=as_generator(generator))
        reset_inner_constants(self.inner_constants, self.terms)

    # -- computation --------------------------------------------------------------------------
    def forward(self, input: Tensor) -> Tensor:
        """Apply the layer: ``(*, in_features) -> (*, out_features)``."""
        if self.basis_mixing is None:
            return F.linear(self.expand(input), self.weight, self.bias)
        if input.dtype in _HALF_DTYPES or autocast_enabled(input.device.type):
            return F.linear(self.orthonormal_features(input), self.weight, self.bias)
        weight, bias = self.term_parameters()
        return F.linear(self.expand(input), weight, bias)

    def orthonormal_features(self, input: Tensor) -> Tensor:
        """``psi(x) = A (phi(x) - mu)``, the basis the weights of ``basis="orthonormal"`` apply to:
        ``(*, in) -> (*, K*in)``, computed in float32 (or float64) and returned in the input's dtype.

        ``forward`` maps the weights back to the terms instead (cheaper), but in float16/bfloat16
        or under autocast that map's large, cancelling term weights would turn the output into
        rounding noise (errors of 10-35 %); the features psi are of unit scale, so a low-precision
        matmul on them is as accurate as ``nn.Linear``'s.
        """
        check_input(self, input)
        if self.basis_mixing is None:
            raise ValueError("orthonormal_features needs a layer with basis='orthonormal' that kept its basis "
                             "(see the basis parameter)")
        dtype = torch.promote_types(input.dtype, torch.float32)
        x = input.to(dtype)
        constants = None if self.inner_constants is None else self.inner_constants.to(dtype)
        mixing, means = (self._basis64[name].to(input.device, dtype) for name in ("basis_mixing", "basis_means"))
        with no_autocast(input.device.type):
            terms = torch.stack(term_values(x, self._plan, constants, self._functions), dim=-2)  # (*, K, in)
            psi = torch.einsum("kj,...ji->...ki", mixing, terms - means[:, None])
        return psi.flatten(-2).to(input.dtype)

    def term_parameters(self) -> tuple[Tensor, Tensor | None]:
        """Weight ``(out, K*in)`` and bias on the formula's own terms.

        With ``basis="terms"`` these are the parameters themselves. With
        ``basis="orthonormal"`` the parameters hold coefficients of the orthonormal functions
        ``psi_k = sum_j A_kj (phi_j - mu_j)``; this maps them back to the terms,
        ``W_j = sum_k W'_k A_kj`` and ``b = b' - sum_j mu_j W_j 1`` -- O(out*in*K^2), no batch
        dimension, so far cheaper than the matmul it feeds.
        """
        if self.basis_mixing is None:
            return self.weight, self.bias
        # Without a bias the basis is not centred (mu = 0, see _orthonormal_basis): no shift.
        if self.basis_kron is not None:
            weight = self.weight @ self.basis_kron
            return weight, None if self.bias is None else self.bias - self.weight @ self.basis_shift
        blocks = self.weight.view(self.out_features, self.n_terms, self.in_features)
        weight = torch.einsum("okn,kj->ojn", blocks, self.basis_mixing)
        bias = None if self.bias is None else self.bias - torch.einsum("ojn,j->o", weight, self.basis_means)
        return weight.reshape(self.out_features, -1), bias

    def expand(self, input: Tensor) -> Tensor:
        """The concatenated term values ``[phi_1(x), ..., phi_K(x)]``: ``(*, in) -> (*, K*in)``.

        Raises
        ------
        DataError
            When the last dimension of ``input`` is not ``in_features``, or ``input`` is not of
            the parameters' floating dtype (outside autocast) -- see :func:`check_input`.
        """
        check_input(self, input)
        if self._identity:
            return input
        return torch.cat(term_values(input, self._plan, self.inner_constants, self._functions), dim=-1)

    # -- views and helpers --------------------------------------------------------------------
    def _term_index(self, k: int) -> int:
        if not -self.n_terms <= k < self.n_terms:
            raise IndexError(f"term index {k} out of range for {self.n_terms} terms")
        return k % self.n_terms

    def term_weight(self, k: int) -> Tensor:
        """``W_k``, the ``(out_features, in_features)`` block of :attr:`weight` for term ``k`` (a view)."""
        k = self._term_index(k)
        return self.weight[:, k * self.in_features:(k + 1) * self.in_features]

    def term_constants(self, k: int) -> Tensor | None:
        """Inner constants of term ``k``, shape ``(n_constants_k, in_features)`` (a view), or None."""
        _, _, start, stop = self._plan.terms[self._term_index(k)]
        if start == stop or self.inner_constants is None:
            return None
        return self.inner_constants[start:stop]

    @staticmethod
    def count_parameters(in_features: int, out_features: int, formula: str | Formula,
                         bias: bool = True) -> int:
        """Number of learnable scalars of ``TaskLinear(in_features, out_features, formula, bias)``."""
        return layer_parameter_count(in_features, out_features, formula, bias)

    def extra_repr(self) -> str:
        basis = f", basis={self.basis}" if self.basis != "terms" else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, formula='{self.formula}', n_terms={self.n_terms}{basis}")


def check_input(layer: nn.Module, input: Tensor) -> None:
    """Refuse an input a task layer would compute wrongly, with what to do; reads only metadata.

    The width must be ``layer.in_features``. The dtype must be floating and, outside autocast,
    the dtype of ``layer.weight``: the terms are computed in the input's dtype before the matmul,
    so an int64 ``x**7`` would wrap around and a float16 ``x**3`` overflow at 40 where
    ``nn.Linear`` refuses the mismatch. Only shapes and dtypes are read, so under
    ``torch.compile`` these checks become guards, not graph breaks (with ``fullgraph=True`` a
    wrong width surfaces as torch's compile error quoting the message).
    """
    name = type(layer).__name__
    if input.dim() == 0 or input.shape[-1] != layer.in_features:
        raise DataError(f"{name} expects inputs of shape (*, {layer.in_features}), got {tuple(input.shape)}; "
                        f"pass {layer.in_features} features in the last dimension or build the layer with the "
                        "right in_features")
    dtype = layer.weight.dtype
    if not input.is_floating_point():
        raise DataError(f"{name} expects floating-point inputs, got {input.dtype}; convert them with "
                        f"x.to({dtype})")
    if input.dtype != dtype and not autocast_enabled(input.device.type):
        raise DataError(f"{name} has {dtype} parameters but got a {input.dtype} input; convert the input "
                        f"(x.to({dtype})) or the layer (layer.to({input.dtype})), or run under torch.autocast")


def autocast_enabled(device_type: str) -> bool:
    """``torch.is_autocast_enabled`` that answers False for a device without autocast, such as meta,
    where asking raises: a forward on meta tensors infers shapes (FLOP counters, lazy set-ups)."""
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)


def no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """``torch.autocast(device_type, enabled=False)``, or nothing on a device without autocast (meta)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def layer_parameter_count(in_features: int, out_features: int, formula: str | Formula,
                          bias: bool = True) -> int:
    """Learnable scalars of a TaskLinear, without building it.

    ``out*K*in`` weights + ``out`` biases + ``in`` per inner constant of the formula's terms.
    """
    in_features = _check_width("in_features", in_features)
    out_features = _check_width("out_features", out_features)
    formula = Formula(formula)
    bias = check_bias(bias)
    n_constants = sum(len(t.constants) for t in formula.terms)
    return out_features * formula.n_terms * in_features + (out_features if bias else 0) + n_constants * in_features


def check_bias(bias: Any) -> bool:
    """``bias`` as a bool; refuses other values, which truthiness would read wrongly (``"False"``)."""
    if not isinstance(bias, bool | np.bool_):
        raise ValueError(f"bias must be True or False, got {bias!r}")
    return bool(bias)


def check_dtype(dtype: Any) -> torch.dtype | None:
    """A floating-point ``dtype`` factory argument, or None: terms and inner constants need one."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype such as torch.float32 or torch.float64 "
                         f"(or None for the default), got {dtype!r}")
    return dtype


def _check_width(name: str, value: Any) -> int:
    # operator.index accepts int and numpy integers but refuses floats such as 3.0 and strings.
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    value = operator.index(value)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}; a layer needs at least one "
                         "input and one output feature")
    return value


class TermPlan(NamedTuple):
    """How a layer evaluates its terms, fixed once so that forward has no decisions to make."""

    #: products ``(k, a, b)``: x**k = x**a * x**b, in order
    powers: tuple[tuple[int, int, int], ...]
    #: per term ``(power or None, program, first inner constant, last + 1)``
    terms: tuple[tuple[int | None, tuple, int, int], ...]
    #: the terms' degrees when every term is a power (polynomial layers skip the term loop), else None
    degrees: tuple[int, ...] | None


def term_plan(terms: tuple[Term, ...]) -> TermPlan:
    """The order of operations that evaluates ``terms`` (see :func:`term_values`), fixed once per layer."""
    degrees = [t.power for t in terms if t.power is not None]
    # Record the products power_chain performs by running it on a recording stand-in.
    steps: list[tuple[int, int, int]] = []
    power_chain(_PowerRecorder(1, steps), degrees)
    plan = []
    start = 0
    for term in terms:
        stop = start + len(term.constants)
        plan.append((term.power, term.program, start, stop))
        start = stop
    return TermPlan(tuple(steps), tuple(plan), tuple(degrees) if len(degrees) == len(terms) else None)


def term_values(input: Tensor, plan: TermPlan, inner_constants: Tensor | None, functions) -> list[Tensor]:
    """``[phi_1(x), ..., phi_K(x)]``, each shaped like ``input``, from a :func:`term_plan`.

    Powers by reuse (x**5 = x**3 * x**2); other terms run their program with their inner
    constants, rows ``start:stop`` of ``inner_constants`` (shape ``(n_constants, in)``).
    """
    powers = {1: input}
    for k, a, b in plan.powers:
        powers[k] = powers[a] * powers[b]
    if plan.degrees is not None:
        return [powers[k] for k in plan.degrees]
    constants = inner_constants.unbind(0) if inner_constants is not None else ()
    pieces = []
    for power, program, start, stop in plan.terms:
        if power is not None:
            pieces.append(powers[power])
        else:
            pieces.append(evaluate_program(program, input, constants[start:stop], functions))
    return pieces


#: Input dtypes in which TaskLinear with basis="orthonormal" applies its weights to the basis itself.
_HALF_DTYPES = (torch.float16, torch.bfloat16)

#: Largest n_terms * in_features for which TaskLinear maps orthonormal weights back with one kron matmul.
_KRON_MAX_WIDTH = 512


# Float32 keeps about 7 digits; a basis that amplifies the terms' rounding 1e4 times keeps 3 of
# them. The formulas VSR found for the paper's 14 datasets stay below 400.
_MAX_BASIS_AMPLIFICATION = 1e4


def _orthonormal_basis(terms: tuple[Term, ...], centred: bool = True) -> tuple[Tensor, Tensor] | tuple[None, None]:
    """``(A, mu)`` with ``psi = A (phi - mu)`` orthonormal under x ~ U(-1, 1) (float64, CPU).

    ``mu_j = E[phi_j]`` and ``A = L^{-1}`` for the Cholesky factor ``L`` of the covariance of
    the terms (initial inner constants), by 64-node Gauss-Legendre quadrature -- exact for
    polynomials up to degree 127. ``centred=False`` (for layers without a bias): ``mu = 0`` and
    ``L`` factors the second moments ``E[phi phi^T]``, so the basis spans exactly the terms' span.
    Returns ``(None, None)`` when a term is not finite on [-1, 1] (log(x), sqrt(x), 1/x; the
    end points and 0 are checked besides the nodes) or the terms are (nearly) linearly dependent
    there; the layer then keeps the terms. "Nearly": computing ``psi`` would amplify the rounding
    of the terms more than ``_MAX_BASIS_AMPLIFICATION`` times -- with x, x**2, sin(1.7*x) and
    exp(x/11) the mixing coefficients reach 1e6, and in float32 ``psi`` would be mostly rounding.
    """
    nodes, weights = np.polynomial.legendre.leggauss(64)
    weights = weights / 2.0  # the uniform density on [-1, 1]
    probes = np.concatenate([nodes, [-1.0, 0.0, 1.0]])
    values = np.stack([np.asarray(t.evaluate(probes), dtype=float) * np.ones_like(probes) for t in terms])
    with np.errstate(all="ignore"):
        finite = np.isfinite(values).all()
    if not finite:
        return None, None
    values = values[:, :len(nodes)]
    means = values @ weights if centred else np.zeros(len(terms))
    centred_values = values - means[:, None]
    covariance = (centred_values * weights) @ centred_values.T
    try:
        lower = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        return None, None
    mixing = np.linalg.inv(lower)
    # |rounding of psi_k| <= eps * sum_j |A_kj| |phi_j - mu_j|, while psi_k has unit variance
    amplification = (np.abs(mixing) @ np.abs(centred_values).max(axis=1)).max()
    if not np.isfinite(amplification) or amplification > _MAX_BASIS_AMPLIFICATION:
        return None, None
    return torch.from_numpy(mixing), torch.from_numpy(means)


class _PowerRecorder:
    """Stands in for a tensor in :func:`power_chain`, recording each product as ``(k, a, b)``."""

    __slots__ = ("k", "steps")

    def __init__(self, k: int, steps: list[tuple[int, int, int]]):
        self.k = k
        self.steps = steps

    def __mul__(self, other: _PowerRecorder) -> _PowerRecorder:
        product = _PowerRecorder(self.k + other.k, self.steps)
        self.steps.append((product.k, self.k, other.k))
        return product

