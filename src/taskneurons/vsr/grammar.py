"""The VSR search space: term families, their inner-constant grids and candidate generation.

A *template* is a term shape with named inner constants, e.g. ``sin(a*x)`` with ``a``;
a *candidate* is a template with concrete constants, e.g. ``sin(1.5*x)``. Each candidate is
evaluated elementwise on the scaled inputs ``u`` (numpy array or torch tensor) by a small
closure written once for both libraries, and turned into a :class:`~taskneurons.formula.Term`
only when a formula is printed, so the search never touches SymPy in its inner loops.

Grids are written in units of the scaled data's range, so that the same grid works whether
the inputs live in [-1, 1] (``scale="minmax"`` / ``"shared"``) or in raw units (``scale=None``):
with ``r = max|u|`` on the training rows, ``sin(a*x)`` is tried at ``a = alpha / r`` for the
``alpha`` listed below, and shifts such as the ``c`` of ``sqrt(x + c)`` are placed a fraction of
the half-range beyond the lowest training value so the argument stays positive there.

Families (``bases``): ``poly`` (x**k, k = 1..max_degree), ``trig`` (sin(a*x), cos(a*x),
x*sin(a*x), x*cos(a*x)), ``exp`` (exp(a*x)), ``log`` (log(1 + a*x**2), log(x + c)),
``sqrt`` (sqrt(x + c)), ``tanh`` (tanh(a*x)), ``rational`` (1/(1 + a*x**2), 1/(x + c),
x/(1 + a*x**2)); ``"all"`` is every family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from ..formula import Term, X

__all__ = [
    "FAMILIES",
    "Template",
    "Candidate",
    "DataRange",
    "parse_bases",
    "poly_template",
    "template_by_name",
    "templates_for",
    "generate_candidates",
    "out_of_range_families",
]

#: Every family name, in the order candidates are generated.
FAMILIES: tuple[str, ...] = ("poly", "trig", "exp", "log", "sqrt", "tanh", "rational")


@dataclass(frozen=True)
class DataRange:
    """Range of the scaled inputs on the training rows (all features together).

    ``lo``/``hi`` are the smallest and largest scaled value; ``radius = max(|lo|, |hi|)`` and
    ``half = (hi - lo) / 2`` set the units of the inner-constant grids (both are at least a tiny
    positive number so a constant input does not divide by zero).
    """

    lo: float
    hi: float

    @property
    def radius(self) -> float:
        # No fixed floor: raw inputs (scale=None) may all be ~1e-30, and grids in units of a
        # floored radius would put every constant far off the data (sin(1e12*x) on x ~ 1e-30).
        return max(abs(self.lo), abs(self.hi)) or 1.0

    @property
    def half(self) -> float:
        # hi/2 - lo/2 rather than (hi - lo)/2, which overflows for data near +-1.8e308.
        return (self.hi / 2.0 - self.lo / 2.0) or self.radius


Evaluator = Callable[[Any, Sequence[float], dict], Any]
ExprMaker = Callable[[Sequence[float]], sp.Expr]
GridMaker = Callable[[DataRange], list[tuple[float, ...]]]
BoundsMaker = Callable[[DataRange, Sequence[float]], tuple[tuple[float, ...], tuple[float, ...]]]


@dataclass(frozen=True, eq=False)
class Template:
    """A term shape with ``len(param_names)`` inner constants.

    Attributes
    ----------
    name : str
        Readable shape, e.g. ``"sin(a*x)"``; also the identity of the template.
    family : str
        One of :data:`FAMILIES`.
    param_names : tuple of str
        Names of the inner constants (empty for powers of x).
    evaluate : callable
        ``evaluate(u, params, funcs)`` -> phi(u) elementwise; ``funcs`` maps function names to
        numpy or torch functions (``formula.NUMPY_FUNCTIONS`` / ``formula.torch_functions()``).
    expr : callable
        ``expr(params)`` -> the SymPy expression in :data:`taskneurons.formula.X`.
    grid : callable
        ``grid(data_range)`` -> starting constants tried by the search.
    bounds : callable
        ``bounds(data_range, params0)`` -> (lower, upper) box for refining the constants,
        chosen so the term stays finite on the training range.
    power : int or None
        ``k`` for the template ``x**k``.
    derivative : callable or None
        ``derivative(u, params, funcs)`` -> d phi / d params[0] elementwise (one-constant
        templates), used to estimate what refining a constant would gain.
    """

    name: str
    family: str
    param_names: tuple[str, ...]
    evaluate: Evaluator = field(repr=False)
    expr: ExprMaker = field(repr=False)
    grid: GridMaker = field(repr=False)
    bounds: BoundsMaker = field(repr=False)
    power: int | None = None
    derivative: Evaluator | None = field(default=None, repr=False)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @cached_property
    def complexity(self) -> int:
        """Node count of the term (PySR-style), fixed per template: taken at generic constants
        so that a constant that happens to equal 1 does not make a term look simpler."""
        return Term.from_expr(self.expr(tuple(1.7 + 0.3 * i for i in range(self.n_params)))).complexity

    def __hash__(self) -> int:
        return hash(("Template", self.name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.name == self.name

    def __reduce__(self):
        # Templates hold closures; pickle them by name (fitted estimators must pickle).
        return (template_by_name, (self.name,))


@dataclass(frozen=True, eq=False)
class Candidate:
    """A template with concrete inner constants: one column of the aggregated-feature bank."""

    template: Template
    params: tuple[float, ...] = ()

    @cached_property
    def key(self) -> tuple:
        return (self.template.name, tuple(float(p) for p in self.params))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Candidate) and other.key == self.key

    def evaluate(self, u, funcs: dict):
        """phi(u) elementwise (numpy array or torch tensor, any shape)."""
        return self.template.evaluate(u, self.params, funcs)

    @cached_property
    def term(self) -> Term:
        return Term.from_expr(self.template.expr(self.params))

    @property
    def complexity(self) -> int:
        return self.template.complexity

    @property
    def n_params(self) -> int:
        return self.template.n_params

    def __repr__(self) -> str:
        return f"Candidate({self.term.key!r})"


# ---------------------------------------------------------------------------------------------
# Templates.
# ---------------------------------------------------------------------------------------------

def _f(value: float) -> sp.Float:
    return sp.Float(float(value))


def _round(value: float) -> float:
    """Grid values with 4 significant digits, so printed formulas stay readable."""
    return float(f"{value:.4g}")


def _per_radius(alpha: float, rng: DataRange, power: int) -> float:
    """``alpha / radius**power``, dividing ``power`` times (``radius**2`` overflows a Python float,
    with an OverflowError, for radii above 1e154; see :func:`out_of_range_families`)."""
    value = float(alpha)
    for _ in range(power):
        value /= rng.radius
    return value


def _scaled(alphas: Sequence[float], power: int = 1) -> GridMaker:
    """Grid ``a = alpha / radius**power`` (frequencies / rates in units of the data radius)."""
    return lambda rng: [(_round(_per_radius(a, rng, power)),) for a in alphas]


def _box(lo_alpha: float, hi_alpha: float, power: int = 1) -> BoundsMaker:
    return lambda rng, p0: ((_per_radius(lo_alpha, rng, power),), (_per_radius(hi_alpha, rng, power),))


def _geometric(lo: float, hi: float, ratio: float) -> tuple[float, ...]:
    n = int(np.floor(np.log(hi / lo) / np.log(ratio) + 1e-9)) + 1
    return tuple(float(lo * ratio ** i) for i in range(n))


# Shifts c for sqrt(x + c) / log(x + c) / 1/(x + c): the argument's zero sits a fraction
# `delta` of the half-range beyond the training range, so the term is finite on it.
_SHIFT_DELTAS = _geometric(0.05, 4.0, 1.3)
_SHIFT_MIN, _SHIFT_MAX = 0.02, 50.0


def _shift_grid(both_sides: bool) -> GridMaker:
    def grid(rng: DataRange):
        out = [(_round(-rng.lo + rng.half * d),) for d in _SHIFT_DELTAS]
        if both_sides:
            out += [(_round(-rng.hi - rng.half * d),) for d in _SHIFT_DELTAS]
        return out
    return grid


def _shift_bounds(rng: DataRange, p0: Sequence[float]):
    c = float(p0[0])
    if c + rng.lo > 0:  # pole/zero left of the data: keep it there
        return ((-rng.lo + _SHIFT_MIN * rng.half,), (-rng.lo + _SHIFT_MAX * rng.half,))
    return ((-rng.hi - _SHIFT_MAX * rng.half,), (-rng.hi - _SHIFT_MIN * rng.half,))


def poly_template(k: int) -> Template:
    """The template ``x**k`` (no inner constants)."""
    def evaluate(u, p, funcs, k=k):
        return u ** k if k > 1 else u

    return Template(name=f"x**{k}" if k > 1 else "x", family="poly", param_names=(),
                    evaluate=evaluate, expr=lambda p, k=k: X ** k,
                    grid=lambda rng: [()], bounds=lambda rng, p0: ((), ()), power=k)


# Dense grids (in units of the data radius): the search ranks term sets on grid values, and a
# grid point close to the true constant keeps that ranking right; refinement then polishes.
_STEP = 0.25
_TRIG_ALPHAS = tuple(_STEP * i for i in range(1, 25))                  # 0.25 .. 6
_XTRIG_ALPHAS = _TRIG_ALPHAS
_EXP_ALPHAS = tuple(-a for a in reversed(_TRIG_ALPHAS[:12])) + _TRIG_ALPHAS[:12]   # +-0.25 .. 3
_TANH_ALPHAS = _TRIG_ALPHAS + (7.0, 8.0, 10.0, 12.0)
_QUAD_ALPHAS = _geometric(0.25, 100.0, 1.3)                           # rates of x**2
_LOGQ_ALPHAS = _QUAD_ALPHAS
_XRAT_ALPHAS = _QUAD_ALPHAS

_EXTENDED: tuple[Template, ...] = (
    Template("sin(a*x)", "trig", ("a",),
             lambda u, p, F: F["sin"](u * p[0]), lambda p: sp.sin(_f(p[0]) * X),
             _scaled(_TRIG_ALPHAS), _box(0.05, 12.0),
             derivative=lambda u, p, F: u * F["cos"](u * p[0])),
    Template("cos(a*x)", "trig", ("a",),
             lambda u, p, F: F["cos"](u * p[0]), lambda p: sp.cos(_f(p[0]) * X),
             _scaled(_TRIG_ALPHAS), _box(0.05, 12.0),
             derivative=lambda u, p, F: -u * F["sin"](u * p[0])),
    Template("x*sin(a*x)", "trig", ("a",),
             lambda u, p, F: u * F["sin"](u * p[0]), lambda p: X * sp.sin(_f(p[0]) * X),
             _scaled(_XTRIG_ALPHAS), _box(0.05, 12.0),
             derivative=lambda u, p, F: u * u * F["cos"](u * p[0])),
    Template("x*cos(a*x)", "trig", ("a",),
             lambda u, p, F: u * F["cos"](u * p[0]), lambda p: X * sp.cos(_f(p[0]) * X),
             _scaled(_XTRIG_ALPHAS), _box(0.05, 12.0),
             derivative=lambda u, p, F: -u * u * F["sin"](u * p[0])),
    Template("exp(a*x)", "exp", ("a",),
             lambda u, p, F: F["exp"](u * p[0]), lambda p: sp.exp(_f(p[0]) * X),
             _scaled(_EXP_ALPHAS), _box(-6.0, 6.0),
             derivative=lambda u, p, F: u * F["exp"](u * p[0])),
    Template("log(1 + a*x**2)", "log", ("a",),
             lambda u, p, F: F["log"](1.0 + p[0] * (u * u)), lambda p: sp.log(1 + _f(p[0]) * X ** 2),
             _scaled(_LOGQ_ALPHAS, 2), _box(0.01, 1000.0, 2),
             derivative=lambda u, p, F: (u * u) / (1.0 + p[0] * (u * u))),
    Template("log(x + c)", "log", ("c",),
             lambda u, p, F: F["log"](u + p[0]), lambda p: sp.log(X + _f(p[0])),
             _shift_grid(False), _shift_bounds,
             derivative=lambda u, p, F: 1.0 / (u + p[0])),
    Template("sqrt(x + c)", "sqrt", ("c",),
             lambda u, p, F: F["sqrt"](u + p[0]), lambda p: sp.sqrt(X + _f(p[0])),
             _shift_grid(False), _shift_bounds,
             derivative=lambda u, p, F: 0.5 / F["sqrt"](u + p[0])),
    Template("tanh(a*x)", "tanh", ("a",),
             lambda u, p, F: F["tanh"](u * p[0]), lambda p: sp.tanh(_f(p[0]) * X),
             _scaled(_TANH_ALPHAS), _box(0.05, 30.0),
             derivative=lambda u, p, F: u * (1.0 - F["tanh"](u * p[0]) ** 2)),
    Template("1/(1 + a*x**2)", "rational", ("a",),
             lambda u, p, F: 1.0 / (1.0 + p[0] * (u * u)), lambda p: 1 / (1 + _f(p[0]) * X ** 2),
             _scaled(_QUAD_ALPHAS, 2), _box(0.01, 1000.0, 2),
             derivative=lambda u, p, F: -(u * u) / (1.0 + p[0] * (u * u)) ** 2),
    Template("1/(x + c)", "rational", ("c",),
             lambda u, p, F: 1.0 / (u + p[0]), lambda p: 1 / (X + _f(p[0])),
             _shift_grid(True), _shift_bounds,
             derivative=lambda u, p, F: -1.0 / (u + p[0]) ** 2),
    Template("x/(1 + a*x**2)", "rational", ("a",),
             lambda u, p, F: u / (1.0 + p[0] * (u * u)), lambda p: X / (1 + _f(p[0]) * X ** 2),
             _scaled(_XRAT_ALPHAS, 2), _box(0.01, 1000.0, 2),
             derivative=lambda u, p, F: -(u * u * u) / (1.0 + p[0] * (u * u)) ** 2),
)

#: Extended templates by name (``"sin(a*x)"`` -> Template).
TEMPLATES: dict[str, Template] = {t.name: t for t in _EXTENDED}


def template_by_name(name: str) -> Template:
    """The template called ``name`` (``"x"``, ``"x**5"``, ``"sin(a*x)"``, ...)."""
    if name == "x":
        return poly_template(1)
    if name.startswith("x**") and name[3:].isdigit():
        return poly_template(int(name[3:]))
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown term template {name!r}") from None


def parse_bases(bases: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise ``bases`` ("poly", "all", or a sequence of family names) to family names.

    Raises
    ------
    ValueError
        On an unknown family name or an empty selection.
    """
    try:
        names = [bases] if isinstance(bases, str) else list(bases)
    except TypeError:  # None, a number, ...
        raise ValueError(f"bases must be a family name or a sequence of them, got {bases!r}; choose from "
                         f"{FAMILIES} or 'all'") from None
    if not names:
        raise ValueError(f"bases is empty; choose one or more of {FAMILIES} or 'all'")
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"bases must be family names, got {name!r}; choose from {FAMILIES} or 'all'")
        key = name.strip().lower()
        if key == "all":
            out.extend(FAMILIES)
        elif key in FAMILIES:
            out.append(key)
        else:
            raise ValueError(f"unknown term family {name!r} in bases; choose from {FAMILIES} or 'all'")
    return tuple(f for f in FAMILIES if f in out)


#: Decimal exponent e per family: its grids and bounds are written in float64 only for inputs whose
#: scaled radius r lies in [1e-e, 1e+e]. Rates of x**2 (1/(1 + a*x**2), log(1 + a*x**2)) are
#: ~alpha / r**2 and the terms square x, so r**2 and 1000 / r**2 must stay normal float64 numbers;
#: frequencies, rates and shifts (sin(a*x), exp(a*x), sqrt(x + c)) scale with 1/r or r. Powers of x
#: have no constants (overflowing powers are dropped by the estimator's finiteness check).
RADIUS_EXPONENT_LIMITS: dict[str, int] = {"trig": 290, "exp": 290, "log": 150, "sqrt": 290, "tanh": 290,
                                          "rational": 150}


def out_of_range_families(families: Sequence[str], data_range: DataRange) -> list[str]:
    """The families whose inner constants float64 cannot write for inputs of this range
    (only raw inputs, ``scale=None``, get there: scaled inputs have radius 1)."""
    r = data_range.radius
    return [f for f in families if f in RADIUS_EXPONENT_LIMITS
            and not 10.0 ** -RADIUS_EXPONENT_LIMITS[f] <= r <= 10.0 ** RADIUS_EXPONENT_LIMITS[f]]


def templates_for(families: Sequence[str], max_degree: int) -> list[Template]:
    """Templates of the given families, powers first (x, x**2, ..., x**max_degree)."""
    out: list[Template] = []
    if "poly" in families:
        out.extend(poly_template(k) for k in range(1, max_degree + 1))
    out.extend(t for t in _EXTENDED if t.family in families)
    return out


def generate_candidates(families: Sequence[str], max_degree: int, data_range: DataRange) -> list[Candidate]:
    """Every starting candidate of the search: each template at each grid point of its constants.

    Parameters
    ----------
    families : names from :data:`FAMILIES`
    max_degree : highest power of x for the ``poly`` family
    data_range : range of the scaled training inputs (sets the grid units)

    Returns
    -------
    list of Candidate, without duplicates, powers first.
    """
    seen: set = set()
    out: list[Candidate] = []
    for template in templates_for(families, max_degree):
        for params in template.grid(data_range):
            candidate = Candidate(template, tuple(float(np.float64(p)) for p in params))
            if candidate.key not in seen:
                seen.add(candidate.key)
                out.append(candidate)
    return out
