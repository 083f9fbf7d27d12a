"""Initialisation of task-based layers.

A task-based layer ``y = b + sum_k W_k phi_k(x)`` is one matrix ``W = [W_1 | ... | W_K]`` of
shape ``(out, K*in)`` applied to the concatenated term values. We initialise it like
:class:`torch.nn.Linear` initialises a layer of fan-in ``K*in`` (Kaiming-uniform with
``a = sqrt(5)``, i.e. ``U(-1/sqrt(K*in), 1/sqrt(K*in))``) and then divide block ``W_k`` by
``sqrt(m_k)``, the root second moment of ``phi_k`` on *reference inputs* ``x ~ N(0, 1)``::

    m_k = E[phi_k(x)**2],  x ~ N(0, 1)          (x: m=1, x**2: m=3, x**3: m=15, x**k: (2k-1)!!)

On reference inputs every term then contributes the same variance, and the output variance is
``sum_k in * (1/(3 K in)) * m_k/m_k = 1/3``, exactly what ``nn.Linear`` gives on the same inputs,
whatever K and whichever terms (of finite second moment: not 1/x). This is the ``basis="terms"``
layout; an orthonormal basis is normalised on U(-1, 1) by construction (see TaskLinear). For
``formula="x"`` (K = 1, m = 1) nothing is rescaled, so the weights are drawn from ``nn.Linear``'s
distribution, number for number given the same random stream. On inputs smaller than unit scale
(|x| <= 1, min-max scaled data, most hidden activations) the higher powers start small relative to
the linear term: the safe direction, since a deep stack of x**7 neurons can only blow up when its
inputs exceed 1.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..formula import Term

__all__ = ["term_second_moment", "term_init_scales", "task_linear_init_", "as_generator"]

# Gauss-Hermite nodes for E[f(x)], x ~ N(0, 1). An even count keeps x = 0 off the nodes, so
# terms such as log(abs(x)) or 1/x give a finite (if rough) estimate instead of inf.
_N_NODES = 96
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(_N_NODES)
_WEIGHTS = _WEIGHTS / math.sqrt(2.0 * math.pi)

# Moments outside this range are clipped: the scale is a starting point, not a promise, and a
# term such as exp(20*x) must not produce a zero or infinite initial weight.
_MOMENT_RANGE = (1e-8, 1e16)


def term_second_moment(term: Term) -> float:
    """``E[phi(x)**2]`` for ``x ~ N(0, 1)``, the reference input distribution of initialisation.

    Exact for powers (``(2k-1)!!`` for ``x**k``); Gauss-Hermite quadrature with 96 nodes for
    other terms, averaged over the nodes where the term is finite (so ``log(x)`` or
    ``sqrt(x)`` are measured on their domain). Clipped to ``[1e-8, 1e16]``; 1.0 when the term is
    finite nowhere on the nodes.
    """
    if term.power is not None:
        return float(math.prod(range(2 * term.power - 1, 0, -2)))
    values = np.asarray(term.evaluate(_NODES), dtype=float)
    values = np.broadcast_to(values, _NODES.shape)
    finite = np.isfinite(values)
    mass = float(_WEIGHTS[finite].sum())
    if mass <= 0.0:
        return 1.0
    with np.errstate(over="ignore"):  # exp(100*x) squared overflows: clipped below, not worth a warning
        moment = float(np.sum(_WEIGHTS[finite] * values[finite] ** 2) / mass)
    if not math.isfinite(moment):
        return _MOMENT_RANGE[1]
    return float(min(max(moment, _MOMENT_RANGE[0]), _MOMENT_RANGE[1]))


def term_init_scales(terms: Sequence[Term]) -> tuple[float, ...]:
    """Per-term weight scale ``1/sqrt(m_k)`` (see the module docstring); 1.0 exactly for ``x``."""
    return tuple(1.0 if t.power == 1 else 1.0 / math.sqrt(term_second_moment(t)) for t in terms)


def as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    """A ``reset_parameters`` generator argument as a generator: an int (numpy integers too) seeds a new
    CPU generator; a torch.Generator or None passes through; anything else is refused."""
    if hasattr(generator, "__index__") and not isinstance(generator, bool | np.bool_):
        seed = operator.index(generator)
        if not -2**63 <= seed < 2**64:
            raise ValueError(f"a generator seed must fit in 64 bits, got {seed}")
        return torch.Generator().manual_seed(seed)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, an int seed or None, got {generator!r}")
    return generator


@torch.no_grad()
def task_linear_init_(weight: Tensor, bias: Tensor | None, scales: Sequence[float],
                      generator: torch.Generator | None = None) -> None:
    """Initialise a task-based layer's parameters in place.

    Parameters
    ----------
    weight : Tensor of shape (out, K*in)
        Term-major blocks: columns ``k*in:(k+1)*in`` hold ``W_k``.
    bias : Tensor of shape (out,) or None
    scales : K floats
        Block scales from :func:`term_init_scales`.
    generator : torch.Generator or None
        Random stream; ``None`` uses PyTorch's global one (as ``nn.Linear`` does). A generator on
        another device than the parameters is honoured by drawing there and copying.

    The draws are exactly ``nn.Linear.reset_parameters``' (Kaiming-uniform with ``a = sqrt(5)``
    on the whole weight, then ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for the bias, fan_in = K*in),
    followed by the block rescaling.
    """
    n_terms = len(scales)
    fan_in = weight.shape[1]
    if n_terms < 1 or fan_in % n_terms:
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not split into {n_terms} term blocks")
    _draw(weight, generator, lambda t: torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=generator))
    width = fan_in // n_terms
    for k, scale in enumerate(scales):
        if scale != 1.0:  # skipped for x so that formula "x" keeps nn.Linear's numbers bit for bit
            weight[:, k * width:(k + 1) * width].mul_(scale)
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        _draw(bias, generator, lambda t: torch.nn.init.uniform_(t, -bound, bound, generator=generator))


def _draw(target: Tensor, generator: torch.Generator | None, fill) -> None:
    if generator is None or generator.device == target.device or target.device.type == "meta":
        fill(target)
        return
    # torch.nn.init samples on the tensor's device, which must match the generator's.
    scratch = torch.empty(target.shape, dtype=target.dtype, device=generator.device)
    fill(scratch)
    target.copy_(scratch)
