"""``VSR``: vectorized symbolic regression as a scikit-learn estimator.

The model is f(x_1..x_d) = c0 + sum_k c_k sum_i phi_k(u_i), where u = scaled x (see
:mod:`.scaling`) and the terms phi_k are shared by every input variable. Fitting:

1. validate the data (clear :class:`~taskneurons.errors.DataError` on bad input);
2. fit the input scaling and split off a validation part;
3. aggregate every candidate term over the features, in row blocks (:mod:`.features`), on
   the training rows or, for large data, a row subsample of them;
4. search term sets on the cached Gram matrices and refine inner constants (:mod:`.search`);
5. judge the finalists on all rows: the training rows give the front and the BIC, the
   validation rows the ``val_loss``; pick one formula with a parsimony rule (:mod:`.selection`);
6. polish the chosen formula's inner constants on (up to a budget of) all training rows and
   refit its outer coefficients exactly, in float64, on all rows.

Where a formula lives: ``formula_`` is written in the *scaled* inputs u (what the estimator and
a task-based layer fed with ``scaler_.transform(X)`` compute); ``formula_raw_`` is the same model
in raw units when one common map scales every feature (``scale="shared"`` or None).
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse
import sympy as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from .._checks import is_integer, is_real
from ..errors import DataError, FormulaError, NumericalError
from ..formula import Formula, Term
from ..formula import X as SYMBOL
from .features import GramCache, aggregate, float32_safe, is_cpu
from .fit import least_squares_coefficients, power_of_two_unit
from .grammar import Candidate, DataRange, generate_candidates, out_of_range_families, parse_bases
from .scaling import SCALE_MODES, AffineScaler
from .search import DataAccess, SearchConfig, TermSearch, refine_constants
from .selection import SELECTIONS, bic, pareto_front, select

__all__ = ["VSR"]

_TASKS = ("regression", "classification")
_CLASSIFICATION_MODES = ("onehot", "label")
_BACKENDS = ("auto", "numpy", "torch")
#: Default number of terms for an extended grammar (powers alone default to all of them).
_DEFAULT_EXTENDED_TERMS = 4
#: Below this many rows no validation split is made (it would leave too few to fit on).
_MIN_ROWS_FOR_VALIDATION = 20
#: Values (rows x features x candidate terms) the search evaluates before it subsamples rows.
_SEARCH_BUDGET = 1e8
_MIN_SEARCH_ROWS = 300
#: Values (rows x features) the polish of the leading formulas' constants may use, and how many.
_POLISH_BUDGET = 5e5
_N_POLISH = 3
#: Largest one-hot target (rows x classes) classification builds (0.75 GiB of float64).
_MAX_ONEHOT_VALUES = 100_000_000


#: What ``random_state`` may be besides None and a non-negative int (numpy's own seed objects too).
_RANDOM_STATE_TYPES = (np.random.Generator, np.random.RandomState, np.random.SeedSequence, np.random.BitGenerator)


def _is_real(value) -> bool:
    """A finite real number (numpy floats included), not bool."""
    return is_real(value) and math.isfinite(value)


class VSR(RegressorMixin, BaseEstimator):
    """Vectorized symbolic regression: one formula g shared by every input variable.

    Prediction: ``f(x) = c0 + sum_k c_k * sum_i phi_k(u_i)`` with ``u`` the scaled inputs; the
    constant is added once. Outer coefficients are solved exactly by least squares; the search
    covers only the term structure and inner constants.

    Parameters
    ----------
    bases : str or sequence of str, default "poly"
        Term families: ``"poly"`` (x, x**2, ..., x**max_degree), ``"trig"``, ``"exp"``, ``"log"``,
        ``"sqrt"``, ``"tanh"``, ``"rational"``, or ``"all"`` (see :mod:`taskneurons.vsr.grammar`).
    max_degree : int, default 7
        Highest power of x.
    max_terms : int or None, default None
        Most terms in a formula. None: ``max_degree`` for ``bases="poly"`` (every subset of the
        powers is tried), 4 when other families are on.
    scale : {"minmax", "shared", None}, default "minmax"
        Input scaling (see :mod:`taskneurons.vsr.scaling`). ``formula_`` is written in the
        *scaled* inputs u; with ``"shared"`` or None, ``formula_raw_`` is the same model written
        in raw units.
    task : {"regression", "classification"}, default "regression"
    classification : {"onehot", "label"}, default "onehot"
        How class labels become targets: ``"onehot"`` fits one column per class with shared
        terms (a single 0/1 column for two classes) and predicts the class with the largest
        output; ``"label"`` is the paper's way: regress the class index 0..C-1 and round.
    selection : {"bic", "validation", "best_val"}, default "bic"
        How one formula is picked from the front (see :mod:`taskneurons.vsr.selection`).
    parsimony : float, default 1.0
        Tolerance of the parsimony rule: BIC within ``2 * parsimony`` of the lowest, or
        validation error within ``parsimony`` standard errors of the lowest; the simplest formula
        within it wins. 0 picks the best score outright.
    validation_fraction : float, default 0.2
        Share of rows held out for the front's ``val_loss`` (and ``selection="validation"``).
        The chosen formula's outer coefficients are then refitted on all rows.
    beam_width : int, default 20
        Combinations of term shapes kept per size for local search (extended grammars).
    refine : bool, default True
        Refine inner constants by nonlinear least squares (variable projection).
    random_state : int >= 0, numpy Generator or RandomState, or None
        Seeds the validation split and the refinement subsample.
    time_budget : float or None
        Seconds for the search (term-set enumeration and refinement of inner constants), counted
        from the start of ``fit``; when they run out the best formula found so far is kept and
        ``stopped_early_`` is ``"time_budget"``. It bounds the search, not ``fit``: the budget is
        checked between search sizes, between refinements and every ~1e5 term sets, so the search
        overruns it by at most one such step (typically well under a second). Judging the
        finalists on all rows and the final float64 fit come after it, so ``fit`` takes longer
        (on large data seconds more: about 2 s for 20,000 x 200 with ``bases="all"``). Terms of
        size 1 are always evaluated, so ``time_budget=0`` gives the best single grid term.
    n_jobs : int or None
        Threads over row blocks when aggregating features (numpy backend); -1 uses every core,
        -2 all but one (as in joblib); 0 is refused.
    device : str, default "cpu"
        Where features are computed; a CUDA device (``"cuda"``) uses torch.
    backend : {"auto", "numpy", "torch"}, default "auto"
        ``"auto"``: numpy on the CPU (``"cpu"`` or ``"cpu:0"``), torch elsewhere. ``"torch"`` on
        ``"cpu"`` is supported.
    chunk_size : int or None
        Rows per block (default: about 2**16 values per block, so memory stays flat in n and d).
    verbose : bool, default False
        Progress bars per stage.
    callback : callable or None
        ``callback(info: dict) -> bool``, called after each search size and refinement round with
        ``stage``, ``n_terms``, ``n_evaluated``, ``best_terms``, ``best_loss`` (standardised
        training MSE) and ``elapsed`` (seconds); returning True stops the search early.

    Attributes
    ----------
    formula_ : Formula
        The chosen formula in the scaled inputs u. With several outputs, the first output's
        formula (for binary one-hot classification, the positive class); all outputs share its
        terms (``terms_``), which is all a task-based layer needs.
    formulas_ : list of Formula
        One formula per output, same terms, own coefficients.
    formula_raw_, formulas_raw_ : Formula / list, or None
        The same models written in raw input units (``scale="shared"`` or None; None for
        ``"minmax"``, where no single raw-unit formula exists, and where float64 cannot write it,
        e.g. raw inputs near 1e308).
    terms_ : tuple of Term
        The shared terms.
    coef_ : ndarray of shape (n_outputs, n_terms)
    intercept_ : ndarray of shape (n_outputs,)
    pareto_ : DataFrame
        The front: formulas that no simpler one beats, "simpler" meaning fewer nodes or fewer
        fitted numbers (sorted by complexity). Columns ``complexity`` (node count), ``n_terms``,
        ``train_loss`` and ``val_loss`` (MSE in target units, averaged over outputs, inf beyond float64; fit on the
        training split), ``bic``, ``selected`` and ``formula`` (first-output Formula, scaled
        inputs, coefficients refitted on all rows).
    scaler_ : AffineScaler
    classes_ : ndarray (classification only)
    n_features_in_, feature_names_in_ : as in scikit-learn
    n_evaluated_ : int, number of term sets solved
    stopped_early_ : None, "time_budget" or "callback"
    fit_time_ : float, seconds spent in ``fit``

    Notes
    -----
    ``VSR`` is a scikit-learn *regressor* whatever ``task`` says (``is_regressor`` is True, there is
    no ``predict_proba``): with ``task="classification"`` it predicts labels and ``score`` is the
    accuracy, but scikit-learn's helpers still treat it as a regressor. In particular
    ``cross_val_score(VSR(task="classification"), X, y, cv=5)`` splits with plain ``KFold``, not
    ``StratifiedKFold``, so with rows sorted by label a test fold can hold classes its training
    folds never saw. Pass ``cv=StratifiedKFold(5, shuffle=True)`` explicitly, or use
    :class:`taskneurons.TaskNeuronClassifier`, the library's scikit-learn classifier.

    Examples
    --------
    >>> from taskneurons.vsr import VSR, make_vsr_task
    >>> X, y, truth = make_vsr_task(1000, 20, terms=["x**2", "x**5"], random_state=0)
    >>> model = VSR(scale=None, random_state=0).fit(X, y)
    >>> model.formula_.same_terms(truth)
    True
    """

    def __init__(self, bases: str | Sequence[str] = "poly", max_degree: int = 7, max_terms: int | None = None,
                 scale: str | None = "minmax", task: str = "regression", classification: str = "onehot",
                 selection: str = "bic", parsimony: float = 1.0, validation_fraction: float = 0.2,
                 beam_width: int = 20, refine: bool = True, random_state=None, time_budget: float | None = None,
                 n_jobs: int | None = None, device: str = "cpu", backend: str = "auto",
                 chunk_size: int | None = None, verbose: bool = False,
                 callback: Callable[[dict], object] | None = None):
        self.bases = bases
        self.max_degree = max_degree
        self.max_terms = max_terms
        self.scale = scale
        self.task = task
        self.classification = classification
        self.selection = selection
        self.parsimony = parsimony
        self.validation_fraction = validation_fraction
        self.beam_width = beam_width
        self.refine = refine
        self.random_state = random_state
        self.time_budget = time_budget
        self.n_jobs = n_jobs
        self.device = device
        self.backend = backend
        self.chunk_size = chunk_size
        self.verbose = verbose
        self.callback = callback

    # -- scikit-learn plumbing ----------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        # The model class (one formula shared by all features) cannot fit arbitrary linear
        # targets such as sklearn's random regression problems.
        tags.regressor_tags.poor_score = True
        return tags

    # -- parameter and data checks ------------------------------------------------------------
    def _check_params(self) -> tuple[tuple[str, ...], int, str]:
        families = parse_bases(self.bases)
        if not is_integer(self.max_degree) or not 1 <= self.max_degree <= 32:
            raise ValueError(f"max_degree must be an integer in [1, 32], got {self.max_degree!r}")
        if self.max_terms is not None and (not is_integer(self.max_terms) or self.max_terms < 1):
            raise ValueError(f"max_terms must be a positive integer or None, got {self.max_terms!r}")
        if self.scale not in SCALE_MODES:
            raise ValueError(f"scale must be 'minmax', 'shared' or None, got {self.scale!r}")
        if self.task not in _TASKS:
            raise ValueError(f"task must be one of {_TASKS}, got {self.task!r}")
        if self.classification not in _CLASSIFICATION_MODES:
            raise ValueError(f"classification must be one of {_CLASSIFICATION_MODES}, got {self.classification!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if not (_is_real(self.parsimony) and self.parsimony >= 0):
            raise ValueError(f"parsimony must be a number >= 0, got {self.parsimony!r}")
        if not (_is_real(self.validation_fraction) and 0 <= self.validation_fraction < 0.9):
            raise ValueError(f"validation_fraction must be in [0, 0.9), got {self.validation_fraction!r}")
        if not is_integer(self.beam_width) or self.beam_width < 1:
            raise ValueError(f"beam_width must be a positive integer, got {self.beam_width!r}")
        if self.n_jobs is not None and not (is_integer(self.n_jobs) and self.n_jobs != 0):
            raise ValueError(f"n_jobs must be a nonzero integer or None (as in joblib: -1 uses every core, "
                             f"-2 all but one), got {self.n_jobs!r}")
        # A string such as "no" would be truthy: refuse it rather than read it as True (an int
        # verbosity level, as scikit-learn estimators take, is fine for verbose).
        if not isinstance(self.refine, (bool, np.bool_)):
            raise ValueError(f"refine must be True or False, got {self.refine!r}")
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise ValueError(f"verbose must be True or False, got {self.verbose!r}")
        rs = self.random_state
        if not (rs is None or (is_integer(rs) and rs >= 0) or isinstance(rs, _RANDOM_STATE_TYPES)):
            raise ValueError(f"random_state must be None, a non-negative integer, a numpy Generator or "
                             f"RandomState, got {rs!r}")
        if self.time_budget is not None and not (
                (_is_real(self.time_budget) or self.time_budget == math.inf) and self.time_budget >= 0):
            raise ValueError(f"time_budget must be a number of seconds >= 0 or None, got {self.time_budget!r}")
        if self.chunk_size is not None and (not is_integer(self.chunk_size) or self.chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive integer or None, got {self.chunk_size!r}")
        if self.callback is not None and not callable(self.callback):
            raise ValueError("callback must be callable (info: dict) -> bool, or None")
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {self.backend!r}")
        device = str(self.device)
        on_cpu = is_cpu(device)
        backend = self.backend if self.backend != "auto" else ("numpy" if on_cpu else "torch")
        if backend == "numpy" and not on_cpu:
            raise ValueError(f"backend='numpy' runs on the CPU only; use backend='torch' for device={device!r}")
        if backend == "torch":
            import torch

            try:
                dev = torch.device(device)
            except RuntimeError as exc:
                raise ValueError(f"unknown device {device!r}: {exc}") from None
            if dev.type not in ("cpu", "cuda"):
                raise ValueError(f"device={device!r}: VSR runs on 'cpu' or 'cuda' devices")
            if dev.type == "cuda" and not torch.cuda.is_available():
                raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu'")
        return families, int(self.max_degree), backend

    def _check_X(self, X, reset: bool) -> np.ndarray:
        """Validated 2-D float array (float32 kept as is, never copied when already numeric)."""
        if hasattr(X, "dtypes") and hasattr(X, "columns"):
            bad = [str(c) for c, dt in X.dtypes.items()
                   if not (pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))]
            if bad:
                raise DataError(f"X has non-numeric columns {bad}; encode them as numbers first "
                                "(e.g. one-hot with pandas.get_dummies or sklearn's OneHotEncoder)")
        try:
            X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32], ensure_all_finite=False,
                              ensure_min_samples=1, ensure_min_features=1)
        except ValueError as exc:
            text = str(exc)
            if "could not convert" in text or "convert" in text and "float" in text:
                raise DataError(f"X has non-numeric values ({text}); encode categorical columns as "
                                "numbers first (one-hot or ordinal)") from None
            raise DataError(f"{text} Pass X as a 2-D numeric array of shape (n_samples, n_features).") from None
        _check_finite(X, "X")
        return X

    def _check_y(self, y, n_samples: int) -> np.ndarray:
        """Targets as a float array (n, m); sets classes_ for classification."""
        if scipy.sparse.issparse(y):
            raise DataError(f"y is a sparse {type(y).__name__}; VSR needs dense targets: pass y.toarray() "
                            "(and .ravel() for a single output)")
        y_arr = np.asarray(y) if not hasattr(y, "to_numpy") else y.to_numpy()
        if np.iscomplexobj(y_arr):
            raise DataError("Complex data not supported: y has complex values and VSR fits real targets; pass "
                            "y.real, or the real and imaginary parts as two output columns")
        self._y_ndim = 1 if self.task == "classification" else y_arr.ndim
        if y_arr.ndim == 0 or y_arr.ndim > 2:
            raise DataError(f"y must be 1-D (n_samples,) or 2-D (n_samples, n_outputs), got shape {y_arr.shape}")
        if y_arr.shape[0] != n_samples:
            raise DataError(f"X has {n_samples} rows but y has {y_arr.shape[0]}; they must have the same length")
        if self.task == "classification":
            if y_arr.ndim == 2 and y_arr.shape[1] == 1:
                y_arr = y_arr[:, 0]
            if y_arr.ndim != 1:
                raise DataError("task='classification' takes one label per row (y of shape (n_samples,))")
            if y_arr.dtype.kind == "f" and not np.isfinite(y_arr).all():
                raise DataError("y contains NaN or infinity; remove those rows first")
            if y_arr.dtype.kind == "O":
                n_missing = int(pd.isna(y_arr).sum())
                if n_missing:
                    raise DataError(f"y has {n_missing} missing label(s) (None/NaN); remove those rows first")
            try:
                with warnings.catch_warnings():  # too many classes are refused below, saying what to do
                    warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
                    check_classification_targets(y_arr)
            except ValueError as exc:
                raise DataError(f"{exc}; task='classification' needs class labels") from None
            self.classes_, codes = np.unique(y_arr, return_inverse=True)
            n_classes = len(self.classes_)
            if n_classes < 2:
                raise DataError(f"y has one class only ({self.classes_.tolist()[0]!r}); classification needs at least 2")
            if n_samples > 20 and n_classes > round(0.5 * n_samples):  # scikit-learn's threshold, as an error
                raise DataError(f"y has {n_classes} classes for {n_samples} samples: most classes have a single "
                                "example, too few to fit a formula to. If y is a measured quantity use "
                                "task='regression'; otherwise merge rare classes")
            if self.classification == "onehot" and n_samples * n_classes > _MAX_ONEHOT_VALUES:
                raise DataError(f"y has {n_classes} classes for {n_samples} samples: one-hot targets would hold "
                                f"{n_samples * n_classes:.3g} values, more than the limit of "
                                f"{_MAX_ONEHOT_VALUES:.0e}; merge rare classes, use fewer rows, or use "
                                "classification='label'")
            if self.classification == "label":
                return codes.astype(float)[:, None]
            onehot = np.zeros((n_samples, len(self.classes_)))
            onehot[np.arange(n_samples), codes] = 1.0
            return onehot[:, 1:] if len(self.classes_) == 2 else onehot
        try:
            Y = np.asarray(y_arr, dtype=float)
        except (TypeError, ValueError):
            raise DataError("y must be numeric for task='regression'; for class labels use "
                            "task='classification'") from None
        _check_finite(Y, "y")
        Y = Y.reshape(n_samples, -1)
        if Y.shape[1] == 0:
            raise DataError("y has no columns")
        constant = np.ptp(Y, axis=0) == 0
        if constant.any():
            which = "y is constant" if Y.shape[1] == 1 else f"columns {np.flatnonzero(constant).tolist()} of y are constant"
            raise DataError(f"{which} (value {Y[0, np.flatnonzero(constant)[0]]:g}); there is nothing for a "
                            "formula to fit")
        return Y

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, X, y) -> VSR:
        """Search the formula for ``X`` (n_samples, n_features) and ``y`` (n_samples[, n_outputs]).

        The linear algebra of the search is many small solves and products (k-by-k systems,
        rows-by-k matrices), where BLAS threads cost more in synchronisation than they gain
        (measured: 1.4x slower on 2 cores), so BLAS runs single-threaded during ``fit`` (and is
        restored afterwards); ``n_jobs`` still spreads the feature aggregation over threads.
        """
        # A failed fit must leave the estimator as it was (a previous fit still usable, or unfitted):
        # the checks run before anything is assigned, but some errors (overflowing terms or
        # targets) are only found midway, after the input checks have set n_features_in_ and co.
        before = dict(self.__dict__)
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                return self._fit(X, y)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit(self, X, y) -> VSR:
        start = time.perf_counter()
        families, max_degree, backend = self._check_params()
        if y is None:
            raise DataError("VSR requires y to be passed, but the target y is None")
        X = self._check_X(X, reset=True)
        n, d = X.shape
        if n < 3:
            raise DataError(f"VSR needs at least 3 samples, got n_samples = {n}")
        Y = self._check_y(y, n)
        self.n_outputs_ = Y.shape[1]
        # Each output is divided by a power of two that brings it below 2 in magnitude: exact (every
        # rounding scales with it, so fits are bit for bit the same), and sums of squares stay
        # finite for |y| up to the largest float64. Coefficients are scaled back at the end.
        y_unit = power_of_two_unit(np.abs(Y).max(axis=0))
        Y = Y / y_unit
        rng = _generator(self.random_state)

        scaler = AffineScaler(self.scale).fit(X)
        self.scaler_ = scaler
        lo_f = np.minimum(scaler.data_min_ * scaler.scale_ + scaler.offset_,
                          scaler.data_max_ * scaler.scale_ + scaler.offset_)
        hi_f = np.maximum(scaler.data_min_ * scaler.scale_ + scaler.offset_,
                          scaler.data_max_ * scaler.scale_ + scaler.offset_)
        self.data_range_ = DataRange(float(lo_f.min()), float(hi_f.max()))
        unwritable = out_of_range_families(families, self.data_range_)
        if unwritable:
            # Only raw inputs (scale=None) get here; dropping those families silently would
            # search a different grammar than the one asked for.
            raise DataError(f"with scale=None the inputs reach |x| = {self.data_range_.radius:.3g}, where the "
                            f"inner constants of the {unwritable} terms (rates such as a ~ 1/|x|**2 in "
                            "1/(1 + a*x**2), or 1/|x| in sin(a*x)) cannot be written in float64; use scale='minmax' or scale='shared', divide X by "
                            "a constant first, or leave those families out of bases")

        n_val = int(round(self.validation_fraction * n)) if n >= _MIN_ROWS_FOR_VALIDATION else 0
        order = rng.permutation(n)
        val = np.sort(order[:n_val])
        train = np.sort(order[n_val:])

        candidates = generate_candidates(families, max_degree, self.data_range_)
        # The search runs on a row subsample when the data are large (ranking term sets needs far
        # fewer rows than the data offer); the finalists are then judged on every row.
        n_search = _search_size(len(train), d, len(candidates))
        search_rows = train if n_search >= len(train) else np.sort(rng.choice(train, n_search, replace=False))
        data = DataAccess(X, scaler, self.data_range_, search_rows, backend=backend, device=str(self.device),
                          chunk_size=self.chunk_size, n_jobs=self.n_jobs, verbose=self.verbose,
                          fast=float32_safe(self.data_range_.radius))
        S = data.columns(candidates)
        with np.errstate(invalid="ignore"):  # inf - inf in the range of overflowing columns
            usable = np.isfinite(S).all(axis=0) & (np.ptp(S, axis=0) > 0)
        if not usable.any():
            if not np.isfinite(S).all(axis=0).any():
                raise DataError("every term overflows float64 on some rows of X (values too large for the "
                                "terms, or for their sum over the features); use scale='minmax' or "
                                "scale='shared', or divide X by a constant first")
            raise DataError("every aggregated feature is constant over the rows of X (are all columns "
                            "constant?); VSR has nothing to fit")
        candidates = [c for c, ok in zip(candidates, usable, strict=True) if ok]
        search_cache = GramCache(S[:, usable], Y[search_rows], np.arange(len(search_rows)), np.arange(0))
        del S

        extended = any(f != "poly" for f in families)
        default_terms = _DEFAULT_EXTENDED_TERMS if extended else max_degree
        max_terms = int(self.max_terms) if self.max_terms is not None else default_terms
        # Never more terms than the training rows can determine (with the constant).
        max_terms = max(1, min(max_terms, len(search_rows) - 2))
        config = SearchConfig(max_terms=max_terms, beam_width=int(self.beam_width), refine=bool(self.refine),
                              deadline=None if self.time_budget is None else start + float(self.time_budget),
                              callback=self.callback, verbose=self.verbose, start_time=start)
        search = TermSearch(search_cache, candidates, data, config, rng)
        search.run(range(len(candidates)))
        self.n_evaluated_ = search.n_evaluated
        self.stopped_early_ = search.stopped

        # Judge the finalists on all rows: training rows for the front, validation rows beside.
        bank = search.bank
        finalists = search.finalists()
        needed = sorted({c for subset in finalists for c in subset})
        # The search rows' values are in the search cache already (same float32 evaluation);
        # only the other rows are aggregated.
        S_full = np.empty((n, len(needed)))
        S_full[search_rows] = search.cache.S[:, needed]
        others = np.setdiff1d(np.arange(n), search_rows, assume_unique=True)
        if len(others):
            S_full[others] = data.columns_at([bank[c] for c in needed], others)
        finite = np.isfinite(S_full).all(axis=0)
        position = {c: j for j, c in enumerate(needed)}
        finalists = [t for t in finalists if all(finite[position[c]] for c in t)]
        cache = GramCache(S_full, Y, train, val)
        del S_full
        entries = []
        for size in sorted({len(t) for t in finalists}):
            group = [t for t in finalists if len(t) == size]
            sse, _ = cache.solve(np.asarray([[position[c] for c in t] for t in group]))
            entries.extend(search.entry(t, float(v)) for t, v in zip(group, sse, strict=True))
        if self.refine and self.stopped_early_ is None:
            entries += self._polish_leaders(pareto_front(entries), cache, position, search, data, train, rng)
        front = pareto_front(entries)
        has_val = len(val) > 0
        per_output = []
        for entry in front:
            cols = [position[c] for c in entry.columns]
            _, beta = cache.solve(np.asarray([cols]))
            beta = beta[0]
            per_output.append(((cache.Yt - cache.Zt[:, cols] @ beta) ** 2).sum(axis=0))
            if has_val:
                errors = cache.val_errors(cols, beta)
                entry.val_sse = float(errors.sum())
                entry.val_se = float(np.sqrt(len(errors)) * errors.std(ddof=1)) if len(errors) > 1 else 0.0
                entry.val_per_output = ((cache.Yv - cache.Zv[:, cols] @ beta) ** 2).mean(axis=0)
        chosen, _ = select(front, self.selection, float(self.parsimony), cache.n_train, cache.n_outputs, has_val)

        rows = []
        with np.errstate(over="ignore"):
            y_var = (cache.y_scale_ * y_unit) ** 2  # variance in target units (inf only for |y| ~ 1e308)
        def final_columns(entry):
            """The entry's aggregated features on all rows, float64 where terms have inner constants
            (the search's float32 values would leave ~1e-7 errors in the reported coefficients)."""
            cands = [bank[c] for c in entry.columns]
            if any(c.n_params for c in cands):
                return data.columns(cands, all_rows=True, fast=False)
            return cache.S[:, [position[c] for c in entry.columns]]

        for i, entry in enumerate(front):
            cands = [bank[c] for c in entry.columns]
            coef, intercept = _unscaled(*least_squares_coefficients(final_columns(entry), Y), y_unit)
            rows.append({
                "complexity": entry.complexity,
                "n_terms": len(cands),
                "train_loss": _mean_loss(per_output[i], y_var, cache.n_train),
                "val_loss": _mean_loss(entry.val_per_output, y_var) if has_val else float("nan"),
                "bic": float(bic(entry, cache.n_train, cache.n_outputs)),
                "selected": i == chosen,
                "formula": _formulas(cands, coef, intercept)[0],
            })
        cands = [bank[c] for c in front[chosen].columns]
        S_chosen = final_columns(front[chosen])
        self.candidates_ = cands
        self.coef_, self.intercept_ = _unscaled(*least_squares_coefficients(S_chosen, Y), y_unit)
        if not np.isfinite(_outputs(S_chosen, self.coef_, self.intercept_)).all():
            raise DataError(_TOO_LARGE_Y)
        self.formulas_ = _formulas(cands, self.coef_, self.intercept_)
        rows[chosen]["formula"] = self.formulas_[0]
        self.pareto_ = pd.DataFrame(rows, columns=["complexity", "n_terms", "train_loss", "val_loss", "bic",
                                                   "selected", "formula"])
        self.terms_ = tuple(c.term for c in self.candidates_)
        self.formula_ = self.formulas_[0]
        self.formulas_raw_ = self._raw_formulas(backend) if scaler.is_shared else None
        self.formula_raw_ = self.formulas_raw_[0] if self.formulas_raw_ is not None else None
        self.fit_time_ = time.perf_counter() - start
        return self

    def _raw_formulas(self, backend: str) -> list[Formula] | None:
        """The fitted model written in raw units (one common input map), or None where float64
        cannot write it: substituting u = a x + b multiplies coefficients by powers of a, which
        underflow when the raw inputs are near 1e308 (then a is near 1e-308). Checked by
        evaluating both forms at the smallest, largest and middle training values."""
        scaler = self.scaler_
        a, b = float(scaler.scale_[0]), float(scaler.offset_[0])
        d = len(scaler.scale_)
        try:
            raw = [_to_raw_units(self.terms_, coef, c0, a, b, d)
                   for coef, c0 in zip(self.coef_, self.intercept_, strict=True)]
        except FormulaError:
            return None
        probe = np.vstack([scaler.data_min_, scaler.data_max_, scaler.data_min_ / 2 + scaler.data_max_ / 2])
        with np.errstate(all="ignore"):
            S = aggregate(probe, self.candidates_, scaler, backend=backend, device=str(self.device))
            expected = _outputs(S, self.coef_, self.intercept_)
            got = np.column_stack([f.predict(probe) for f in raw])
        tolerance = 1e-6 * max(float(np.abs(expected).max()), np.finfo(float).tiny)
        if not (np.isfinite(got).all() and np.allclose(got, expected, rtol=1e-6, atol=tolerance)):
            return None
        return raw

    def _polish_leaders(self, front, cache, position, search, data, train, rng) -> list:
        """Refit the inner constants of the leading front formulas on (up to a budget of) all
        training rows; return the improved ones as new front entries.

        The search refines constants on a row subsample. Weakly determined constants (two similar
        shapes trading off) then come out slightly off, and a spurious extra term can make up for
        that on the training rows; polishing every formula whose BIC is within reach of the best
        (not only the best) on all rows lets the true, smaller formula win on its merits.
        Polished terms join ``search.bank`` and ``cache`` as new columns (``position`` is
        extended), so the new entries are judged exactly like the others.
        """
        n, m = cache.n_train, cache.n_outputs
        scores = np.array([bic(e, n, m) for e in front])
        best = front[int(np.argmin(scores))]
        margin = 2.0 * np.log(max(n, 2)) + 2.0 * float(self.parsimony)
        # Every formula no larger than the current winner, and any within reach of its BIC.
        # Smallest first: a small formula cannot make up for slightly-off constants with an extra
        # term (with many features a constant's optimum is sharp), so it is the one that
        # polishing can rescue.
        leaders = sorted((e for e, score in zip(front, scores, strict=True)
                          if (e.n_params <= best.n_params or score <= scores.min() + margin)
                          and any(search.bank[c].n_params for c in e.columns)),
                         key=lambda e: (e.n_params, e.sse))
        leaders = [e for e in leaders if e.sse <= 10 * best.sse][:_N_POLISH]
        if not leaders:
            return []
        d = data.X.shape[1]
        n_rows = max(_MIN_SEARCH_ROWS, int(_POLISH_BUDGET // max(d, 1)))
        rows = train if n_rows >= len(train) else np.sort(rng.choice(train, n_rows, replace=False))
        U = data.scaled_rows(rows, all_rows=True)
        Ys = cache.Yt[np.searchsorted(train, rows)]  # standardised with the training statistics
        new_entries = []
        for entry in leaders:
            cands = [search.bank[c] for c in entry.columns]
            cols = [position[c] for c in entry.columns]
            fixed = [j for j, c in enumerate(cands) if c.n_params == 0]
            refined = refine_constants(cands, U, Ys, cache.S[rows][:, cols][:, fixed], self.data_range_,
                                       data.row_columns, max_nfev=8)
            if refined is None:
                continue
            missing = list({c.key: c for c in refined
                            if c.key not in search.index or search.index[c.key] not in position}.values())
            if missing:
                S_new = data.columns(missing, all_rows=True)
                if not np.isfinite(S_new).all():
                    continue
                for c, j in zip(missing, cache.add_columns(S_new), strict=True):
                    if c.key not in search.index:
                        search.index[c.key] = len(search.bank)
                        search.bank.append(c)
                    position[search.index[c.key]] = j
            subset = tuple(sorted(search.index[c.key] for c in refined))
            if len(set(subset)) != len(subset) or any(c not in position for c in subset):
                continue
            sse, _ = cache.solve(np.asarray([[position[c] for c in subset]]))
            if sse[0] < entry.sse:
                new_entries.append(search.entry(subset, float(sse[0])))
        return new_entries

    # -- prediction ---------------------------------------------------------------------------
    def predict_outputs(self, X) -> np.ndarray:
        """Raw model outputs ``c0 + S @ c`` of shape (n_samples, n_outputs) for raw ``X``."""
        check_is_fitted(self, "coef_")
        X = self._check_X(X, reset=False)
        _, _, backend = self._check_params()
        S = aggregate(X, self.candidates_, self.scaler_, chunk_size=self.chunk_size, backend=backend,
                      device=str(self.device), n_jobs=self.n_jobs, verbose=self.verbose, desc="predicting")
        if not np.isfinite(S).all():
            bad = [str(c.term) for c, ok in zip(self.candidates_, np.isfinite(S).all(axis=0), strict=True) if not ok]
            raise NumericalError(f"the terms {bad} are not finite on these inputs (outside their domain; the "
                                 f"scaled training inputs spanned [{self.data_range_.lo:g}, {self.data_range_.hi:g}]); "
                                 "keep inputs within the training range or refit with other bases")
        out = _outputs(S, self.coef_, self.intercept_)
        if not np.isfinite(out).all():
            rows = np.flatnonzero(~np.isfinite(out).all(axis=1))
            raise NumericalError(f"the predictions for {len(rows)} row(s) (first: row {rows[0]}) are not finite: the "
                                 "terms are finite there but times their coefficients they overflow float64 "
                                 "(|value| > 1.8e308); those inputs lie far outside the training range "
                                 f"(scaled training inputs spanned [{self.data_range_.lo:g}, {self.data_range_.hi:g}]), "
                                 "keep inputs within it")
        return out

    def predict(self, X) -> np.ndarray:
        """Predictions for raw ``X`` (n_samples, n_features).

        Returns values of shape (n_samples,) (or (n_samples, n_outputs) for 2-D y) for
        regression, class labels (n_samples,) for classification.
        """
        out = self.predict_outputs(X)
        if self.task == "classification":
            if self.classification == "label":
                codes = np.clip(np.rint(out[:, 0]), 0, len(self.classes_) - 1).astype(int)
            elif out.shape[1] == 1:
                codes = (out[:, 0] > 0.5).astype(int)
            else:
                codes = np.argmax(out, axis=1)
            return self.classes_[codes]
        return out[:, 0] if self._y_ndim == 1 else out

    def score(self, X, y, sample_weight=None) -> float:
        """R^2 for regression (averaged over outputs, as scikit-learn's), accuracy for classification.

        R^2 is computed with each output divided by a power of two near its largest |y| (exact, and
        R^2 does not depend on units), so targets up to the largest float64, which ``fit`` accepts,
        get a number instead of NaN from overflowing squares.
        """
        from sklearn.metrics import accuracy_score, r2_score

        if self.task == "classification":
            return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))
        predictions = self.predict(X)
        y_arr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
        n_columns = 1 if y_arr.ndim == 1 else y_arr.shape[-1] if y_arr.ndim == 2 else -1
        if y_arr.ndim == 0 or len(y_arr) != len(predictions) or n_columns != self.n_outputs_:
            raise DataError(f"y has shape {y_arr.shape}, but for this X the model predicts {len(predictions)} row(s) "
                            f"of {self.n_outputs_} output(s); pass y of shape ({len(predictions)},"
                            f"{'' if self.n_outputs_ == 1 else ' ' + str(self.n_outputs_)})")
        if y_arr.dtype.kind == "f" and not np.isfinite(y_arr).all():
            raise DataError("y contains NaN or infinity; remove those rows before scoring")
        if y_arr.dtype.kind in "biuf" and y_arr.ndim in (1, 2) and len(y_arr):
            with np.errstate(invalid="ignore"):
                top = np.abs(y_arr.astype(float, copy=False)).max(axis=0)
            if np.isfinite(top).all():
                unit = power_of_two_unit(top)
                y_arr, predictions = y_arr / unit, predictions / unit
        # Predictions far off small targets may still overflow in the squares: R^2 is then -inf.
        with np.errstate(over="ignore"):
            return float(r2_score(y_arr, predictions, sample_weight=sample_weight))


# ---------------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------------

def _search_size(n_train: int, n_features: int, n_candidates: int) -> int:
    """Rows to search on: all training rows unless rows x features x candidates exceeds
    :data:`_SEARCH_BUDGET` values, and never fewer than :data:`_MIN_SEARCH_ROWS`."""
    return max(_MIN_SEARCH_ROWS, int(_SEARCH_BUDGET // max(1, n_features * n_candidates)))


def _generator(random_state) -> np.random.Generator:
    """A numpy Generator from an int, None, Generator or legacy RandomState (no global seeding)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2 ** 31 - 1))
    return np.random.default_rng(random_state)


def _check_finite(A: np.ndarray, name: str, chunk_rows: int = 65536) -> None:
    """Raise DataError if ``A`` holds NaN or inf; a single sum first, rows only if that fails."""
    with np.errstate(all="ignore"):
        if np.isfinite(A.sum()):
            return
    for start in range(0, A.shape[0], chunk_rows):
        block = A[start:start + chunk_rows]
        bad = ~np.isfinite(block)
        if bad.any():
            row = start + int(np.flatnonzero(bad.reshape(len(block), -1).any(axis=1))[0])
            raise DataError(f"{name} contains NaN or infinity (first in row {row}); remove or impute those "
                            "values first")
    # Finite values whose sum overflows: fine.


_TOO_LARGE_Y = ("y values are too large: the fitted formula's outputs overflow float64 (|value| > 1.8e308); "
                "divide y by a constant first (e.g. y / 1e300) and multiply the predictions back")


def _unscaled(coef: np.ndarray, intercept: np.ndarray, y_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (m, k) and intercepts (m,) fitted to ``Y / y_unit``, in the units of Y."""
    with np.errstate(over="ignore"):
        coef, intercept = coef * y_unit[:, None], intercept * y_unit
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise DataError(_TOO_LARGE_Y)
    return coef, intercept


def _outputs(S: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``S @ coef.T + intercept`` (n, m); inf only where a result itself exceeds float64.

    With coefficients near 1e308 the partial sums can overflow although the outputs do not;
    then each output is computed with its coefficients divided by a power of two (exact) and
    multiplied back at the end.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = S @ coef.T + intercept
        if np.isfinite(out).all():
            return out
        top = np.maximum(np.abs(coef).max(axis=1, initial=0.0), np.abs(intercept))
        unit = power_of_two_unit(top)
        return (S @ (coef / unit[:, None]).T + intercept / unit) * unit


def _mean_loss(per_output: np.ndarray, y_var: np.ndarray, n: int = 1) -> float:
    """Mean over outputs of standardised losses times the target variances, divided by ``n``
    (inf where that overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.mean(per_output * y_var / n))


def _formulas(cands: Sequence[Candidate], coef: np.ndarray, intercept: np.ndarray) -> list[Formula]:
    terms = [c.term for c in cands]
    return [Formula.from_terms(terms, list(row), float(c0)) for row, c0 in zip(coef, intercept, strict=True)]


def _to_raw_units(terms: Sequence[Term], coef: np.ndarray, c0: float, a: float, b: float, d: int) -> Formula:
    """The model ``c0 + sum_k c_k sum_i phi_k(a x_i + b)`` as one formula in raw x.

    Substituting u = a x + b into each term keeps the sum over features exact; the parts of a
    term that do not depend on x are summed d times, so they join the constant multiplied by d.
    """
    constant = float(c0)
    body = sp.Integer(0)
    for term, c in zip(terms, coef, strict=True):
        expanded = sp.expand(term.expr.subs(SYMBOL, sp.Float(a) * SYMBOL + sp.Float(b)))
        free, dependent = expanded.as_independent(SYMBOL, as_Add=True)
        constant += float(c) * d * float(free)
        body += sp.Float(float(c)) * dependent
    return Formula(sp.Float(constant) + body)

