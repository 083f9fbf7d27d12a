"""The complexity-versus-error front and the choice of one formula from it.

Complexity is the node count of the formula (PySR's convention, see ``Formula.complexity``).
The front keeps the term sets that improve on every simpler one, where "simpler" means fewer
nodes or fewer fitted numbers (see :func:`pareto_front`).

Selection rules (``selection=``), all applying a parsimony rule "the simplest formula whose
error is within noise of the best":

* ``"bic"`` (default): Bayesian information criterion on the training rows,
  BIC = N log(SSE / N) + p log n with N = n * n_outputs residuals and p the number of fitted
  numbers (outer coefficients, constants and inner constants). Among the front entries whose BIC
  is within ``2 * parsimony`` of the lowest (a difference of 2 is "not worth more than a bare
  mention" on Kass and Raftery's scale), the simplest wins.
* ``"validation"``: the held-out split's squared error; the simplest entry within
  ``parsimony`` standard errors of the lowest validation error (the one-standard-error rule).
* ``"best_val"``: the lowest validation error, no parsimony.

Without validation rows, ``"validation"`` and ``"best_val"`` fall back to ``"bic"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SELECTIONS", "FrontEntry", "pareto_front", "bic", "select"]

SELECTIONS = ("bic", "validation", "best_val")


@dataclass
class FrontEntry:
    """One candidate formula: its term columns and the numbers selection needs."""

    columns: tuple[int, ...]
    complexity: int
    n_params: int          # fitted numbers per output except the constant: k outer + inner/outputs
    n_inner: int           # inner constants (shared by all outputs)
    sse: float             # standardised training SSE, summed over outputs
    val_sse: float = float("nan")
    val_se: float = float("nan")
    val_per_output: np.ndarray | None = None  # validation MSE per output (standardised units)


def pareto_front(entries: Sequence[FrontEntry]) -> list[FrontEntry]:
    """Entries that no simpler entry beats, sorted by complexity.

    "Simpler" is measured two ways and the two fronts are merged: by node count (PySR's
    complexity) and by the number of fitted numbers (terms plus inner constants, what the BIC
    charges). One measure alone hides good formulas: four plain powers can have fewer nodes than
    three terms with one rational term, although they fit one more number.
    """
    out: dict[tuple[int, ...], FrontEntry] = {}
    for key in (lambda e: e.complexity, lambda e: e.n_params):
        best = np.inf
        for entry in sorted(entries, key=lambda e: (key(e), e.sse, e.complexity, e.columns)):
            # A relative margin keeps round-off ties (equal fits) from counting as improvements.
            if entry.sse < best * (1 - 1e-12):
                out[entry.columns] = entry
                best = entry.sse
    return sorted(out.values(), key=lambda e: (e.complexity, e.sse, e.columns))


#: Mean squared standardised residual below which a fit counts as exact (R^2 > 1 - 1e-12): the
#: search refines in float32, so on noise-free targets residuals of this size are rounding, and
#: without a floor N log(SSE) would reward any extra term that trims them (a 4e-10*exp(-0.7999996*x)
#: beside the true 2.4*exp(-0.8*x)).
EXACT_FIT_MSE = 1e-12


def bic(entry: FrontEntry, n_train: int, n_outputs: int) -> float:
    """BIC of an entry on the training rows (standardised residuals, one noise level); fits
    within :data:`EXACT_FIT_MSE` of exact are scored as exact, so the simplest of them wins."""
    N = n_train * n_outputs
    p = n_outputs * (len(entry.columns) + 1) + entry.n_inner
    return N * np.log(max(entry.sse / N, EXACT_FIT_MSE)) + p * np.log(max(n_train, 2))


def select(front: Sequence[FrontEntry], rule: str, parsimony: float, n_train: int, n_outputs: int,
           has_validation: bool) -> tuple[int, np.ndarray]:
    """Index of the chosen front entry, and each entry's score under the rule used.

    Parameters
    ----------
    front : entries from :func:`pareto_front` (increasing complexity)
    rule : one of :data:`SELECTIONS`
    parsimony : tolerance multiplier (0 picks the best score outright)
    n_train, n_outputs : sizes for the BIC
    has_validation : whether ``val_sse`` / ``val_se`` are filled in
    """
    if rule not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {rule!r}")
    if rule != "bic" and not has_validation:
        rule = "bic"
    if rule == "bic":
        scores = np.array([bic(e, n_train, n_outputs) for e in front])
        tolerance = 2.0 * parsimony
    else:
        scores = np.array([e.val_sse for e in front])
        best = int(np.argmin(scores))
        tolerance = parsimony * front[best].val_se if rule == "validation" else 0.0
    best = int(np.argmin(scores))
    if not np.isfinite(tolerance):
        tolerance = 0.0
    within = np.flatnonzero(scores <= scores[best] + tolerance)
    # The front is ordered by complexity, so the first entry within tolerance is the simplest.
    return int(within[0]), scores
