"""Search over term sets on cached Gram matrices, and inner-constant refinement.

Every candidate term is one column of the Gram cache, so the least-squares fit of a term set is a
k-by-k solve. The search, for sizes 1..max_terms:

1. **Enumerate or grow.** When all subsets of up to ``max_terms`` candidates number at most
   ``exhaustive_limit`` (always for powers of x: 2**7 - 1 subsets at degree 7) every subset is
   solved, in vectorised batches. Otherwise each size grows from the best sets of the size below
   (``n_parents``, at most ``per_signature`` per combination of term shapes): every child
   ``parent + term`` is scored at once by a rank-one update of the parent's fit, and the best
   children overall plus the best few of every shape combination are solved exactly.
2. **Rank by what refinement would reach.** Grid constants put a true term between grid points at
   a disadvantage; a Gauss-Newton step (adding each term's derivative with respect to its constant
   to the fit) estimates the gain of moving the constants and re-ranks the leading sets.
3. **Refine.** The best sets of the leading shape combinations (two distinct starts each) are first
   moved to the best grid point of their combination, then their constants are fitted by
   ``scipy.optimize.least_squares`` on the variable-projection residual
   r(theta) = (I - P(theta)) y (P projects onto the span of the set's aggregated features and a
   constant: outer coefficients are solved exactly inside each evaluation). This runs on a row
   subsample; refined terms join the cache as new columns and the next size grows from them.
4. **Complete with powers.** Each non-power shape, and the best pairs of them, is combined with
   every subset of the powers (few, so all subsets are affordable): truths such as
   x**4 + x**3 + x**2 + sin(3.6*x) have no part that stands out on its own.
5. **Local search.** The best set of each size is improved by one-term swaps, and the sets on the
   front shed one term at a time (refitting), which exposes true sets hidden behind a spurious
   extra term.

Every evaluated set is recorded with its training error; the estimator judges the finalists on all
rows and :mod:`.selection` picks one.

Cost. Nothing is computed twice: aggregated columns live in the Gram cache (search rows) and in a
per-candidate cache on the refinement subsample; a refinement is remembered by its start set and
the best grid point of a signature by its candidate lists. The records are also kept as per-size
column arrays, so ranking, signature grouping and the front are vectorised numpy operations
rather than Python loops over every evaluated set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.optimize import least_squares

from .._progress import progress_bar
from ..formula import NUMPY_FUNCTIONS, torch_functions
from .features import GramCache, aggregate, block_features, chunk_rows
from .fit import power_of_two_unit, solve_batched
from .grammar import Candidate, DataRange
from .scaling import AffineScaler
from .selection import FrontEntry

__all__ = ["SearchConfig", "DataAccess", "TermSearch", "refine_constants"]

#: Significant digits kept for refined inner constants: readable formulas, and far more
#: precision than noisy data determine (the outer coefficients are re-solved afterwards) ...
CONSTANT_DIGITS = 4
#: ... unless rounding visibly worsens the fit (exact data): then this many (~float32 search precision x 1000).
FULL_CONSTANT_DIGITS = 10
#: Values (rows x columns) of aggregated subsample columns kept for reuse by refinements (64 MiB).
SUBSAMPLE_CACHE_VALUES = 8_000_000
#: Term sets solved between two time-budget checks in long stages (a fraction of a second).
_DEADLINE_BATCH = 100_000


@dataclass
class SearchConfig:
    """Knobs of :class:`TermSearch` (the estimator fills them from its parameters)."""

    max_terms: int
    beam_width: int = 20
    n_refine: int = 4
    refine: bool = True
    exhaustive_limit: int = 100_000
    n_parents: int = 1000             # sets of each size that the next size is grown from
    per_signature: int = 10           # ... at most this many with the same term shapes
    n_screen: int = 20_000            # children per size solved exactly after rank-one screening
    per_signature_screen: int = 3     # ... plus this many of every signature
    signature_grid: bool = True       # start each refinement from its signature's best grid point
    refine_cutoff: float = 10.0       # refine only sets within this factor of the best SSE of their size
    early_exit: bool = True           # stop growing sets once a size brings no BIC gain
    refine_elements: int = 50_000    # subsample size for refinement, in values (rows x features)
    refine_min_rows: int = 50
    max_nfev: int = 10
    deadline: float | None = None     # time.perf_counter() value after which the search stops
    callback: Callable[[dict], object] | None = None
    verbose: bool = False
    start_time: float = field(default_factory=time.perf_counter)


class DataAccess:
    """What the search needs from the raw data: feature columns of the rows it searches on, and
    scaled copies of some of those rows for refinement.

    ``rows`` are the X rows behind the search's Gram cache (cache row j is X row ``rows[j]``).
    ``fast`` allows the float32 fast path at all (False for inputs beyond float32's range, see
    :func:`~.features.float32_safe`); then every column and scaled row is float64.
    """

    def __init__(self, X, scaler: AffineScaler, data_range: DataRange, rows: np.ndarray, *,
                 backend: str = "numpy", device: str = "cpu", chunk_size: int | None = None,
                 n_jobs: int | None = None, verbose: bool = False, fast: bool = True):
        self.fast = fast
        self.X = X
        self.scaler = scaler
        self.data_range = data_range
        self.rows = np.asarray(rows)
        self.backend = backend
        self.device = device
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.verbose = verbose

    def columns(self, candidates: Sequence[Candidate], all_rows: bool = False, fast: bool = True) -> np.ndarray:
        """Aggregated features of ``candidates`` on the search rows (n_rows, k), or on every
        row of X when ``all_rows``; ``fast`` evaluates non-polynomial terms in float32, which
        ranks term sets just as well (see :func:`block_features`); final fits use float64."""
        rows = None if all_rows or len(self.rows) == self.X.shape[0] else self.rows
        return aggregate(self.X, candidates, self.scaler, rows=rows, chunk_size=self.chunk_size,
                         backend=self.backend, device=self.device, n_jobs=self.n_jobs, verbose=self.verbose,
                         fast=fast and self.fast)

    def columns_at(self, candidates: Sequence[Candidate], rows: np.ndarray, fast: bool = True) -> np.ndarray:
        """Aggregated features of ``candidates`` on the X rows ``rows`` (sorted), (len(rows), k)."""
        return aggregate(self.X, candidates, self.scaler, rows=np.asarray(rows), chunk_size=self.chunk_size,
                         backend=self.backend, device=self.device, n_jobs=self.n_jobs, verbose=self.verbose,
                         fast=fast and self.fast)

    def scaled_rows(self, positions: np.ndarray, all_rows: bool = False):
        """Scaled float32 copy of search rows ``positions`` (or of X rows ``positions`` when
        ``all_rows``), as a numpy array, or a torch tensor for torch (float64 without ``fast``)."""
        block = self.X[positions if all_rows else self.rows[positions]]
        if self.backend == "torch":
            import torch

            block = torch.as_tensor(np.ascontiguousarray(block)).to(device=self.device, dtype=torch.float64)
            scaled = self.scaler.transform(block)
            return scaled.float() if self.fast else scaled
        scaled = self.scaler.transform(block)
        return scaled.astype(np.float32) if self.fast else scaled

    def row_columns(self, U, candidates: Sequence[Candidate]) -> np.ndarray:
        """Aggregated features (rows, k) of ``candidates`` on scaled rows ``U`` (in row blocks,
        float32 term values)."""
        step = chunk_rows(U.shape[1], self.chunk_size, self.device if self.backend == "torch" else "cpu")
        out = np.empty((U.shape[0], len(candidates)))
        if self.backend == "torch":
            import torch

            funcs = torch_functions()
            for start in range(0, U.shape[0], step):
                cols = block_features(U[start:start + step], candidates, funcs, fast=self.fast)
                out[start:start + step] = torch.stack(cols, dim=1).cpu().numpy()
            return out
        for start in range(0, U.shape[0], step):
            out[start:start + step] = np.stack(
                block_features(U[start:start + step], candidates, NUMPY_FUNCTIONS, fast=self.fast), axis=1)
        return out


def _top_per_group(scores: np.ndarray, groups: np.ndarray, m: int) -> np.ndarray:
    """Indices of the ``m`` lowest scores within every group."""
    order = np.lexsort((scores, groups))
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    return order[rank < m]


def _unit_columns(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``A`` (n, k) divided by their Euclidean norms (zero columns kept), and the norms.

    A norm whose squares overflow or underflow float64 (raw inputs of extreme magnitude,
    scale=None) is measured in units of a power of two of the column's largest value (exact);
    the plain sum of squares serves every other column at no extra cost.
    """
    with np.errstate(over="ignore"):
        norm = np.sqrt((A ** 2).sum(axis=0))
    odd = ~np.isfinite(norm) | (norm < 1e-140)
    if odd.any():
        sub = A[:, odd]
        unit = power_of_two_unit(np.abs(sub).max(axis=0))
        with np.errstate(over="ignore"):
            norm[odd] = np.sqrt(((sub / unit) ** 2).sum(axis=0)) * unit
    return A / np.where(norm > 0, norm, 1.0), norm


class _Slope:
    """d phi / d a of a one-constant candidate, as a column source for :func:`aggregate`."""

    class _Shape:
        power = None

    template = _Shape()

    def __init__(self, of: Candidate):
        self.of = of

    def evaluate(self, u, funcs: dict):
        return self.of.template.derivative(u, self.of.params, funcs)


class _Stop(Exception):
    """Raised internally when the time budget or the callback ends the search."""


class TermSearch:
    """Enumerate and refine term sets over a growing bank of candidate columns.

    Parameters
    ----------
    cache : GramCache holding one column per entry of ``bank``
    bank : the candidates, one per cache column
    data : access to the raw data for refined columns
    config : SearchConfig
    rng : numpy Generator (row subsample for refinement)
    """

    def __init__(self, cache: GramCache, bank: list[Candidate], data: DataAccess, config: SearchConfig,
                 rng: np.random.Generator):
        self.cache = cache
        self.bank = list(bank)
        self.data = data
        self.config = config
        self.rng = rng
        self.index = {c.key: j for j, c in enumerate(self.bank)}
        self.records: dict[tuple[int, ...], float] = {}
        # The recorded sets again, by size and in recording order, as column-id arrays (for
        # vectorised scans of all records without rebuilding arrays from the dict).
        self._groups: dict[int, tuple[list[tuple[int, ...]], list[np.ndarray]]] = {}
        self.refined: set[tuple[int, ...]] = set()
        self.stopped: str | None = None
        self.n_evaluated = 0
        self._sub: tuple | None = None
        self._refined_from: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._tid: list[int] = []
        self._n_params: list[int] = []
        self._best_by_size: dict[int, float] = {}
        self._slopes: dict[int, np.ndarray] = {}
        self._tid_of: dict[str, int] = {}
        # Refinement is deterministic given its start set, and different targets often start
        # from the same set (the best grid point of their signature): each start is fitted once.
        self._refined_start: dict[tuple[int, ...], list[Candidate] | None] = {}
        self._signature_best: dict[tuple, tuple[int, ...]] = {}
        # Aggregated columns on the refinement subsample, by candidate: refinements that share a
        # term start from (and take finite-difference steps around) the same constants.
        self._sub_columns: dict[tuple, np.ndarray] = {}
        self._sub_columns_size = 0

    # -- bookkeeping --------------------------------------------------------------------------
    def _check_stop(self, stage: str, n_terms: int) -> None:
        self._check_deadline()
        config = self.config
        if config.callback is not None:
            best_cols, best_sse = min(self.records.items(), key=lambda kv: kv[1]) if self.records else ((), np.nan)
            info = {
                "stage": stage,
                "n_terms": n_terms,
                "n_evaluated": self.n_evaluated,
                "best_terms": [self.bank[c].term.key for c in best_cols],
                "best_loss": float(best_sse) / max(1, self.cache.n_train * self.cache.n_outputs),
                "elapsed": time.perf_counter() - config.start_time,
            }
            if config.callback(info):
                self.stopped = "callback"
                raise _Stop

    def _check_deadline(self) -> None:
        """Stop on the time budget; inside long stages this alone is checked (the callback keeps its
        documented rhythm: once per search size or refinement round, in :meth:`_check_stop`)."""
        if self._past_deadline():
            self.stopped = "time_budget"
            raise _Stop

    def _past_deadline(self) -> bool:
        return self.config.deadline is not None and time.perf_counter() > self.config.deadline

    def evaluate(self, subsets: Sequence[tuple[int, ...]]) -> np.ndarray:
        """Training SSE of term sets (all of one size), recorded; vectorised in batches."""
        if not subsets:
            return np.empty(0)
        arr = np.asarray(subsets, dtype=np.intp)
        out = np.empty(len(arr))
        for start in range(0, len(arr), 20_000):
            sse, _ = self.cache.solve(arr[start:start + 20_000])
            out[start:start + 20_000] = sse
        records = self.records
        fresh: list[int] = []
        keys = [tuple(t) for t in subsets]
        for i, (subset, value) in enumerate(zip(keys, out.tolist(), strict=True)):
            if subset not in records:
                fresh.append(i)
            records[subset] = value
        if fresh:
            self._add_to_groups([keys[i] for i in fresh], arr[fresh] if len(fresh) < len(keys) else arr)
        k = arr.shape[1]
        best = float(out.min())
        if best < self._best_by_size.get(k, np.inf):
            self._best_by_size[k] = best
        self.n_evaluated += len(subsets)
        return out

    def _add_to_groups(self, keys: list[tuple[int, ...]], arr: np.ndarray) -> None:
        subsets, arrays = self._groups.setdefault(arr.shape[1], ([], []))
        subsets.extend(keys)
        arrays.append(arr)

    def _record(self, subset: tuple[int, ...], sse: float) -> None:
        if subset not in self.records:
            self._add_to_groups([subset], np.asarray([subset], dtype=np.intp))
        self.records[subset] = sse
        k = len(subset)
        if sse < self._best_by_size.get(k, np.inf):
            self._best_by_size[k] = sse

    def signature(self, subset: Sequence[int]) -> tuple[str, ...]:
        return tuple(sorted(self.bank[c].template.name for c in subset))

    @staticmethod
    def _id_array(subsets: Sequence[tuple[int, ...]]) -> np.ndarray:
        """The sets as rows of column ids, padded with -1 when their sizes differ."""
        sizes = {len(t) for t in subsets}
        if len(sizes) == 1:
            return np.asarray(subsets, dtype=np.intp)
        arr = np.full((len(subsets), max(sizes)), -1, dtype=np.intp)
        for i, subset in enumerate(subsets):
            arr[i, :len(subset)] = subset
        return arr

    def _signature_codes(self, arr: np.ndarray) -> np.ndarray:
        """One integer per set (rows of ``arr``, column ids, -1 padding) that is equal exactly when
        the sets have the same signature (multiset of term shapes)."""
        tids = np.sort(np.where(arr >= 0, self._template_ids()[arr], -1), axis=1)
        k = tids.shape[1]
        if k <= 10 and (arr >= 0).all():  # template ids stay below 64: 6 bits each
            return (tids << (6 * np.arange(k, dtype=np.int64))).sum(axis=1)
        return np.unique(tids, axis=0, return_inverse=True)[1].ravel()

    def _best_per_signature(self, subsets: Sequence[tuple[int, ...]], sse: np.ndarray,
                            limit: int) -> list[tuple[int, ...]]:
        """The best set of each signature, best first, at most ``limit`` of them."""
        if not len(subsets):
            return []
        order = np.argsort(sse, kind="stable")
        codes = self._signature_codes(self._id_array(subsets))[order]
        _, first = np.unique(codes, return_index=True)
        return [tuple(subsets[i]) for i in order[np.sort(first)[:limit]]]

    # -- enumeration --------------------------------------------------------------------------
    def _n_subsets(self, n_ids: int) -> int:
        return sum(math.comb(n_ids, k) for k in range(1, min(self.config.max_terms, n_ids) + 1))

    def search(self, ids: Sequence[int]) -> list[list[tuple[int, ...]]]:
        """Evaluate term sets of sizes 1..max_terms; return, per size, the best sets (at most
        ``beam_width``, one per signature), best first.

        Exhaustive when feasible; otherwise each size is grown from the best sets of the size
        below (:meth:`_grow`). With refinement on, the best sets of each size are refined before
        the next size is grown, and refined terms join the pool of candidates.
        """
        pool = sorted(ids)
        exhaustive = self._n_subsets(len(pool)) <= self.config.exhaustive_limit
        base = list(pool)
        levels: list[list[tuple[int, ...]]] = []
        max_terms = min(self.config.max_terms, len(pool))
        bar = progress_bar(enabled=self.config.verbose, desc="searching term sets", total=max_terms, unit="size")
        with bar:
            parents: list[tuple[int, ...]] = []
            for k in range(1, max_terms + 1):
                if exhaustive:
                    subsets = [tuple(c) for c in combinations(base, k)]
                    sse = self.evaluate(subsets)
                    order = np.argsort(sse, kind="stable")
                    ranked = [subsets[i] for i in order]
                elif k == 1:
                    subsets = [(j,) for j in pool]
                    sse = self.evaluate(subsets)
                    ranked = [subsets[i] for i in np.argsort(sse, kind="stable")]
                else:
                    ranked = self._grow(parents, pool)
                if not ranked:
                    break
                level = self._best_per_signature(ranked, np.array([self.records[t] for t in ranked]),
                                                 self.config.beam_width)
                if self.config.refine:
                    targets = self._refine_targets(self.gauss_newton_rank(ranked), self.config.n_refine)
                    new_ids = self.refine_best(targets, limit=10 * self.config.n_refine)
                    pool = sorted(set(pool) | set(new_ids))
                    twins = [t for t in self._refined_from.values() if len(t) == k]
                    level = self._rank(level + twins)
                    ranked = twins + ranked
                parents = self._diverse(ranked, self.config.n_parents, self.config.per_signature)
                levels.append(level)
                bar.update(1)
                self._check_stop("search", k)
                if not exhaustive and self._no_gain(k):
                    break
        return levels

    def _no_gain(self, k: int) -> bool:
        """True when the best set of size k does not beat the best of size k - 1 by the BIC's
        price of a single extra number (n log(SSE_{k-1} / SSE_k) < log n): larger sets, which
        cost at least as much again, are then not worth searching."""
        if k < 2 or not self.config.early_exit:
            return False
        before, now = self._best_by_size.get(k - 1, np.inf), self._best_by_size.get(k, np.inf)
        n = max(self.cache.n_train, 2)
        return bool(np.isfinite(before) and now > 0 and n * np.log(before / now) < np.log(n))

    def _diverse(self, ranked: Sequence[tuple[int, ...]], limit: int, per_signature: int) -> list[tuple[int, ...]]:
        """The best ``limit`` sets, at most ``per_signature`` of each signature (so grid
        neighbours of one good set do not crowd out other shapes)."""
        ranked = list(dict.fromkeys(ranked))
        if not ranked:
            return []
        sse = np.fromiter(map(self.records.__getitem__, ranked), dtype=float, count=len(ranked))
        order = np.argsort(sse, kind="stable")  # as Python's stable sort by SSE
        codes = self._signature_codes(self._id_array(ranked))[order]
        # Rank of each set within its signature, in SSE order.
        by_code = np.argsort(codes, kind="stable")
        sorted_codes = codes[by_code]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        rank = np.empty(len(codes), dtype=np.intp)
        rank[by_code] = np.arange(len(codes)) - np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
        keep = order[rank < per_signature][:limit]
        return [ranked[i] for i in keep]

    def _param_counts(self) -> np.ndarray:
        """Number of inner constants of every bank column."""
        if len(self._n_params) < len(self.bank):
            self._n_params.extend(c.n_params for c in self.bank[len(self._n_params):])
        return np.asarray(self._n_params, dtype=np.intp)

    def _template_ids(self) -> np.ndarray:
        """Integer id of every bank column's template (for vectorised signatures)."""
        if len(self._tid) < len(self.bank):
            for c in self.bank[len(self._tid):]:
                self._tid.append(self._tid_of.setdefault(c.template.name, len(self._tid_of)))
        return np.asarray(self._tid, dtype=np.int64)

    def _grow(self, parents: Sequence[tuple[int, ...]], pool: Sequence[int]) -> list[tuple[int, ...]]:
        """Children of ``parents`` with one more term from ``pool``.

        All children are scored by rank-one updates (:meth:`GramCache.child_sse`); the best
        ``n_screen`` of them, plus the best ``per_signature_screen`` of every signature (so each
        combination of shapes keeps a few representatives), are solved exactly and recorded.
        Returns those children, best first.
        """
        pool_arr = np.asarray(pool, dtype=np.intp)
        parent_arr = np.asarray(parents, dtype=np.intp)
        parent_sse = np.array([self.records[t] for t in parents])
        tid = self._template_ids()
        n_screen, per_sig = self.config.n_screen, self.config.per_signature_screen
        # Screening groups: (parent signature, added shape). Each child signature is a union of
        # such groups, so the best few of every group include the best few of every signature;
        # the exact signatures are taken on the survivors only.
        _, parent_group = np.unique(self._signature_codes(parent_arr), return_inverse=True)
        fine = parent_group.ravel().astype(np.int64)[:, None] * 64 + tid[pool_arr][None, :]
        keep_scores, keep_pairs = [], []
        batch = max(1, 400_000 // max(1, len(pool_arr)))
        for start in range(0, len(parent_arr), batch):
            block = parent_arr[start:start + batch]
            scores = self.cache.child_sse(block, parent_sse[start:start + batch], pool_arr)
            flat = scores.ravel()
            finite = np.flatnonzero(np.isfinite(flat))
            if len(finite) == 0:
                continue
            if len(finite) > n_screen:
                codes = fine[start:start + batch].ravel()
                chosen = _top_per_group(flat[finite], codes[finite], per_sig)
                chosen = np.union1d(chosen, np.argpartition(flat[finite], n_screen - 1)[:n_screen])
            else:
                chosen = np.arange(len(finite))
            idx = finite[chosen]
            keep_scores.append(flat[idx])
            keep_pairs.append(np.column_stack([start + idx // len(pool_arr), idx % len(pool_arr)]))
        if not keep_scores:
            return []
        scores = np.concatenate(keep_scores)
        pairs = np.vstack(keep_pairs)
        codes = self._signature_codes(np.column_stack([parent_arr[pairs[:, 0]], pool_arr[pairs[:, 1]]]))
        chosen = _top_per_group(scores, codes, per_sig)
        if len(scores) > n_screen:
            chosen = np.union1d(chosen, np.argpartition(scores, n_screen - 1)[:n_screen])
        else:
            chosen = np.arange(len(scores))
        chosen = chosen[np.argsort(scores[chosen], kind="stable")]
        picked = pairs[chosen]
        child_arr = np.sort(np.column_stack([parent_arr[picked[:, 0]], pool_arr[picked[:, 1]]]), axis=1)
        children = list(dict.fromkeys(map(tuple, child_arr.tolist())))
        fresh = [t for t in children if t not in self.records]
        if fresh:
            self.evaluate(fresh)
        return self._by_sse(children)

    def _by_sse(self, subsets: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """Recorded sets sorted by training SSE (stable)."""
        sse = np.fromiter(map(self.records.__getitem__, subsets), dtype=float, count=len(subsets))
        return [subsets[i] for i in np.argsort(sse, kind="stable")]

    def _slope_columns(self, columns: Sequence[int]) -> None:
        """Centred aggregated d phi / d a on the search rows for these bank columns (cached),
        stored at unit norm with the norm kept to convert coefficients back."""
        missing = [c for c in dict.fromkeys(columns) if c not in self._slopes
                   and self.bank[c].n_params == 1 and self.bank[c].template.derivative is not None]
        if not missing:
            return
        S = self.data.columns([_Slope(self.bank[c]) for c in missing])
        for j, c in enumerate(missing):
            with np.errstate(invalid="ignore"):  # inf - inf where a slope overflows: refused below
                col = S[:, j] - S[:, j].mean()
            unit_col, norm = _unit_columns(col[:, None])
            norm = float(norm[0])
            if np.isfinite(norm) and norm > 0:
                self._slopes[c] = (unit_col[:, 0], norm)
            else:
                self._slopes[c] = None

    def gauss_newton_rank(self, ranked: Sequence[tuple[int, ...]], n_signatures: int = 150,
                          variants: int = 2) -> list[tuple[int, ...]]:
        """Re-rank the leading sets by what refining their constants would roughly reach.

        Sets are first ranked by their fit at grid constants, which punishes a true term whose
        constant falls between grid points (sin(3.6*x) between 3.5 and 3.75) more than a wrong
        set that happens to sit on grid points. Adding each term's derivative with respect to its
        constant, d phi / d a, to the least-squares fit gives the first-order (Gauss-Newton) gain
        of moving the constants; it is trusted only when the implied move stays within about a
        grid step, else the set keeps its grid-point fit. The leading ``n_signatures`` signatures
        (``variants`` sets each) are scored; the rest keep their order behind them.
        """
        head = self._refine_targets(ranked, n_signatures, variants=variants, skip_refined=False)
        if not head:
            return list(ranked)
        self._slope_columns([c for t in head for c in t])
        radius = self.data.data_range.radius
        score = {subset: self.records[subset] for subset in head}
        # Sets with the same size and the same number of moving terms are solved as one batch.
        batches: dict[tuple[int, int], list[tuple[tuple[int, ...], list[int]]]] = {}
        for subset in head:
            moving = [i for i, c in enumerate(subset) if self._slopes.get(c) is not None]
            if moving:
                batches.setdefault((len(subset), len(moving)), []).append((subset, moving))
        Zt, Y, n = self.cache.Zt, self.cache.Yt, self.cache.n_train
        total = float(self.cache.yy.sum())
        for (k, p), items in batches.items():
            step = max(1, 2_000_000 // max(1, n * (k + p)))  # bounded (sets, rows, columns) stacks
            for start in range(0, len(items), step):
                chunk = items[start:start + step]
                sets = np.asarray([t for t, _ in chunk], dtype=np.intp)              # (H, k)
                pos = np.asarray([m for _, m in chunk], dtype=np.intp)               # (H, p)
                cols = np.take_along_axis(sets, pos, axis=1)                         # moving bank columns
                slopes = np.stack([np.column_stack([self._slopes[c][0] for c in row]) for row in cols.tolist()])
                A = np.concatenate([np.moveaxis(Zt[:, sets], 0, 1), slopes], axis=2)  # (H, n, k + p)
                At = np.swapaxes(A, 1, 2)
                AtY = At @ Y
                beta = solve_batched(At @ A, AtY)                                     # (H, k + p, m)
                sse = total - np.einsum("hkm,hkm->h", beta, AtY)
                norms = np.array([[self._slopes[c][1] for c in row] for row in cols.tolist()])
                constants = np.array([[self.bank[c].params[0] for c in row] for row in cols.tolist()])
                # Raw inputs of extreme magnitude (scale=None) can overflow these products: the move
                # is then inf or NaN, which is simply not trusted below.
                with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                    weight = np.take_along_axis(beta, pos[:, :, None], axis=1) / self.cache.scale_[cols][:, :, None]
                    slope = beta[:, k:, :] / norms[:, :, None]                            # coefficient x move
                    denominator = (weight * weight).sum(axis=2)
                    move = np.where(denominator > 0, (weight * slope).sum(axis=2) / denominator, np.inf)
                # Trusted only when every implied move stays within about a grid step.
                trusted = (np.abs(move) <= 0.2 * np.abs(constants) + 0.1 / radius).all(axis=1)
                for (subset, _), ok, value in zip(chunk, trusted.tolist(), sse.tolist(), strict=True):
                    if ok:
                        score[subset] = min(score[subset], value)
        rest = [t for t in ranked if t not in score]
        return sorted(score, key=lambda t: score[t]) + rest

    def _refine_targets(self, ranked: Sequence[tuple[int, ...]], n_signatures: int,
                        variants: int = 2, skip_refined: bool = True) -> list[tuple[int, ...]]:
        """Sets to refine: the best set of each of the ``n_signatures`` best signatures that have
        inner constants, plus up to ``variants - 1`` more of each whose constants differ by more
        than 25 % (another start for the nonlinear fit, which can have several local optima)."""
        firsts: dict = {}
        out: list[tuple[int, ...]] = []
        head = list(ranked[:3000])
        if not head:
            return out
        # Sets far behind the best of their size cannot catch up by polishing constants.
        cutoff = self.config.refine_cutoff * min(self.records[head[0]], self._best_by_size.get(len(head[0]), np.inf))
        sse = np.fromiter(map(self.records.__getitem__, head), dtype=float, count=len(head))
        arr = self._id_array(head)
        hopeful = (sse <= cutoff) & ((arr >= 0) & (self._param_counts()[arr] > 0)).any(axis=1)
        codes = self._signature_codes(arr).tolist()
        for i in np.flatnonzero(hopeful).tolist():
            subset = head[i]
            if skip_refined and subset in self.refined:
                continue
            sig = codes[i]
            seen = firsts.get(sig)
            if seen is None:
                if len(firsts) >= n_signatures:
                    continue
                firsts[sig] = [subset]
                out.append(subset)
            elif len(seen) < variants and all(self._differs(subset, other) for other in seen):
                seen.append(subset)
                out.append(subset)
        return out

    def best_in_signature(self, subset: tuple[int, ...], limit: int = 5_000) -> tuple[int, ...]:
        """The best set with the same term shapes as ``subset``: every combination of the bank's
        grid (and refined) constants for those shapes is solved on the Gram cache.

        Refinement is local, and a term set can have several local optima (x*cos(1.5*x) and
        x*cos(5.4*x) may both fit); starting it from the best grid combination of the whole
        signature, rather than from whichever combination the growth step happened to reach,
        puts it in the basin of the global optimum far more often. Large products are thinned
        to about ``limit`` sets by keeping every second grid value of the longest lists.
        """
        by_template: dict[str, list[int]] = {}
        for j, c in enumerate(self.bank):
            by_template.setdefault(c.template.name, []).append(j)
        options = [list(by_template[self.bank[c].template.name]) for c in subset]
        while math.prod(len(o) for o in options) > limit:
            longest = max(range(len(options)), key=lambda i: len(options[i]))
            keep = set(options[longest][::2]) | {subset[longest]}
            options[longest] = [j for j in options[longest] if j in keep]
        # The answer depends only on the candidate lists (the Gram cache of existing columns never
        # changes), and targets of one signature often share them: each is solved once.
        key = tuple(tuple(o) for o in options)
        if key in self._signature_best:
            return self._signature_best[key]
        grids = np.meshgrid(*[np.asarray(o, dtype=np.intp) for o in options], indexing="ij")
        combos = np.sort(np.stack([g.ravel() for g in grids], axis=1), axis=1)
        distinct = (np.diff(combos, axis=1) != 0).all(axis=1) if combos.shape[1] > 1 else np.ones(len(combos), bool)
        combos = np.unique(combos[distinct], axis=0)
        if len(combos) == 0:
            return subset
        best_sse, best = self.records.get(subset, np.inf), subset
        for start in range(0, len(combos), 50_000):
            sse, _ = self.cache.solve(combos[start:start + 50_000])
            i = int(np.argmin(sse))
            if sse[i] < best_sse:
                best_sse, best = float(sse[i]), tuple(int(c) for c in combos[start + i])
        self.n_evaluated += len(combos)
        self._record(best, best_sse)
        self._signature_best[key] = best
        return best

    def _constants(self, subset: tuple[int, ...]) -> np.ndarray:
        cands = sorted((self.bank[c] for c in subset), key=lambda c: (c.template.name, c.params))
        return np.array([p for c in cands for p in c.params], dtype=float)

    def _differs(self, a: tuple[int, ...], b: tuple[int, ...], rel: float = 0.25) -> bool:
        ca, cb = self._constants(a), self._constants(b)
        return bool(np.any(np.abs(ca - cb) > rel * np.maximum(np.abs(cb), 1e-12)))

    def _rank(self, subsets: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
        unique = list(dict.fromkeys(s for s in subsets if s in self.records))
        sse = np.array([self.records[s] for s in unique])
        return self._best_per_signature(unique, sse, self.config.beam_width)

    def swap(self, subset: tuple[int, ...], pool: Sequence[int], max_rounds: int = 3) -> tuple[int, ...]:
        """Local search: replace one term at a time by the best one from ``pool`` (refining the
        result), while that lowers the training error."""
        current = subset
        for _ in range(max_rounds):
            members = set(current)
            trials = sorted({tuple(sorted((members - {out}) | {j})) for out in current for j in pool
                             if j not in members})
            if not trials:
                break
            sse = self.evaluate(trials)
            order = np.argsort(sse, kind="stable")
            best = trials[order[0]]
            if sse[order[0]] >= self.records[current] * (1 - 1e-9):
                break
            if self.config.refine:
                self.refine_best([best], limit=1)
                best = min((best, self._refined_from.get(best, best)), key=lambda t: self.records.get(t, np.inf))
            current = best
            self._check_stop("swap", len(current))
        return current

    def prune(self, subset: tuple[int, ...]) -> None:
        """Backward step: drop each term in turn and refit (refining constants), so that a set
        that carries one spurious term next to the true ones also offers the true ones alone."""
        if len(subset) < 2:
            return
        children = [tuple(c for c in subset if c != out) for out in subset]
        fresh = [t for t in children if t not in self.records]
        if fresh:
            self.evaluate(fresh)
        if self.config.refine:
            # Only children that could compete with the best set of their size are refined.
            cutoff = 2.0 * self._best_by_size.get(len(subset) - 1, np.inf)
            hopeful = sorted((t for t in children if self.records[t] <= cutoff), key=lambda t: self.records[t])
            self.refine_best(hopeful, limit=len(children))
        self._check_stop("prune", len(subset) - 1)

    # -- refinement ---------------------------------------------------------------------------
    def _subsample(self):
        """Scaled training-row subsample and its standardised targets (cached)."""
        if self._sub is None:
            train = self.cache.train
            d = self.data.X.shape[1]
            n_sub = max(self.config.refine_min_rows, self.config.refine_elements // max(d, 1))
            if n_sub >= len(train):
                pos = np.arange(len(train))
            else:
                pos = np.sort(self.rng.choice(len(train), size=n_sub, replace=False))
            rows = train[pos]  # positions in the cache
            self._sub = (rows, self.data.scaled_rows(rows), self.cache.Yt[pos])
        return self._sub

    def refine_set(self, subset: tuple[int, ...]) -> list[Candidate] | None:
        """Fit the inner constants of a term set by variable projection on the row subsample
        (each start set once: the result is remembered)."""
        if subset in self._refined_start:
            return self._refined_start[subset]
        rows, U, Y = self._subsample()
        cands = [self.bank[c] for c in subset]
        fixed = [c for c, cand in zip(subset, cands, strict=True) if cand.n_params == 0]
        fixed_cols = self.cache.S[rows[:, None], np.asarray(fixed, dtype=np.intp)[None, :]]
        result = refine_constants(cands, U, Y, fixed_cols, self.data.data_range, self._subsample_columns,
                                  self.config.max_nfev)
        self._refined_start[subset] = result
        return result

    def _subsample_columns(self, U, candidates: Sequence[Candidate]) -> np.ndarray:
        """Aggregated features (rows, k) of ``candidates`` on the refinement subsample ``U``,
        remembered by candidate (up to :data:`SUBSAMPLE_CACHE_VALUES` values in all)."""
        found = {c.key: self._sub_columns.get(c.key) for c in candidates}
        missing = list({c.key: c for c in candidates if found[c.key] is None}.values())
        if missing:
            fresh = self.data.row_columns(U, missing)
            if self._sub_columns_size + fresh.size > SUBSAMPLE_CACHE_VALUES:
                self._sub_columns.clear()
                self._sub_columns_size = 0
            for j, c in enumerate(missing):
                found[c.key] = self._sub_columns[c.key] = fresh[:, j]
            self._sub_columns_size += fresh.size
        return np.column_stack([found[c.key] for c in candidates])

    def refine_best(self, level: Sequence[tuple[int, ...]], limit: int | None = None) -> list[int]:
        """Refine the first ``limit`` (default ``n_refine``) sets of ``level`` that have inner
        constants; add the refined terms as columns and evaluate the refined sets.
        Returns the new column ids (``self._refined_from`` maps each set to its refined twin)."""
        limit = self.config.n_refine if limit is None else limit
        targets = [s for s in level if s not in self.refined and any(self.bank[c].n_params for c in s)][:limit]
        if not targets:
            return []
        refined_sets: list[tuple[tuple[int, ...], list[Candidate]]] = []
        for subset in targets:
            if self._past_deadline():
                # Each refinement takes a while; the caller's next stop check ends the search,
                # after the sets refined so far have joined the bank.
                break
            self.refined.add(subset)
            start = self.best_in_signature(subset) if self.config.signature_grid else subset
            result = self.refine_set(start)
            if result is not None:
                refined_sets.append((subset, result))
        new = [c for _, cands in refined_sets for c in cands if c.key not in self.index]
        unique = list({c.key: c for c in new}.values())
        new_ids: list[int] = []
        if unique:
            S_new = self.data.columns(unique)
            finite = np.isfinite(S_new).all(axis=0) & (np.ptp(S_new[self.cache.train], axis=0) > 0)
            keep = [c for c, ok in zip(unique, finite, strict=True) if ok]
            if keep:
                new_ids = self.cache.add_columns(S_new[:, finite])
                for c, j in zip(keep, new_ids, strict=True):
                    self.index[c.key] = j
                    self.bank.append(c)
        for origin, cands in refined_sets:
            if all(c.key in self.index for c in cands):
                twin = tuple(sorted({self.index[c.key] for c in cands}))
                if len(twin) == len(origin):
                    if twin not in self.records:
                        self.evaluate([twin])
                    self.refined.add(twin)
                    self._refined_from[origin] = twin
        return new_ids

    # -- driver -------------------------------------------------------------------------------
    def run(self, ids: Sequence[int]) -> None:
        """Search, then swap-search the best set of every size; stops early on the time budget
        or the callback (keeping everything evaluated so far)."""
        ids = list(ids)
        try:
            levels = self.search(ids)
            exhaustive = self._n_subsets(len(ids)) <= self.config.exhaustive_limit
            if exhaustive and not self._refined_from:
                return  # every subset was solved exactly: nothing to improve locally
            self.complete_with_powers(max_size=len(levels))
            pool = sorted(set(ids) | set(range(len(ids), len(self.bank))))  # base and refined terms
            for level in levels:
                best = min(level, key=lambda t: self.records[t])
                swapped = self.swap(best, pool)
                for subset in dict.fromkeys((best, swapped)):
                    self.prune(subset)
            # A front set often carries the true terms plus one spurious term that soaks up a
            # constant's misfit; dropping each term in turn (and refitting) exposes the true set.
            done: set[tuple[int, ...]] = set()
            for _ in range(1):
                front = [t for t in self.search_front() if len(t) > 1 and t not in done]
                if not front:
                    break
                for subset in front:
                    done.add(subset)
                    self.prune(subset)
        except _Stop:
            pass

    def complete_with_powers(self, n_pairs: int = 200, max_size: int | None = None) -> None:
        """Pair every non-power term, and the best pairs of them, with every subset of the powers.

        Growing sets one term at a time misses truths such as x**4 + x**3 + x**2 + sin(3.6*x):
        no part of them stands out on its own. The powers are few (max_degree of them), so all
        their subsets can be tried next to each single shape and each promising pair of shapes,
        on the Gram cache; the best results per size are then refined like any other set.
        """
        powers = [j for j, c in enumerate(self.bank) if c.template.power is not None]
        others = [j for j, c in enumerate(self.bank) if c.template.power is None]
        # No larger than the sizes the search found worth growing to.
        max_terms = min(self.config.max_terms, max_size or self.config.max_terms)
        if not powers or not others or max_terms < 2:
            return
        groups = self._record_groups()
        if 2 in groups:
            two, arr, sse = groups[2]
            is_power = np.array([c.template.power is not None for c in self.bank])
            shapes = np.flatnonzero(~is_power[arr].any(axis=1))
            pairs = [two[i] for i in shapes[np.argsort(sse[shapes], kind="stable")][:n_pairs]]
        else:
            pairs = []
        by_size: dict[int, list[tuple[int, ...]]] = {}
        power_arr = np.asarray(powers, dtype=np.intp)
        for cores in (np.asarray(others, dtype=np.intp)[:, None], np.asarray(pairs, dtype=np.intp).reshape(-1, 2)):
            if not len(cores):
                continue
            for r in range(1, max_terms - cores.shape[1] + 1):
                extras = power_arr[np.asarray(list(combinations(range(len(powers)), r)), dtype=np.intp)]
                if not len(extras):
                    continue
                # With many powers (max_degree=32: 5k triples per shape, millions of sets) this
                # stage is the longest of the search: the budget is checked every few batches of
                # sets, not only at its end (the cores are taken in order, so the sets are too).
                step = max(1, _DEADLINE_BATCH // len(extras))
                for first in range(0, len(cores), step):
                    self._check_deadline()
                    part = cores[first:first + step]
                    block = np.sort(np.hstack([np.repeat(part, len(extras), axis=0),
                                               np.tile(extras, (len(part), 1))]), axis=1)
                    by_size.setdefault(block.shape[1], []).extend(
                        t for t in map(tuple, block.tolist()) if t not in self.records)
        for k in sorted(by_size):
            subsets = list(dict.fromkeys(by_size[k]))
            sse = np.empty(len(subsets))
            for start in range(0, len(subsets), _DEADLINE_BATCH):
                self._check_deadline()
                sse[start:start + _DEADLINE_BATCH] = self.evaluate(subsets[start:start + _DEADLINE_BATCH])
            ranked = [subsets[i] for i in np.argsort(sse, kind="stable")]
            if self.config.refine:
                targets = self._refine_targets(self.gauss_newton_rank(ranked), self.config.n_refine, variants=1)
                self.refine_best(targets, limit=len(targets))
            self._check_stop("powers", k)

    def entry(self, subset: tuple[int, ...], sse: float) -> FrontEntry:
        """A :class:`FrontEntry` for a set of bank columns with the given training SSE."""
        cands = [self.bank[c] for c in subset]
        complexity = sum(c.complexity + 2 for c in cands) + 1 + len(cands)
        n_inner = sum(c.n_params for c in cands)
        return FrontEntry(columns=subset, complexity=complexity, n_params=len(cands) + n_inner,
                          n_inner=n_inner, sse=sse)

    def _record_groups(self) -> dict[int, tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]]:
        """Records grouped by size: (sets, (C, k) column array, (C,) SSE), for vectorised scans."""
        out = {}
        for k, (subsets, arrays) in self._groups.items():
            if len(arrays) > 1:
                arrays[:] = [np.concatenate(arrays)]
            sse = np.fromiter(map(self.records.__getitem__, subsets), dtype=float, count=len(subsets))
            out[k] = (subsets, arrays[0], sse)
        return out

    def search_front(self) -> list[tuple[int, ...]]:
        """Recorded sets that no simpler recorded set beats (see :func:`pareto_front`)."""
        cost = np.array([c.complexity + 3 for c in self.bank], dtype=float)  # term, coefficient, *, +
        params = np.array([c.n_params + 1 for c in self.bank], dtype=float)
        groups = self._record_groups()
        subsets = [t for k in sorted(groups) for t in groups[k][0]]
        sse = np.concatenate([groups[k][2] for k in sorted(groups)])
        out: dict[tuple[int, ...], None] = {}
        for weights in (cost, params):
            size = np.concatenate([weights[groups[k][1]].sum(axis=1) for k in sorted(groups)])
            order = np.lexsort((sse, size))
            running = np.minimum.accumulate(sse[order])
            # Keep an entry when it beats everything simpler: its SSE is a new running minimum.
            previous = np.r_[np.inf, running[:-1]]
            for i in order[sse[order] < previous * (1 - 1e-12)]:
                out[subsets[i]] = None
        return list(out)

    def finalists(self, per_size: int = 5, limit: int = 5000) -> list[tuple[int, ...]]:
        """Sets worth judging on all rows: every recorded set when there are at most ``limit``;
        otherwise the search front, the ``per_size`` best sets of each size and the refined sets
        within 50 % of the best of their size."""
        if len(self.records) <= limit:
            return list(self.records)
        chosen: set[tuple[int, ...]] = set(self.search_front())
        for subsets, _, sse in self._record_groups().values():
            chosen.update(subsets[i] for i in np.argsort(sse, kind="stable")[:per_size])
        # Refined sets close to the best of their size: on a row subsample a wrong set can edge
        # out the true one by chance, so these are all judged on every row.
        chosen.update(t for t in self._refined_from.values()
                      if self.records[t] <= 1.5 * self._best_by_size.get(len(t), np.inf))
        return sorted(chosen, key=lambda t: (len(t), t))

def refine_constants(cands: Sequence[Candidate], U, Y: np.ndarray, fixed_cols: np.ndarray, data_range: DataRange,
                     column_fn: Callable, max_nfev: int = 30) -> list[Candidate] | None:
    """Fit the inner constants of a term set by variable projection.

    Minimises ||r(theta)||^2 with r(theta) = (I - P(theta)) Y, where P projects onto the span of
    a constant, ``fixed_cols`` and the aggregated features of the terms with inner constants
    evaluated at theta: the outer coefficients are solved exactly inside every evaluation.
    Bounds keep every term finite on the training range (see ``Template.bounds``).

    Parameters
    ----------
    cands : the set's terms; those with inner constants move, the others stay fixed
    U : scaled rows (rows, n_features), numpy array or torch tensor
    Y : targets on those rows (rows, m)
    fixed_cols : aggregated features (rows, n_fixed) of the terms without inner constants
    data_range : range of the scaled training inputs (sets the bounds)
    column_fn : ``column_fn(U, [candidate])`` -> (rows, 1) aggregated feature
    max_nfev : evaluation budget of ``scipy.optimize.least_squares``

    Returns
    -------
    The candidates with refined constants (``CONSTANT_DIGITS`` significant digits, or
    ``FULL_CONSTANT_DIGITS`` where rounding to fewer raises the SSE by over 0.1 %), in the
    order given, or None when there is nothing to refine or the solver fails.
    """
    moving = [i for i, c in enumerate(cands) if c.n_params > 0]
    if not moving:
        return None
    theta0, lower, upper, slices = [], [], [], []
    for i in moving:
        c = cands[i]
        lo, hi = c.template.bounds(data_range, c.params)
        slices.append(slice(len(theta0), len(theta0) + c.n_params))
        theta0.extend(c.params)
        lower.extend(lo)
        upper.extend(hi)
    theta0, lower, upper = (np.asarray(v, dtype=float) for v in (theta0, lower, upper))
    width = upper - lower
    theta0 = np.clip(theta0, lower + 1e-6 * width, upper - 1e-6 * width)
    Yc = Y - Y.mean(axis=0)
    # Columns come from float32 term values (the fast path), so finite-difference steps must
    # stand well clear of float32 round-off.
    rel_step = 1e-3

    def column(i_move: int, theta: np.ndarray) -> np.ndarray:
        # Python floats, not numpy float64 scalars: those would promote the float32 evaluation
        # to float64 (NumPy's promotion rules) and make every evaluation several times slower.
        c = cands[moving[i_move]]
        return column_fn(U, [Candidate(c.template, tuple(float(v) for v in theta[slices[i_move]]))])[:, 0]

    fixed, _ = _unit_columns(fixed_cols - fixed_cols.mean(axis=0))
    identity = np.eye(fixed.shape[1] + len(moving))

    def residual_from(cols: list[np.ndarray]) -> np.ndarray:
        moved = np.column_stack(cols)
        if not np.isfinite(moved).all():
            return np.full(Yc.size, 1e6)  # out of the term's domain: a large, finite penalty
        A = np.hstack([fixed, _unit_columns(moved - moved.mean(axis=0))[0]])
        # Unit-norm columns keep the small normal equations well conditioned; the jitter only
        # matters for (nearly) collinear columns.
        beta = np.linalg.solve(A.T @ A + 1e-10 * identity, A.T @ Yc)
        return (Yc - A @ beta).ravel()

    memo: dict[bytes, list[np.ndarray]] = {}

    def base_columns(theta: np.ndarray) -> list[np.ndarray]:
        key = theta.tobytes()
        if key not in memo:
            memo.clear()
            memo[key] = [column(i, theta) for i in range(len(moving))]
        return memo[key]

    def fun(theta: np.ndarray) -> np.ndarray:
        return residual_from(base_columns(theta))

    def jac(theta: np.ndarray) -> np.ndarray:
        # Finite differences that recompute only the column a constant belongs to.
        cols = base_columns(theta)
        r0 = residual_from(cols)
        J = np.empty((r0.size, theta.size))
        for i_move, sl in enumerate(slices):
            for j in range(sl.start, sl.stop):
                h = rel_step * max(abs(theta[j]), 0.05)
                if theta[j] + h > upper[j]:
                    h = -h
                t = theta.copy()
                t[j] += h
                trial = list(cols)
                trial[i_move] = column(i_move, t)
                J[:, j] = (residual_from(trial) - r0) / h
        return J

    try:
        # Steps that leave a term's domain are penalised in `fun`; the solver's own arithmetic on
        # such steps must not print numpy warnings into the user's session.
        with np.errstate(all="ignore"):
            result = least_squares(fun, theta0, jac=jac, bounds=(lower, upper), method="trf", x_scale="jac",
                                   max_nfev=max_nfev, xtol=1e-5, ftol=1e-8)
    except (ValueError, np.linalg.LinAlgError):
        return None
    def rounded(digits: int) -> np.ndarray:
        return np.clip([float(f"{v:.{digits}g}") for v in result.x], lower, upper)

    theta = rounded(CONSTANT_DIGITS)
    # Readable constants only where rounding costs nothing the data can see: on (nearly) exact
    # data, sin(1.2345*x) rounded to sin(1.234*x) would leave a residual that extra junk terms
    # then absorb. Keep the solver's precision when rounding raises the SSE by more than 0.1 %.
    if float(np.sum(fun(theta) ** 2)) > float(np.sum(result.fun ** 2)) * (1 + 1e-3) + 1e-300:
        theta = rounded(FULL_CONSTANT_DIGITS)
    out = list(cands)
    for i_move, i in enumerate(moving):
        out[i] = Candidate(cands[i].template, tuple(float(v) for v in theta[slices[i_move]]))
    return out
