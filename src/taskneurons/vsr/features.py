"""Aggregated term features s_k = sum_i phi_k(u_i), computed in row chunks, and their Gram caches.

The data are read once per batch of candidate terms, a block of rows at a time: each block is
scaled (the scaling is applied per block, X is never copied whole), every term is evaluated on
it and summed over the features, leaving one number per row and term. Powers of x reuse each
other (x**k = x**(k-1) * x), so the whole polynomial family costs one multiplication per degree.

Backends: ``"numpy"`` (threads over blocks when ``n_jobs > 1``) and ``"torch"`` (blocks moved
to ``device``, e.g. a GPU; float64 throughout so both backends agree to rounding).

:class:`GramCache` keeps the standardised features of the training and validation rows and
their Gram products, so a least-squares fit of any term subset is a k-by-k solve.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._progress import progress_bar
from ..formula import NUMPY_FUNCTIONS, torch_functions
from .fit import solve_batched, standardize
from .grammar import Candidate
from .scaling import AffineScaler

__all__ = ["DEFAULT_CHUNK_ELEMENTS", "FLOAT32_RADIUS", "float32_safe", "is_cpu", "chunk_rows", "aggregate",
           "block_features", "GramCache"]

#: Elements per row block (512 KiB of float64 per temporary array). Small on purpose: blocks
#: that fit in the CPU caches are reused by the allocator instead of being mapped fresh from
#: the operating system for every temporary, which made large blocks several times slower.
DEFAULT_CHUNK_ELEMENTS = 1 << 16


#: Elements per block on a GPU, where large blocks amortise kernel launches.
GPU_CHUNK_ELEMENTS = 1 << 22


#: The float32 fast path (see :func:`block_features`) serves scaled inputs whose radius r (largest
#: |u|) lies in [1 / FLOAT32_RADIUS, FLOAT32_RADIUS]: the terms and their derivatives reach x**3
#: (the slope of x/(1 + a*x**2)) and rates of x**2 reach 1000 / r**2, which must stay well inside
#: float32's range (1.2e-38 .. 3.4e38). Scaled inputs have r = 1; only raw inputs (scale=None) of
#: extreme magnitude fall outside, and are then evaluated in float64 throughout.
FLOAT32_RADIUS = 1e12


def is_cpu(device: str) -> bool:
    """True for the CPU as torch names it: ``"cpu"`` or ``"cpu:N"`` (the numpy backend serves it)."""
    kind, _, index = device.partition(":")
    return kind == "cpu" and (not index or index.isdigit())


def float32_safe(radius: float) -> bool:
    """True when inputs of this radius may take the float32 fast path."""
    return 1.0 / FLOAT32_RADIUS <= radius <= FLOAT32_RADIUS


def chunk_rows(n_features: int, chunk_size: int | None = None, device: str = "cpu") -> int:
    """Rows per block: ``chunk_size`` if given, else about :data:`DEFAULT_CHUNK_ELEMENTS` values
    (:data:`GPU_CHUNK_ELEMENTS` on a GPU)."""
    if chunk_size is not None:
        return max(1, int(chunk_size))
    elements = DEFAULT_CHUNK_ELEMENTS if is_cpu(str(device)) else GPU_CHUNK_ELEMENTS
    return max(1, elements // max(1, n_features))


def _resolve_jobs(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, int(n_jobs))


def _single(U):
    """float32 view/copy of a block (numpy or torch)."""
    if type(U).__module__.startswith("torch"):
        return U.float()
    return U.astype(np.float32, copy=False)


def _sum64(values):
    """Row sums accumulated in float64 (numpy or torch)."""
    if type(values).__module__.startswith("torch"):
        import torch

        return values.sum(1, dtype=torch.float64)
    return values.sum(1, dtype=np.float64)


def block_features(U, candidates: Sequence[Candidate], funcs: dict, fast: bool = False):
    """Aggregated features of a block of *scaled* rows.

    Parameters
    ----------
    U : array or tensor of shape (rows, n_features), already scaled
    candidates : the K terms
    funcs : function table (numpy or torch) for the templates
    fast : evaluate the non-polynomial terms in float32 (sums still accumulate in float64).
        Several times faster for sin/exp/log/tanh on CPUs; the relative error (about 1e-7)
        is far below any noise level, so the search uses it to rank term sets, while final
        fits and predictions use float64. Only for inputs where :func:`float32_safe` holds
        (values beyond float32's range would become inf).

    Returns
    -------
    list of K arrays/tensors of shape (rows,), in the order of ``candidates``.
    """
    out: list = [None] * len(candidates)
    powers = {c.template.power: j for j, c in enumerate(candidates) if c.template.power is not None}
    if powers:
        p = None
        # Overflow to inf is expected for large raw inputs; callers check finiteness.
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(1, max(powers) + 1):
                if k == 1:
                    p = U
                elif k == 2:
                    p = U * U
                else:
                    p *= U  # in place: only two block-sized arrays live at a time
                if k in powers:
                    out[powers[k]] = _sum64(p)
        del p
    if len(powers) < len(candidates):
        V = _single(U) if fast else U
        for j, candidate in enumerate(candidates):
            if out[j] is None:
                with np.errstate(all="ignore"):
                    out[j] = _sum64(candidate.evaluate(V, funcs))
    return out


def aggregate(X, candidates: Sequence[Candidate], scaler: AffineScaler, *, rows: np.ndarray | None = None,
              chunk_size: int | None = None, backend: str = "numpy", device: str = "cpu",
              n_jobs: int | None = None, verbose: bool = False, desc: str = "aggregating",
              fast: bool = False) -> np.ndarray:
    """Aggregated features of raw ``X`` for every candidate, read in row blocks.

    Parameters
    ----------
    X : array of shape (n_samples, n_features), float32 or float64, raw units
    candidates : K terms, evaluated on the scaled inputs ``scaler.transform(X)``
    scaler : fitted :class:`AffineScaler`
    rows : optional sorted row indices; only those rows are read
    chunk_size : rows per block (default: about 2**16 values per block)
    backend : "numpy" or "torch"
    device : torch device for ``backend="torch"``
    n_jobs : threads over blocks (numpy backend)
    fast : float32 evaluation of non-polynomial terms (see :func:`block_features`)

    Returns
    -------
    S : array of shape (n_rows, K), float64; may hold inf/NaN where a term leaves its domain
        (the caller decides what that means).
    """
    n_total, d = X.shape
    n = n_total if rows is None else len(rows)
    K = len(candidates)
    S = np.empty((n, K), dtype=np.float64)
    if n == 0 or K == 0:
        return S
    step = chunk_rows(d, chunk_size, device if backend == "torch" else "cpu")
    starts = list(range(0, n, step))

    if backend == "torch":
        import torch

        funcs = torch_functions()

        def run(start: int) -> None:
            block = X[start:start + step] if rows is None else X[rows[start:start + step]]
            t = torch.as_tensor(np.ascontiguousarray(block)).to(device=device, dtype=torch.float64)
            cols = block_features(scaler.transform(t), candidates, funcs, fast)
            S[start:start + len(block)] = torch.stack(cols, dim=1).cpu().numpy()
    elif backend == "numpy":
        funcs = NUMPY_FUNCTIONS

        def run(start: int) -> None:
            block = X[start:start + step] if rows is None else X[rows[start:start + step]]
            cols = block_features(scaler.transform(block), candidates, funcs, fast)
            S[start:start + len(block)] = np.stack(cols, axis=1)
    else:
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")

    bar = progress_bar(enabled=verbose and len(starts) > 1, desc=desc, total=len(starts), unit="block")
    jobs = _resolve_jobs(n_jobs) if backend == "numpy" else 1
    with bar:
        if jobs > 1 and len(starts) > 1:
            # numpy releases the GIL in ufuncs and reductions, so threads overlap the blocks;
            # every block writes its own rows, so the result does not depend on the order.
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for _ in pool.map(run, starts):
                    bar.update(1)
        else:
            for start in starts:
                run(start)
                bar.update(1)
    return S


class GramCache:
    """Standardised aggregated features of the training/validation rows and their Gram products.

    Parameters
    ----------
    S : array of shape (n_samples, K)
        Aggregated features of all rows (training and validation).
    Y : array of shape (n_samples, m)
        Targets.
    train, val : integer row indices (``val`` may be empty)

    Attributes
    ----------
    mean_, scale_ : (K,) feature standardisation from the training rows
    y_mean_, y_scale_ : (m,) target standardisation from the training rows
    G, B, yy : Z_t^T Z_t (K, K), Z_t^T Y_t (K, m), sum of squared standardised targets (m,)
    Gv, Bv, yyv : the same products on the validation rows (standardised with training stats)

    Losses in the search are sums of squared errors of the *standardised* targets, summed over
    outputs, so outputs of different units weigh the same.
    """

    def __init__(self, S: np.ndarray, Y: np.ndarray, train: np.ndarray, val: np.ndarray):
        self.train = np.asarray(train)
        self.val = np.asarray(val)
        Yt = Y[self.train]
        self.y_mean_ = Yt.mean(axis=0)
        y_scale = Yt.std(axis=0)
        self.y_scale_ = np.where(y_scale > 0, y_scale, 1.0)
        self.Yt = (Yt - self.y_mean_) / self.y_scale_
        self.Yv = (Y[self.val] - self.y_mean_) / self.y_scale_
        self.yy = (self.Yt ** 2).sum(axis=0)
        self.yyv = (self.Yv ** 2).sum(axis=0)
        self._n = S.shape[0]
        self._k = 0
        self._cap = 0
        self._grow(max(S.shape[1], 1))
        self.add_columns(S)

    def _grow(self, capacity: int) -> None:
        """Reallocate the column storage for ``capacity`` columns (amortised doubling)."""
        m = self.Yt.shape[1]
        k = self._k
        old = (getattr(self, "_S", None), getattr(self, "_Zt", None), getattr(self, "_Zv", None),
               getattr(self, "_G", None), getattr(self, "_Gv", None), getattr(self, "_B", None),
               getattr(self, "_Bv", None), getattr(self, "_mean", None), getattr(self, "_scale", None))
        self._S = np.empty((self._n, capacity))
        self._Zt = np.empty((len(self.train), capacity))
        self._Zv = np.empty((len(self.val), capacity))
        self._G = np.empty((capacity, capacity))
        self._Gv = np.empty((capacity, capacity))
        self._B = np.empty((capacity, m))
        self._Bv = np.empty((capacity, m))
        self._mean = np.empty(capacity)
        self._scale = np.empty(capacity)
        if k:
            S, Zt, Zv, G, Gv, B, Bv, mean, scale = old
            self._S[:, :k], self._Zt[:, :k], self._Zv[:, :k] = S[:, :k], Zt[:, :k], Zv[:, :k]
            self._G[:k, :k], self._Gv[:k, :k] = G[:k, :k], Gv[:k, :k]
            self._B[:k], self._Bv[:k], self._mean[:k], self._scale[:k] = B[:k], Bv[:k], mean[:k], scale[:k]
        self._cap = capacity

    # Views of the filled part of the storage.
    S = property(lambda self: self._S[:, :self._k])
    Zt = property(lambda self: self._Zt[:, :self._k])
    Zv = property(lambda self: self._Zv[:, :self._k])
    G = property(lambda self: self._G[:self._k, :self._k])
    Gv = property(lambda self: self._Gv[:self._k, :self._k])
    B = property(lambda self: self._B[:self._k])
    Bv = property(lambda self: self._Bv[:self._k])
    mean_ = property(lambda self: self._mean[:self._k])
    scale_ = property(lambda self: self._scale[:self._k])

    @property
    def n_columns(self) -> int:
        return self._k

    @property
    def n_train(self) -> int:
        return len(self.train)

    @property
    def n_outputs(self) -> int:
        return self.Yt.shape[1]

    def add_columns(self, S_new: np.ndarray) -> list[int]:
        """Append feature columns (n_samples, k) and extend the Gram products; returns their ids."""
        S_new = np.asarray(S_new, dtype=float).reshape(self._n, -1)
        first, k_new = self._k, S_new.shape[1]
        if first + k_new > self._cap:
            self._grow(max(2 * self._cap, first + k_new))
        if len(self.train):
            mean, scale = standardize(S_new[self.train])
        else:
            mean, scale = np.zeros(k_new), np.ones(k_new)
        Zt_new = (S_new[self.train] - mean) / scale
        Zv_new = (S_new[self.val] - mean) / scale
        last = first + k_new
        self._S[:, first:last] = S_new
        self._Zt[:, first:last] = Zt_new
        self._Zv[:, first:last] = Zv_new
        self._mean[first:last], self._scale[first:last] = mean, scale
        for G, Z, Z_new, B, Y in ((self._G, self._Zt, Zt_new, self._B, self.Yt),
                                  (self._Gv, self._Zv, Zv_new, self._Bv, self.Yv)):
            cross = Z[:, :last].T @ Z_new   # (last, k_new), includes the new block itself
            G[:last, first:last] = cross
            G[first:last, :last] = cross.T
            B[first:last] = Z_new.T @ Y
        self._k = last
        return list(range(first, last))

    def solve(self, subsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares fits of many term subsets at once, on the training rows.

        Parameters
        ----------
        subsets : int array of shape (C, k), column ids

        Returns
        -------
        sse : (C,) standardised training SSE summed over outputs (>= a tiny positive floor)
        beta : (C, k, m) coefficients of the standardised features
        """
        subsets = np.asarray(subsets, dtype=np.intp)
        A = self.G[subsets[:, :, None], subsets[:, None, :]]
        Bs = self.B[subsets]
        beta = solve_batched(A, Bs)
        # The SSE of the returned beta, ||y||^2 - 2 beta.B + beta' A beta. (total - beta.B alone is
        # the ridge objective SSE + lam ||beta||^2: it would favour splitting one weight over two
        # near-duplicate columns, and add junk terms to exact fits.)
        explained = 2.0 * np.einsum("ckm,ckm->c", beta, Bs) - np.einsum("ckm,ckl,clm->c", beta, A, beta)
        total = float(self.yy.sum())
        # Round-off can push a perfect fit's SSE below zero; a floor keeps log(SSE) finite.
        sse = np.maximum(total - explained, total * 1e-14 + 1e-300)
        return sse, beta

    def child_sse(self, parents: np.ndarray, parent_sse: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Training SSE of every set ``parent + {column}``, by a rank-one update of each parent's fit.

        Adding column j to a parent set P lowers the SSE by ||b_j - G_jP G_PP^-1 B_P||^2 / s_j, with
        s_j = G_jj - G_jP G_PP^-1 G_Pj the part of column j that P does not explain. One batched
        solve per parent thus scores all K children at once, instead of K separate solves.

        Parameters
        ----------
        parents : int array (C, p), column ids of the parent sets
        parent_sse : (C,) their training SSE
        columns : int array (J,), candidate column ids

        Returns
        -------
        (C, J) array of child SSE; +inf where the child repeats a parent column or the column is
        (numerically) explained by the parent already.
        """
        parents = np.asarray(parents, dtype=np.intp)
        columns = np.asarray(columns, dtype=np.intp)
        G, B = self.G, self.B
        Gpp = G[parents[:, :, None], parents[:, None, :]]
        Gpa = G[parents][:, :, columns]                       # (C, p, J)
        Bp = B[parents]                                       # (C, p, m)
        sol = solve_batched(Gpp, np.concatenate([Gpa, Bp], axis=2))
        J = len(columns)
        U, W = sol[:, :, :J], sol[:, :, J:]
        diag = np.diag(G)[columns]
        schur = diag[None, :] - np.einsum("cpj,cpj->cj", Gpa, U)
        residual = B[columns][None, :, :] - np.einsum("cpj,cpm->cjm", Gpa, W)
        valid = schur > 1e-9 * np.maximum(diag, 1e-300)[None, :]
        valid &= ~(parents[:, :, None] == columns[None, None, :]).any(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = (residual ** 2).sum(axis=2) / np.where(valid, schur, 1.0)
        out = parent_sse[:, None] - gain
        out[~valid] = np.inf
        return out

    def val_errors(self, columns: Sequence[int], beta: np.ndarray) -> np.ndarray:
        """Per-row squared validation errors (standardised, summed over outputs), shape (n_val,)."""
        cols = np.asarray(columns, dtype=np.intp)
        residual = self.Yv - self.Zv[:, cols] @ beta
        return (residual ** 2).sum(axis=1)

    def raw_coefficients(self, columns: Sequence[int], beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients (m, k) and intercepts (m,) in the units of the features and targets."""
        cols = np.asarray(columns, dtype=np.intp)
        coef = beta / self.scale_[cols][:, None] * self.y_scale_[None, :]  # (k, m)
        intercept = self.y_mean_ - self.mean_[cols] @ coef
        return coef.T, intercept
