"""Input scaling for VSR, and what each mode does to the shared formula.

A VSR formula g is shared by every input variable: f(x) = c0 + sum_k c_k sum_i phi_k(x_i).
Scaling the inputs first by an affine map u_i = a_i * x_i + b_i changes what g means:

* ``"minmax"`` (the paper's choice, the default): each feature is mapped to [-1, 1] on the
  training rows, u_i = a_i x_i + b_i with its own a_i, b_i. The formula is shared in *scaled*
  space; in raw units it reads sum_i g(a_i x_i + b_i), which is generally no longer one shared
  formula, so no raw-unit formula is offered. Right for features in different units.
* ``"shared"``: one common map u = a x + b for all features, taken from the smallest and largest
  value over all features, so all values land in [-1, 1] (b = 0 when the data straddle 0 nearly
  symmetrically, so x**k stays a single power in raw units). Then sum_i g(u_i) = sum_i g(a x_i + b)
  is exactly the shared formula g(a x + b) in raw units (VSR offers it as ``formula_raw_``).
* ``None``: no scaling; formulas are in raw units.

Every map is applied per row chunk (:meth:`AffineScaler.transform`), never to the whole X.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import DataError

__all__ = ["AffineScaler", "SCALE_MODES"]

SCALE_MODES = ("minmax", "shared", None)
#: ``scale="shared"`` skips the shift when the data are this close to symmetric about 0.
SYMMETRY_TOLERANCE = 0.1
ScaleMode = Literal["minmax", "shared"] | None


class AffineScaler:
    """The affine input map ``u = x * scale_ + offset_`` of a fitted VSR.

    Attributes (after :meth:`fit`)
    ------------------------------
    mode : "minmax", "shared" or None
    scale_, offset_ : ndarray of shape (n_features,)
        Per-feature factor and shift (equal across features unless ``mode == "minmax"``).
    data_min_, data_max_ : ndarray of shape (n_features,)
        Per-feature minimum and maximum seen in fit (raw units).
    """

    def __init__(self, mode: ScaleMode = "minmax"):
        if mode not in SCALE_MODES:
            raise ValueError(f"scale must be 'minmax', 'shared' or None, got {mode!r}")
        self.mode = mode

    def fit(self, X, chunk_rows: int = 65536) -> AffineScaler:
        """Learn the map from ``X`` (n_samples, n_features), reading it in row chunks."""
        n, d = X.shape
        lo = np.full(d, np.inf)
        hi = np.full(d, -np.inf)
        for start in range(0, n, chunk_rows):
            block = X[start:start + chunk_rows]
            lo = np.minimum(lo, block.min(axis=0))
            hi = np.maximum(hi, block.max(axis=0))
        self.data_min_ = lo.astype(float)
        self.data_max_ = hi.astype(float)
        if self.mode == "minmax":
            scale, offset = self._to_unit(self.data_min_, self.data_max_)
        elif self.mode == "shared":
            s, o = self._shared(float(lo.min()), float(hi.max()))
            scale, offset = np.full(d, s), np.full(d, o)
        else:
            scale, offset = np.ones(d), np.zeros(d)
        if not (np.isfinite(scale).all() and np.isfinite(offset).all()):
            # Only a range below about 1e-308 (subnormal numbers) gets here: 2 / range is then
            # larger than the largest float64. Refuse rather than scale to inf and NaN.
            bad = np.flatnonzero(~(np.isfinite(scale) & np.isfinite(offset)))
            span = float(np.max(self.data_max_[bad] - self.data_min_[bad]))
            raise DataError(f"X values are too small to scale: feature(s) {bad[:5].tolist()} span only {span:.3g} "
                            "(subnormal numbers, below 2.2e-308), so mapping them to [-1, 1] overflows float64; "
                            "multiply X by a large constant first (e.g. X * 1e300)")
        self.scale_ = scale
        self.offset_ = offset
        return self

    @staticmethod
    def _to_unit(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Factor and shift mapping [lo, hi] onto [-1, 1]; a zero range counts as 1 (as sklearn's
        MinMaxScaler does), so a constant feature maps to -1 instead of dividing by zero."""
        with np.errstate(over="ignore", invalid="ignore"):
            span = hi - lo
        wide = ~np.isfinite(span)
        span = np.where(span > 0, span, 1.0)
        with np.errstate(over="ignore", divide="ignore"):
            scale = 2.0 / span
        if wide.any():
            # hi - lo overflows for values near +-1.8e308: take the range in units of max |value|
            # (exact up to rounding, and finite), so such data scale like any other.
            top = np.maximum(np.abs(lo), np.abs(hi))[wide]
            scale[wide] = (2.0 / (hi[wide] / top - lo[wide] / top)) / top
        return scale, -1.0 - lo * scale

    @staticmethod
    def _shared(lo: float, hi: float) -> tuple[float, float]:
        """The common map: [lo, hi] onto [-1, 1]; but when the data straddle 0 almost
        symmetrically (|lo + hi| <= 10 % of the range) a pure rescaling u = x / max(|lo|, |hi|),
        so that powers of x stay single powers in raw units (no spurious lower-degree terms from a
        tiny shift); the scaled values then still lie in [-1, 1]."""
        with np.errstate(over="ignore"):
            symmetric = lo < 0 < hi and abs(lo + hi) <= SYMMETRY_TOLERANCE * (hi - lo)
        if symmetric:
            with np.errstate(over="ignore", divide="ignore"):
                return float(np.float64(1.0) / max(-lo, hi)), 0.0
        s, o = AffineScaler._to_unit(np.array([lo]), np.array([hi]))
        return float(s[0]), float(o[0])

    @property
    def is_shared(self) -> bool:
        """True when one map serves every feature (then raw-unit formulas are exact)."""
        return self.mode != "minmax" or bool(np.all(self.scale_ == self.scale_[0])
                                             and np.all(self.offset_ == self.offset_[0]))

    def transform(self, block):
        """Scaled copy of a row block (numpy array or torch tensor, shape (rows, n_features))."""
        if type(block).__module__.startswith("torch"):
            import torch

            scale = torch.as_tensor(self.scale_, dtype=block.dtype, device=block.device)
            offset = torch.as_tensor(self.offset_, dtype=block.dtype, device=block.device)
            return block * scale + offset
        out = np.multiply(block, self.scale_, dtype=np.float64)
        out += self.offset_
        return out

    def inverse_transform(self, U: np.ndarray) -> np.ndarray:
        """Raw values from scaled ones (only for features whose range was not zero)."""
        return (np.asarray(U, dtype=float) - self.offset_) / self.scale_

    def __repr__(self) -> str:
        return f"AffineScaler(mode={self.mode!r})"
