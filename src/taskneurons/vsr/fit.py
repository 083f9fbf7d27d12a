"""Exact outer coefficients: small least-squares solves that never return NaN.

Given the aggregated features s_k of a term set, the outer coefficients c and the constant c0
of f = c0 + sum_k c_k s_k are a linear least-squares problem. The search solves thousands of
them at once on cached Gram matrices of *standardised* features (zero mean, unit variance on
the training rows), which keeps the normal equations well conditioned even for x**7 in raw
units; the final fit solves the chosen set directly on the data by an SVD-based ``lstsq``.

Singular systems (duplicate or constant features) are handled by a tiny ridge jitter and, if
a solve still fails, a minimum-norm pseudo-inverse; the result is always finite.
"""

from __future__ import annotations

import numpy as np

__all__ = ["solve_batched", "standardize", "least_squares_coefficients", "power_of_two_unit", "RIDGE"]

#: Ridge jitter relative to the mean diagonal of a Gram matrix. Far below any noise level, it
#: only decides what happens for (nearly) collinear columns: their weights stay finite.
RIDGE = 1e-10
#: Column spreads below this are recomputed in power-of-two units (their squared deviations
#: would be subnormal or 0 in float64; see :func:`standardize`).
_NARROW_SCALE = 1e-100
_NARROWEST_SCALE = 1e-290


def solve_batched(A: np.ndarray, B: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Solve ``A[c] @ X[c] = B[c]`` for a stack of symmetric positive semi-definite systems.

    Parameters
    ----------
    A : array of shape (C, k, k)
        Gram matrices (standardised features, so the diagonal is about the row count).
    B : array of shape (C, k, m)
        Right-hand sides (features times targets).
    ridge : relative jitter added to the diagonal.

    Returns
    -------
    X : array of shape (C, k, m), always finite.
    """
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    C, k, _ = A.shape
    if k == 0:
        return np.zeros((C, 0, B.shape[-1]))
    diag = np.einsum("cii->ci", A)
    lam = ridge * np.maximum(diag.mean(axis=1), 1e-300)  # (C,)
    A_reg = A + lam[:, None, None] * np.eye(k)
    try:
        with np.errstate(all="ignore"):
            X = np.linalg.solve(A_reg, B)
        bad = ~np.isfinite(X).all(axis=(1, 2))
    except np.linalg.LinAlgError:
        X = np.zeros_like(B)
        bad = np.ones(C, dtype=bool)
    for c in np.flatnonzero(bad):
        # The pseudo-inverse gives the minimum-norm solution of a singular system.
        try:
            with np.errstate(all="ignore"):
                X[c] = np.linalg.pinv(A_reg[c], hermitian=True) @ B[c]
        except np.linalg.LinAlgError:
            X[c] = 0.0
    return np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)


def power_of_two_unit(magnitude: np.ndarray | float) -> np.ndarray:
    """A power of two per entry that brings ``magnitude`` (>= 0) into [1, 2) when divided by it.

    Dividing by a power of two is exact (every rounding scales with it), which is how values near
    the float64 limit are measured or fitted without overflow and without changing any digit.
    """
    return np.ldexp(0.5, np.frexp(magnitude)[1])


def standardize(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales of ``S`` (n, K); a zero-variance column gets scale 1.

    Columns whose squares overflow (|values| above about 1e154, e.g. x**7 of raw inputs in the
    thousands of units summed over many features) or underflow (a spread below about 1e-100, e.g.
    x**2 of raw inputs near 1e-100, whose variance 1e-400 is 0 in float64) are measured in units of
    a power of two (exact), so they get their true statistics instead of an infinite scale, or a
    zero one that would make the column useless.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = S.mean(axis=0)
        scale = S.std(axis=0)
    # Only the few suspect columns are inspected further (a full finiteness pass over S would cost
    # as much as the statistics themselves).
    suspect = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(scale)) | (scale < _NARROW_SCALE))
    if len(suspect):
        odd = suspect[np.isfinite(S[:, suspect]).all(axis=0)]
        if len(odd):
            unit = power_of_two_unit(np.abs(S[:, odd]).max(axis=0))
            unit = np.where(unit > 0, unit, 1.0)
            scaled = S[:, odd] / unit
            with np.errstate(over="ignore"):
                mean[odd] = scaled.mean(axis=0) * unit
                spread = scaled.std(axis=0) * unit
            # A spread so small that a coefficient of ~1/spread overflows float64 marks a term no
            # formula can use (x**2 of inputs near 1e-160): it keeps scale 1, so it fits nothing.
            scale[odd] = np.where(spread >= _NARROWEST_SCALE, spread, 0.0)
    scale = np.where((scale > 0) & np.isfinite(scale), scale, 1.0)
    return mean, scale


def least_squares_coefficients(S: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact least-squares fit of ``Y ~ c0 + S @ c`` (with an intercept).

    Parameters
    ----------
    S : array of shape (n_samples, k)
        Aggregated features of the chosen terms.
    Y : array of shape (n_samples, m)
        Targets (one column per output).

    Returns
    -------
    coef : array of shape (m, k)
    intercept : array of shape (m,)
        Both finite. Collinear or constant columns share or drop their weight (minimum norm).
    """
    S = np.asarray(S, dtype=float)
    Y = np.asarray(Y, dtype=float)
    y_mean = Y.mean(axis=0)
    if S.shape[1] == 0:
        return np.zeros((Y.shape[1], 0)), y_mean
    mean, scale = standardize(S)
    Z = (S - mean) / scale
    beta, *_ = np.linalg.lstsq(Z, Y - y_mean, rcond=None)
    beta = np.nan_to_num(beta, nan=0.0, posinf=0.0, neginf=0.0)
    coef = beta / scale[:, None]  # (k, m)
    intercept = y_mean - mean @ coef
    return coef.T.copy(), intercept
