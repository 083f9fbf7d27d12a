"""TaskMLP: multilayer perceptrons of task-based neurons, and sizing helpers for TN-vs-LN comparisons."""

from __future__ import annotations

import contextlib
import copy
import math
import operator
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import NumericalError
from ..formula import Formula
from .factored import FactoredTaskLinear, factored_terms
from .init import as_generator
from .layer import BASES, TaskLinear, _check_width, check_bias
from .mixed import MixedTaskLinear, check_linear_inputs

__all__ = ["TaskMLP", "ACTIVATIONS", "activation_name", "NORMS", "TERM_WEIGHTS", "make_activation", "count_parameters",
           "match_parameters"]

#: Activation names TaskMLP understands (case-insensitive) -> module class.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}

#: Normalisations TaskMLP can insert between hidden layers (see TaskMLP's ``norm``).
NORMS = (None, "layer")

#: How task-based layers weigh their terms (see TaskMLP's ``term_weights``).
TERM_WEIGHTS = ("per_neuron", "per_input")

FormulaSpec = str | Formula | Mapping[str, Any]

_LINEAR = Formula("x")


def activation_name(text: str) -> str | None:
    """The :data:`ACTIVATIONS` key a spelling stands for, or None: case, spaces, ``-`` and ``_`` do not
    matter ("ReLU", "leaky-relu", "LeakyReLU" and "leaky_relu" are all names fit and load accept)."""
    key = text.strip().lower().replace("-", "").replace("_", "")
    return next((name for name in ACTIVATIONS if name.replace("_", "") == key), None)


def make_activation(spec: str | type[nn.Module] | nn.Module) -> nn.Module:
    """A fresh activation module from a name in :data:`ACTIVATIONS`, a module class or an instance.

    A class is instantiated without arguments; an instance is deep-copied, so layers never share
    an activation's parameters (e.g. ``nn.PReLU``'s slope).
    """
    if isinstance(spec, str):
        key = activation_name(spec)
        if key is None:
            raise ValueError(f"unknown activation {spec!r}; use one of {', '.join(ACTIVATIONS)}, an "
                             "nn.Module class or an nn.Module instance")
        return ACTIVATIONS[key]()
    if isinstance(spec, type) and issubclass(spec, nn.Module):
        try:
            return spec()
        except TypeError as error:  # e.g. nn.Threshold, which needs its threshold and value
            raise ValueError(f"activation class {spec.__name__} cannot be built without arguments ({error}); "
                             f"pass an instance such as {spec.__name__}(...) instead") from None
    if isinstance(spec, nn.Module):
        return copy.deepcopy(spec)
    raise ValueError(f"activation must be a name ({', '.join(ACTIVATIONS)}), an nn.Module class or an "
                     f"nn.Module instance, got {type(spec).__name__}")


def _forked_rng(device: Any) -> contextlib.AbstractContextManager:
    """A fork of the CPU generator, and of the CUDA device's when ``device`` names one."""
    device = None if device is None else torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device is not None and device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)


def _as_hidden(hidden: int | Sequence[int]) -> tuple[int, ...]:
    if getattr(hidden, "ndim", 0) >= 1:  # numpy arrays and tensors of widths, which are no Sequence
        hidden = hidden.tolist()
    if hasattr(hidden, "__index__") and not isinstance(hidden, bool):  # int, numpy integers
        return (_check_width("hidden width", hidden),)
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence | torch.Size):
        raise ValueError(f"hidden must be an int or a sequence of ints (one width per hidden layer), "
                         f"got {hidden!r}")
    return tuple(_check_width("hidden width", h) for h in hidden)


def _layer_formulas(n_hidden: int, formula: FormulaSpec | Sequence[FormulaSpec],
                    output_formula: FormulaSpec | None) -> tuple[Formula, ...]:
    """One Formula per layer (hidden layers, then the output layer)."""
    if isinstance(formula, str | Formula | Mapping):
        hidden_formula = Formula(formula)
        output = hidden_formula if output_formula is None else Formula(output_formula)
        return (hidden_formula,) * n_hidden + (output,)
    if not isinstance(formula, Sequence):
        raise ValueError(f"formula must be formula text, a Formula, or a sequence with one formula per "
                         f"layer, got {type(formula).__name__}")
    formulas = tuple(Formula(f) for f in formula)
    if len(formulas) != n_hidden + 1:
        raise ValueError(f"got {len(formulas)} formulas for {n_hidden} hidden layers and an output layer; "
                         f"pass one formula, or exactly {n_hidden + 1} (one per hidden layer, then the "
                         "output layer's)")
    if output_formula is not None:
        raise ValueError("output_formula cannot be combined with a per-layer formula sequence: the "
                         "sequence's last entry is the output layer's formula")
    return formulas


def _check_term_weights(term_weights: str) -> str:
    if term_weights not in TERM_WEIGHTS:
        raise ValueError(f"term_weights must be one of {TERM_WEIGHTS}, got {term_weights!r}")
    return term_weights


def _layer_shape_counts(formulas: Sequence[Formula], term_weights: str = "per_neuron") -> list[tuple[int, int]]:
    """Per layer: (weights per output and input, further parameters per input) -- for the inputs
    that take the formula. TaskLinear: (K, inner constants); FactoredTaskLinear: (1, K - 1 + inner constants)."""
    _check_term_weights(term_weights)
    counts = []
    for f in formulas:
        if term_weights == "per_input" and f.terms != _LINEAR.terms:
            terms = factored_terms(f)
            counts.append((1, len(terms) - 1 + sum(len(t.constants) for t in terms)))
        else:
            counts.append((f.n_terms, sum(len(t.constants) for t in f.terms)))
    return counts


def _count(widths: Sequence[int], shape_counts: Sequence[tuple[int, int]], bias: bool, n_linear_inputs: int = 0) -> int:
    """Parameters of the layers (``shape_counts`` from :func:`_layer_shape_counts`);
    ``n_linear_inputs`` of the first layer's inputs take only the linear term: one weight per
    output each, nothing per input."""
    total = 0
    for index, ((fan_in, fan_out), (n_blocks, n_per_input)) in enumerate(
            zip(zip(widths[:-1], widths[1:], strict=True), shape_counts, strict=True)):
        n_linear = n_linear_inputs if index == 0 else 0
        n_task = fan_in - n_linear
        total += fan_out * n_blocks * n_task + fan_out * n_linear + (fan_out if bias else 0) + n_per_input * n_task
    return total


def _n_linear_inputs(linear_inputs: int | Sequence[int] | None, in_features: int) -> int:
    if linear_inputs is None:
        return 0
    if isinstance(linear_inputs, int) and not isinstance(linear_inputs, bool):
        if not 0 <= linear_inputs < in_features:
            raise ValueError(f"linear_inputs must leave at least one of the {in_features} inputs for the "
                             f"formula, got {linear_inputs}")
        return linear_inputs
    return len(check_linear_inputs(linear_inputs, in_features))


def count_parameters(in_features: int, hidden: int | Sequence[int], out_features: int,
                     formula: FormulaSpec | Sequence[FormulaSpec] = "x",
                     output_formula: FormulaSpec | None = None, bias: bool = True,
                     linear_inputs: int | Sequence[int] | None = None, term_weights: str = "per_neuron") -> int:
    """Learnable scalars of ``TaskMLP(in_features, hidden, out_features, formula, ...)``, without building it.

    Activations and ``norm="layer"`` add no parameters. ``formula="x", output_formula="x"`` counts
    the ordinary (LN) MLP of the same shape. ``linear_inputs``: as for TaskMLP, the indices or
    just their number; ``term_weights`` as for TaskMLP.

    >>> count_parameters(10, [32], 1, "x")                  # 10*32 + 32 + 32*1 + 1
    385
    >>> count_parameters(10, [32], 1, "x**2 + x", output_formula="x")
    705
    """
    in_features = _check_width("in_features", in_features)
    out_features = _check_width("out_features", out_features)
    widths = _as_hidden(hidden)
    formulas = _layer_formulas(len(widths), formula, output_formula)
    bias = check_bias(bias)
    return _count((in_features, *widths, out_features), _layer_shape_counts(formulas, term_weights), bias,
                  _n_linear_inputs(linear_inputs, in_features))


def match_parameters(in_features: int, out_features: int, ln_hidden: int | Sequence[int],
                     formula: FormulaSpec | Sequence[FormulaSpec], output_formula: FormulaSpec | None = None,
                     bias: bool = True, budget: int | None = None,
                     linear_inputs: int | Sequence[int] | None = None,
                     term_weights: str = "per_neuron") -> tuple[int, ...]:
    """Hidden widths for a TN network with no more parameters than an LN network.

    Every LN width is multiplied by one common factor ``s`` and rounded down (at least 1); the
    largest ``s`` whose TN network has at most ``budget`` parameters wins.

    Parameters
    ----------
    in_features, out_features : int
    ln_hidden : int or sequence of int
        Hidden widths of the linear-neuron network (the shape to shrink).
    formula, output_formula, bias, term_weights
        As for :class:`TaskMLP`.
    budget : int, optional
        Parameter budget; by default the LN network's count, ``count_parameters(in_features,
        ln_hidden, out_features, "x", bias=bias)``.
    linear_inputs : int or sequence of int, optional
        As for :class:`TaskMLP` (the indices or just their number).

    Returns
    -------
    tuple of int
        The TN hidden widths, same length as ``ln_hidden``.

    Raises
    ------
    ValueError
        When even width 1 everywhere exceeds the budget.
    """
    in_features = _check_width("in_features", in_features)
    out_features = _check_width("out_features", out_features)
    hidden = _as_hidden(ln_hidden)
    formulas = _layer_formulas(len(hidden), formula, output_formula)
    shape_counts = _layer_shape_counts(formulas, term_weights)
    n_linear = _n_linear_inputs(linear_inputs, in_features)
    bias = check_bias(bias)
    if budget is None:
        budget = _count((in_features, *hidden, out_features), [(1, 0)] * (len(hidden) + 1), bias)
    elif isinstance(budget, bool) or not hasattr(budget, "__index__"):  # refuses inf, 1e3 and "100" alike
        raise ValueError(f"budget must be a whole number of parameters (an int), got {budget!r}")
    budget = operator.index(budget)

    def count(widths: tuple[int, ...]) -> int:
        return _count((in_features, *widths, out_features), shape_counts, bias, n_linear)

    def widths_at(scale: float) -> tuple[int, ...]:
        return tuple(max(1, math.floor(scale * h)) for h in hidden)

    def widths_exact(m: int, h: int) -> tuple[int, ...]:
        # widths at the scale m/h, in integers, so that breakpoints are not lost to rounding
        return tuple(max(1, (m * hj) // h) for hj in hidden)

    ones = (1,) * len(hidden)
    if count(ones) > budget:
        smallest = "even hidden width 1 needs" if hidden else "the network without hidden layers has"
        raise ValueError(f"no TN network fits in {budget} parameters: {smallest} {count(ones)}; "
                         "raise the budget, use fewer terms, or use output_formula='x'")
    if not hidden:
        return ()
    # The count grows with the scale (at least linearly), so doubling finds a scale that does not fit
    # and bisection brackets the last one that does ...
    low, high = 0.0, 1.0
    while count(widths_at(high)) <= budget:
        low, high = high, 2.0 * high
    for _ in range(60):
        middle = 0.5 * (low + high)
        if count(widths_at(middle)) <= budget:
            low = middle
        else:
            high = middle
    # ... and the widths only change at scales m/h, checked exactly around the bracket.
    best = ones
    best_scale = -1.0
    for h in hidden:
        for m in range(max(1, math.floor(low * h) - 1), math.ceil(high * h) + 2):
            widths = widths_exact(m, h)
            if m / h > best_scale and count(widths) <= budget:
                best, best_scale = widths, m / h
    return best


#: Where the outputs of the named activations lie, for the probes of :func:`_check_hidden_domains`:
#: (low, high, whether low itself is a common output, its text). Unbounded sides are cut at 3: the
#: domain boundaries of the terms (0 for log(x), sqrt(x) and 1/x) lie below; overflow is another matter.
_ACTIVATION_RANGES: dict[type[nn.Module], tuple[float, float, bool, str]] = {
    nn.ReLU: (0.0, 3.0, True, "[0, inf)"),
    nn.Sigmoid: (0.0, 1.0, False, "(0, 1)"),
    nn.Tanh: (-1.0, 1.0, False, "(-1, 1)"),
    nn.GELU: (-0.17, 3.0, False, "[-0.17, inf)"),
    nn.SiLU: (-0.278, 3.0, False, "[-0.278, inf)"),
    nn.LeakyReLU: (-3.0, 3.0, False, "(-inf, inf)"),
    nn.ELU: (-1.0, 3.0, False, "(-1, inf)"),
    nn.Softplus: (0.0, 3.0, False, "(0, inf)"),
    nn.Identity: (-3.0, 3.0, False, "(-inf, inf)"),
    nn.PReLU: (-3.0, 3.0, False, "(-inf, inf)"),
    nn.ReLU6: (0.0, 3.0, True, "[0, 6]"),
}


def _check_hidden_domains(formulas: Sequence[Formula], activation: nn.Module, norm: str | None) -> None:
    """Refuse a formula of a layer after the first that is not finite where its inputs lie.

    Those inputs are the outputs of ``activation`` (or of the LayerNorm after it, of both signs):
    ``log(x)`` after ReLU meets its zeros and gives -inf, ``sqrt(x)`` after tanh its negatives and
    gives NaN, so every forward pass would be inf/NaN. Probed at 64 points inside the range, cut to
    [-3, 3], and at 0 after ReLU, which outputs it for every inactive neuron; with the initial inner
    constants. Other activation classes are not checked.
    """
    if norm == "layer":
        low, high, closed, text = -3.0, 3.0, False, "(-inf, inf)"
        source = "LayerNorm (norm='layer')"
    elif type(activation) in _ACTIVATION_RANGES:
        low, high, closed, text = _ACTIVATION_RANGES[type(activation)]
        source = f"{type(activation).__name__} activation"
    else:
        return
    probes = low + (high - low) * (np.arange(64) + 0.5) / 64
    if closed:
        probes = np.concatenate([[low], probes])
    for index, formula in enumerate(formulas, start=1):
        for term in formula.terms:
            values = np.asarray(term.evaluate(probes), dtype=float) * np.ones_like(probes)
            bad = ~np.isfinite(values)
            if bad.any():
                x, value = probes[bad][0], values[bad][0]
                raise NumericalError(
                    f"the formula {formula} of task layer {index} is not finite on its inputs, the outputs of "
                    f"the {source}, which lie in {text}: its term {term} is {value} at x = {x:.3g}, so "
                    "every forward pass would give inf or NaN; use a formula defined there (e.g. log(x + 2) "
                    "for log(x)), an activation whose outputs lie in its domain, or the formula only in the "
                    "first layer (one formula per layer: [formula, 'x', ..., 'x'])")


class TaskMLP(nn.Sequential):
    """A multilayer perceptron of task-based neurons.

    Layers, in order (an ``nn.Sequential``, so ``net[0]`` is the first TaskLinear)::

        TaskLinear(in, h1, f1), act, [norm], TaskLinear(h1, h2, f2), act, [norm], ..., TaskLinear(h_L, out, f_out)

    Parameters
    ----------
    in_features, out_features : int
    hidden : int or sequence of int
        Hidden widths (an int means one hidden layer; ``()`` means a single TaskLinear).
    formula : str, Formula, or a sequence of them
        One formula for every layer, or exactly ``len(hidden) + 1`` formulas: one per hidden
        layer, then the output layer's.
    activation : str, nn.Module class or instance
        After every hidden layer: one of ``relu sigmoid tanh gelu silu leaky_relu elu softplus
        identity``, a module class (instantiated per layer) or an instance (deep-copied per layer).
        The formulas of the layers after the first must be finite where the activation's outputs
        lie: ``log(x)`` after ``relu`` (its zeros) or ``sqrt(x)`` after ``tanh`` (its negatives) is
        refused with a NumericalError, since every output would be inf or NaN.
    output_formula : str or Formula, optional
        The output layer's formula when ``formula`` is a single formula. ``None`` (default) uses
        the hidden formula for the output layer as well; ``"x"`` makes it an ordinary linear
        layer (a ``TaskLinear("x")``, which is ``nn.Linear`` exactly).
    bias : bool
        Biases in every layer.
    device, dtype
        Factory arguments, as for ``nn.Linear``.
    basis : {"terms", "orthonormal", "auto"}
        Parameterisation of every task-based layer (see :class:`TaskLinear` and
        :class:`FactoredTaskLinear`). ``"auto"``: ``"orthonormal"`` for ``term_weights="per_neuron"``
        layers and ``"terms"`` for ``"per_input"`` ones, the better of the two for each in the
        Table 6 ablations (docs/results/table6_variants).
    generator : torch.Generator, int or None
        Random stream for the initial weights (an int seeds a new CPU generator); ``None`` uses
        PyTorch's global generator.
    norm : None or "layer"
        ``"layer"`` inserts a parameter-free ``nn.LayerNorm`` after each hidden activation, so
        every TaskLinear after the first sees inputs of unit scale per sample. It adds no
        parameters. See Numerics.
    linear_inputs : sequence of int, optional
        Indices of inputs that take only the linear term in the first layer, which is then a
        :class:`MixedTaskLinear` (meant for two-valued inputs such as one-hot columns, on which
        every term is affine). Ignored when the first layer's only term is ``x``.
    term_weights : {"per_neuron", "per_input"}
        ``"per_neuron"``: every neuron has its own weight for every (term, input), the paper's
        layer ``y = b + sum_k W_k phi_k(x)`` (:class:`TaskLinear`). ``"per_input"``: the term
        weights are learned per input and shared by the layer's neurons, ``W_k = W diag(a_k)``
        (:class:`FactoredTaskLinear`): K - 1 extra parameters per input instead of K times the
        weights. Layers whose formula is ``x`` are linear either way.

    Numerics
    --------
    High powers compound through depth: a hidden value of 10 becomes 1e7 under x**7 and the next
    layer raises that to the 7th power again. Measured at initialisation for 5 hidden layers of
    width 64 with all powers up to 7 (see the tests): on inputs in [-1, 1] every activation keeps
    the stack finite and the values shrink with depth (|output| < 0.1 for ReLU); on inputs in
    [-3, 3] or wider, ReLU, GELU and identity stacks overflow to inf/NaN by the third layer, while
    bounded activations (tanh, sigmoid) or ``norm="layer"`` keep every layer finite. So scale
    inputs to about [-1, 1] (the estimators do), and for deep high-degree networks prefer
    ``norm="layer"`` or a bounded activation: training can grow hidden values past 1 even when
    the initial network is tame. Measured on the paper's datasets (inputs scaled as the
    estimators do, float32, tests/test_numerics.py): degree 7 in the first layer only stays
    finite at init and in training; degree 7 in all 5 hidden layers stays finite with
    ``norm="layer"``, can overflow during training without it (on some datasets within 50 Adam
    steps), and with ``basis="orthonormal"`` (built for inputs in [-1, 1]) overflows already at
    init -- the estimators refuse that case with a NumericalError saying so.

    Attributes
    ----------
    formulas : tuple of Formula
        The formula of each TaskLinear, hidden layers first.
    hidden : tuple of int
    task_layers : list of TaskLinear, MixedTaskLinear or FactoredTaskLinear
    linear_inputs : tuple of int
    term_weights : str
    """

    def __init__(self, in_features: int, hidden: int | Sequence[int], out_features: int,
                 formula: FormulaSpec | Sequence[FormulaSpec], activation: str | type[nn.Module] | nn.Module = "relu",
                 output_formula: FormulaSpec | None = None, bias: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None,
                 generator: torch.Generator | int | None = None, norm: str | None = None,
                 basis: str = "terms", linear_inputs: Sequence[int] | None = None,
                 term_weights: str = "per_neuron") -> None:
        in_features = _check_width("in_features", in_features)
        out_features = _check_width("out_features", out_features)
        widths = _as_hidden(hidden)
        formulas = _layer_formulas(len(widths), formula, output_formula)
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; use None or 'layer'")
        if norm == "layer" and 1 in widths:
            # LayerNorm over one feature outputs 0 for every input: the network would be constant.
            raise ValueError(f"norm='layer' needs hidden widths >= 2, got {widths}; widen the layers "
                             "(or raise the parameter budget) or use norm=None")
        # validate before building anything, and refuse formulas the activation's outputs would make inf/NaN
        _check_hidden_domains(formulas[1:], make_activation(activation), norm)
        _check_term_weights(term_weights)
        generator = as_generator(generator)
        if basis not in (*BASES, "auto"):
            raise ValueError(f"basis must be one of {(*BASES, 'auto')}, got {basis!r}")
        linear_inputs = check_linear_inputs(() if linear_inputs is None else linear_inputs, in_features)
        if formulas[0].terms == _LINEAR.terms:
            linear_inputs = ()  # every input already takes only the linear term
        factory = {"device": device, "dtype": dtype}
        neuron_basis = "orthonormal" if basis == "auto" else basis  # of the per-neuron (TaskLinear) layers
        sizes = (in_features, *widths, out_features)
        modules: list[nn.Module] = []
        # Each layer first initialises itself from the global generator, as nn.Linear does; with a
        # generator those draws are replaced below, so make them on a fork: a seeded network leaves
        # the caller's later random numbers (dropout, other models) as they were.
        with _forked_rng(device) if generator is not None else contextlib.nullcontext():
            for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
                layer_inputs = linear_inputs if index == 0 else ()
                if term_weights == "per_input" and formulas[index].terms != _LINEAR.terms:
                    modules.append(FactoredTaskLinear(fan_in, fan_out, formulas[index], bias=bias,
                                                      basis="terms" if basis == "auto" else basis,
                                                      linear_inputs=layer_inputs, **factory))
                elif layer_inputs:
                    modules.append(MixedTaskLinear(fan_in, fan_out, formulas[index], linear_inputs, bias=bias,
                                                   basis=neuron_basis, **factory))
                else:
                    modules.append(TaskLinear(fan_in, fan_out, formulas[index], bias=bias, basis=neuron_basis, **factory))
                if index < len(widths):
                    modules.append(make_activation(activation).to(**factory))  # e.g. PReLU's slope
                    if norm == "layer":
                        modules.append(nn.LayerNorm(fan_out, elementwise_affine=False, **factory))
        super().__init__(*modules)
        self.in_features = in_features
        self.out_features = out_features
        self.hidden = widths
        self.formulas = formulas
        self.norm = norm
        self.basis = basis
        self.linear_inputs = linear_inputs
        self.term_weights = term_weights
        # the task layers only: the activations stay as given (an instance is copied, not re-drawn)
        for layer in self.task_layers:
            layer.reset_parameters(generator)

    def __getitem__(self, index):
        # nn.Sequential builds a slice as type(self)(OrderedDict(...)), which TaskMLP's
        # constructor cannot take: a slice (e.g. net[:-1], the hidden part) is a plain Sequential.
        if isinstance(index, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[index]))
        return super().__getitem__(index)

    @property
    def task_layers(self) -> list[TaskLinear | MixedTaskLinear | FactoredTaskLinear]:
        """The task-based layers (TaskLinear, MixedTaskLinear or FactoredTaskLinear), input to output."""
        return [m for m in self if isinstance(m, TaskLinear | MixedTaskLinear | FactoredTaskLinear)]

    def reset_parameters(self, generator: torch.Generator | int | None = None) -> None:
        """Re-initialise every task layer, in order, from one random stream (see TaskLinear), and
        the other modules that have parameters to reset (e.g. ``nn.PReLU``'s slopes, which after
        ``to_empty()`` from the meta device would otherwise stay uninitialised memory)."""
        generator = as_generator(generator)
        for module in self:
            if isinstance(module, TaskLinear | MixedTaskLinear | FactoredTaskLinear):
                module.reset_parameters(generator)
            elif hasattr(module, "reset_parameters"):
                module.reset_parameters()

    count_parameters = staticmethod(count_parameters)
    match_parameters = staticmethod(match_parameters)
