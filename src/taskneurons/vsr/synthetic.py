"""Generated VSR tasks with known, identifiable terms, and the rule for "found the true terms".

``make_vsr_task`` draws X uniformly from [-1, 1]^(n x d) and a target

    y = c0 + sum_k c_k sum_i phi_k(x_i) + noise

Design choices that make the terms *identifiable* (all documented, all checkable):

* **Coefficients** are set per term so that each term's own contribution has a comparable
  size: c_k = s_k * w_k / std(phi_k(x)), with w_k log-uniform in [0.5, 2] and a random sign s_k
  (std over x ~ U[-1, 1]), rounded to two significant digits.
* **Constant** c0 = -d * sum_k c_k E[phi_k(x)] centres the clean signal, so its RMS is its
  spread across rows and "noise 1 % of RMS" means 1 % of what the terms explain (without it, an
  even power summed over 1,000 features has a mean 30 times its spread and the noise would
  swamp the terms).
* **Noise** is Gaussian with standard deviation ``noise`` times the RMS of the clean signal on
  the drawn rows.
* **Drawn terms** (when ``terms`` is None) have distinct shapes, inner constants in ranges where
  the shape is not a near-copy of a low power of x (e.g. sin(a*x) with a in [1.5, 4], rounded to
  two decimals), and are redrawn until (a) every term keeps at least 5 % of the signal's spread
  after projecting it on the other true terms (no true term is nearly a combination of the
  others) and (b) no formula with other terms and no more fitted numbers reproduces the truth
  so closely that n samples at this noise cannot tell them apart (:func:`find_alternative`;
  with a rich grammar most random 3- and 4-term sums of smooth shapes fail this: exp(a*x),
  sqrt(x + c) and log(x + c) imitate one another to 1e-8 of the variance). Because the features
  are i.i.d., both checks work on one scalar x.

``terms_match`` is the success criterion of the identification benchmark: the found formula
has exactly as many terms as the truth, and they pair up one to one with the same structure
(the same expression tree apart from the values of inner constants) and inner constants within
``rtol`` (default 5 %) relative plus ``atol`` (0.02) absolute tolerance. For polynomials this
is simply the same set of powers. Outer coefficients and the constant are not compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..formula import Formula, Term
from .grammar import FAMILIES, TEMPLATES, parse_bases

__all__ = ["make_vsr_task", "terms_match", "find_alternative", "EXTENDED_RANGES"]

#: Inner-constant ranges for drawn extended terms, for x in [-1, 1]: (low, high, log-uniform?, random sign?).
EXTENDED_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "sin(a*x)": (1.5, 4.0, False, False),
    "cos(a*x)": (1.5, 4.0, False, False),
    "x*sin(a*x)": (1.5, 3.5, False, False),
    "x*cos(a*x)": (1.5, 3.5, False, False),
    "exp(a*x)": (0.7, 2.5, False, True),
    "log(1 + a*x**2)": (1.5, 10.0, True, False),
    "log(x + c)": (1.2, 3.0, False, False),
    "sqrt(x + c)": (1.1, 3.0, False, False),
    "tanh(a*x)": (1.5, 4.0, False, False),
    "1/(1 + a*x**2)": (1.5, 10.0, True, False),
    "1/(x + c)": (1.2, 3.0, False, True),
    "x/(1 + a*x**2)": (1.5, 10.0, True, False),
}

_UNIQUE_SHARE = 0.05
_REFERENCE = np.linspace(-1.0, 1.0, 4001)
_MAX_DEGREE = 7


def _draw_terms(rng: np.random.Generator, families: Sequence[str], n_terms: int) -> list[Term]:
    """``n_terms`` distinct-shape terms from ``families`` (at least one non-power if possible)."""
    pool: list[tuple[str, object]] = []
    if "poly" in families:
        pool += [("poly", k) for k in range(1, _MAX_DEGREE + 1)]
    pool += [("ext", t) for t in TEMPLATES.values() if t.family in families]
    if n_terms > len(pool):
        raise ValueError(f"cannot draw {n_terms} distinct terms from bases {families}")
    extended = [i for i, (kind, _) in enumerate(pool) if kind == "ext"]
    while True:
        picks = rng.choice(len(pool), size=n_terms, replace=False)
        if not extended or any(i in extended for i in picks):
            break
    out = []
    for i in picks:
        kind, item = pool[i]
        if kind == "poly":
            out.append(Term.parse(f"x**{item}"))
            continue
        lo, hi, log, signed = EXTENDED_RANGES[item.name]
        value = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if log else float(rng.uniform(lo, hi))
        value = round(value, 2)
        if signed and rng.random() < 0.5:
            value = -value
        out.append(Term.from_expr(item.expr((value,))))
    return out


def _unique_shares(values: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Spread of each weighted term left after projecting it on the others (and a constant),
    relative to the spread of the whole signal. ``values`` has shape (points, K)."""
    signal = values @ coefficients
    spread = signal.std()
    out = np.empty(values.shape[1])
    for k in range(values.shape[1]):
        others = np.column_stack([np.ones(len(values))] + [values[:, j] for j in range(values.shape[1]) if j != k])
        beta, *_ = np.linalg.lstsq(others, values[:, k], rcond=None)
        out[k] = abs(coefficients[k]) * (values[:, k] - others @ beta).std() / max(spread, 1e-300)
    return out


def _coefficients(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    weights = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=values.shape[1]))
    signs = rng.choice([-1.0, 1.0], size=values.shape[1])
    raw = signs * weights / values.std(axis=0)
    return np.array([float(f"{c:.2g}") for c in raw])


def make_vsr_task(n_samples: int = 2000, n_features: int = 10, terms: Sequence[str | Term] | None = None,
                  n_terms: int | None = None, bases: str | Sequence[str] = "poly", noise: float = 0.01,
                  random_state=None, identifiable: bool = True,
                  return_info: bool = False) -> tuple[np.ndarray, np.ndarray, Formula]:
    """A regression task ``y = c0 + sum_k c_k sum_i phi_k(x_i) + noise`` with known terms.

    Parameters
    ----------
    n_samples, n_features : shape of X; X ~ U[-1, 1] i.i.d.
    terms : the true terms (text such as ``"sin(2.3*x)"`` or Term); drawn when None
    n_terms : number of drawn terms (default: 1 to 4 at random)
    bases : families to draw from (``"poly"`` or e.g. ``"all"``, as in :class:`VSR`)
    noise : noise standard deviation as a fraction of the clean signal's RMS
    random_state : int, Generator or None
    identifiable : redraw terms that another formula of the grammar reproduces too closely to
        be told apart with ``n_samples`` rows (see :func:`find_alternative`); drawn terms only
    return_info : also return a dict with ``rejected`` (draws discarded before this one)

    Returns
    -------
    X : ndarray (n_samples, n_features)
    y : ndarray (n_samples,)
    true_formula : Formula of g with the true coefficients and constant (x in raw units)
    """
    if n_samples < 1 or n_features < 1:
        raise ValueError("n_samples and n_features must be positive")
    rng = np.random.default_rng(random_state)
    families = parse_bases(bases) if bases is not None else FAMILIES
    rejected = 0
    if terms is None:
        k = int(n_terms) if n_terms is not None else int(rng.integers(1, 5))
        for _ in range(1000):
            chosen = _draw_terms(rng, families, k)
            values = np.column_stack([t.evaluate(_REFERENCE) for t in chosen])
            coefficients = _coefficients(rng, values)
            if k > 1 and _unique_shares(values, coefficients).min() < _UNIQUE_SHARE:
                rejected += 1
                continue
            if identifiable and find_alternative(chosen, coefficients, families, noise, n_samples) is not None:
                rejected += 1
                continue
            break
        else:  # pragma: no cover - the ranges make this practically impossible
            raise RuntimeError("could not draw identifiable terms")
    else:
        chosen = [t if isinstance(t, Term) else Term.parse(t) for t in terms]
        values = np.column_stack([t.evaluate(_REFERENCE) for t in chosen])
        if not np.isfinite(values).all():
            raise ValueError("a given term is not finite on [-1, 1]")
        coefficients = _coefficients(rng, values)
    # E[phi(x)] for x ~ U[-1, 1] by Gauss-Legendre quadrature (exact for the powers).
    nodes, weights = np.polynomial.legendre.leggauss(64)
    means = np.array([float(np.dot(weights, t.evaluate(nodes))) / 2.0 for t in chosen])
    constant = -n_features * float(means @ coefficients)

    X = rng.uniform(-1.0, 1.0, size=(n_samples, n_features))
    clean = np.full(n_samples, constant)
    step = max(1, (1 << 21) // n_features)
    for start in range(0, n_samples, step):
        block = X[start:start + step]
        for term, c in zip(chosen, coefficients, strict=True):
            clean[start:start + step] += c * term.evaluate(block).sum(axis=1)
    sigma = noise * float(np.sqrt(np.mean(clean ** 2)))
    y = clean + sigma * rng.standard_normal(n_samples)
    truth = Formula.from_terms(chosen, list(coefficients), constant)
    if return_info:
        return X, y, truth, {"rejected": rejected}
    return X, y, truth


def find_alternative(terms: Sequence[Term], coefficients: Sequence[float], families: Sequence[str],
                     noise: float = 0.01, n_samples: int = 2000,
                     margin: float = 25.0) -> tuple[Formula, float] | None:
    """A formula with other terms that reproduces ``g = sum_k c_k phi_k`` almost exactly, if any.

    Because the features are i.i.d., how well one formula can stand in for another is a property
    of the one-variable functions on [-1, 1]: the aggregated regression's normal equations are d
    times those of the scalar problem. So VSR's search runs on the noise-free scalar problem
    (1,001 points, up to one more term than the truth) and every term set it evaluates is
    considered: one with different terms, no more fitted numbers than the truth (terms plus inner
    constants, what the BIC charges) and a mean squared misfit below
    ``margin * noise**2 / n_samples`` of g's variance makes the truth ambiguous. Over n samples
    such an alternative's squared error exceeds the truth's by less than ``margin`` noise
    variances (25: five standard deviations of a one-parameter chi-square test), so the data
    cannot reliably tell the two apart.

    Returns (alternative, relative misfit) of the closest such formula, or None.
    """
    from .features import GramCache
    from .grammar import DataRange, generate_candidates
    from .scaling import AffineScaler
    from .search import DataAccess, SearchConfig, TermSearch

    x = np.linspace(-1.0, 1.0, 1001)[:, None]
    g = np.column_stack([t.evaluate(x[:, 0]) for t in terms]) @ np.asarray(coefficients, dtype=float)
    truth = Formula.from_terms(list(terms), list(coefficients), 0.0)
    n_params = len(terms) + sum(len(t.constants) for t in terms)
    scaler = AffineScaler(None).fit(x)
    data_range = DataRange(-1.0, 1.0)
    rows = np.arange(len(x))
    data = DataAccess(x, scaler, data_range, rows)
    candidates = generate_candidates(families, _MAX_DEGREE, data_range)
    cache = GramCache(data.columns(candidates), g[:, None], rows, np.arange(0))
    # One more term than the truth: plain powers (no inner constants) can stand in for a term
    # with a constant at the same count of fitted numbers.
    config = SearchConfig(max_terms=min(len(terms) + 1, 5), early_exit=False)
    search = TermSearch(cache, candidates, data, config, np.random.default_rng(0))
    search.run(range(len(candidates)))
    tolerance = margin * noise ** 2 / n_samples
    best = None
    for subset, sse in sorted(search.records.items(), key=lambda kv: kv[1]):
        misfit = sse / len(x)  # standardised targets: SSE / n is the share of g's variance left
        if misfit > tolerance:
            break
        cands = [search.bank[c] for c in subset]
        if len(cands) + sum(c.n_params for c in cands) > n_params:
            continue
        alternative = Formula.from_terms([c.term for c in cands], [1.0] * len(cands), 0.0)
        if not terms_match(alternative, truth):
            best = (alternative, float(misfit))
            break
    return best


def terms_match(found: Formula, truth: Formula, rtol: float = 0.05, atol: float = 0.02) -> bool:
    """True when ``found`` has exactly the terms of ``truth`` (see the module docstring)."""
    found_terms = list(found.terms)
    truth_terms = list(truth.terms)
    if len(found_terms) != len(truth_terms):
        return False
    unused = list(range(len(found_terms)))
    for t in truth_terms:
        match = None
        for j in unused:
            f = found_terms[j]
            if f.program == t.program and len(f.constants) == len(t.constants) and all(
                    abs(a - b) <= rtol * abs(b) + atol for a, b in zip(f.constants, t.constants, strict=True)):
                match = j
                break
        if match is None:
            return False
        unused.remove(match)
    return True
