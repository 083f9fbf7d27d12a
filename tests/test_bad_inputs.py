"""Every bad input, one table: what TaskNeuronRegressor, TaskNeuronClassifier and VSR do with it.

The rows cover the inputs scikit-learn's estimator checks feed (``check_fit1d``,
``check_fit2d_1sample``, ``check_estimators_empty_data``, ``check_estimators_nan_inf``,
``check_dtype_object``, ``check_complex_data``, ``check_estimators_dtypes``,
``check_estimator_sparse_array``/``_matrix``, ``check_fit2d_predict1d``,
``check_n_features_in_after_fitting``, ``check_requires_y_none``, ``check_classifiers_one_label``,
``check_classifiers_regression_target``, ``check_supervised_y_2d``, ``check_estimators_unfitted``,
``check_dataframe_column_names_consistency``, ``check_f_contiguous_array_estimator``,
``check_readonly_memmap_input``) plus ours: object arrays and mixed types, 0 features, 1 class,
10,000 classes, 1e308 values, duplicated column names, date columns, unseen labels and
categories, NaN in y, complex numbers, strings, sparse matrices, 3-D arrays.

Each cell says what must happen: ``OK`` (fits/predicts, finite outputs of the right shape) or
``Raises(types, message pattern)``; a cell may allow both. Rows where VSR (developed elsewhere)
does not yet do what the cell asks are strict xfails that name the cause; they start failing,
and so ask to be unmarked, as soon as VSR is fixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from taskneurons import TaskNeuronClassifier, TaskNeuronRegressor
from taskneurons.errors import DataError, NumericalError
from taskneurons.vsr import VSR

N = 40
_RNG = np.random.default_rng(0)
X0 = _RNG.uniform(-1, 1, size=(N, 3))
Y_REG = X0.sum(1) + X0[:, 0] ** 2
Y_CLF = np.where(X0[:, 0] > 0, "a", "b")


@dataclass(frozen=True)
class Raises:
    types: tuple[type[BaseException], ...]
    match: str


OK = "ok"
V = ValueError  # scikit-learn's validation errors; ours are DataError, a ValueError too
SPARSE = Raises((TypeError,), "Sparse data was passed")  # scikit-learn's convention for sparse X


def _make(kind: str):
    fast = {"hidden_layer_sizes": (4,), "max_epochs": 3, "random_state": 0}
    return {
        "regressor": lambda: TaskNeuronRegressor(formula="x**2 + x", **fast),
        "classifier": lambda: TaskNeuronClassifier(formula="x**2 + x", **fast),
        "vsr": lambda: VSR(max_degree=3, random_state=0),
        "vsr_classification": lambda: VSR(max_degree=3, task="classification", random_state=0),
    }[kind]()


def _default_y(kind: str):
    return Y_CLF if kind in ("classifier", "vsr_classification") else Y_REG


def _with(value, rows=None, cols=None):
    a = np.array(X0, dtype=float)
    if rows is not None:
        a[rows, cols] = value
    return a


def _mixed_object():
    a = X0.astype(object)
    a[0, 0] = "abc"
    return a


def _frame(**extra):
    return pd.DataFrame({"a": X0[:, 0], "b": X0[:, 1], **extra})


@dataclass(frozen=True)
class Case:
    """One bad input. ``X``/``y`` build the data (``y`` gets the estimator kind); ``phase`` is
    where it is given: "fit", "predict" (after fitting on ``fit_X``/``fit_y`` or clean data),
    "score" or "unfitted". ``expect`` maps estimator kind -> expected outcome(s)."""

    id: str
    expect: dict[str, Any]
    X: Callable[[], Any] = lambda: X0
    y: Callable[[str], Any] = _default_y
    phase: str = "fit"
    fit_X: Callable[[], Any] | None = None
    fit_y: Callable[[str], Any] | None = None
    isolate: set = field(default_factory=set)  # kinds run in a memory-limited subprocess


def _same(outcome):
    return {k: outcome for k in ("regressor", "classifier", "vsr")}


def _tn(outcome):
    return {"regressor": outcome, "classifier": outcome}


CASES = [
    # -- X at fit ---------------------------------------------------------------------------
    Case("object_array_of_numbers", _same(OK), X=lambda: X0.astype(object)),
    Case("object_array_mixed_types", {**_tn(Raises((V,), "could not convert string to float")),
                                      "vsr": Raises((DataError,), "non-numeric values")}, X=_mixed_object),
    Case("dataframe_column_of_mixed_types", {**_tn(OK), "vsr": Raises((DataError,), "non-numeric columns \\['c'\\]")},
         X=lambda: _frame(c=[1.5, "x"] * (N // 2))),
    Case("zero_features", {**_tn(Raises((V,), "0 feature")), "vsr": Raises((DataError,), "0 feature")},
         X=lambda: np.empty((N, 0))),
    Case("empty", {**_tn(Raises((V,), "0 sample")), "vsr": Raises((DataError,), "0 sample")},
         X=lambda: np.empty((0, 3)), y=lambda k: _default_y(k)[:0]),
    Case("one_row", {**_tn(Raises((V,), "1 sample")), "vsr": Raises((DataError,), "at least 3 samples")},
         X=lambda: X0[:1], y=lambda k: _default_y(k)[:1]),
    Case("one_feature", _same(OK), X=lambda: X0[:, :1]),
    Case("X_1d", {**_tn(Raises((V,), "Expected 2D array")), "vsr": Raises((DataError,), "Expected 2D array")},
         X=lambda: X0[:, 0]),
    Case("X_3d", {**_tn(Raises((V,), "dim 3")), "vsr": Raises((DataError,), "dim 3")}, X=lambda: X0[:, :, None]),
    Case("X_none", {**_tn(Raises((V,), "Expected 2D array")), "vsr": Raises((DataError,), "Expected 2D array")},
         X=lambda: None),
    Case("X_nan", {**_tn(Raises((V,), "NaN")), "vsr": Raises((DataError,), "NaN")}, X=lambda: _with(np.nan, 3, 1)),
    Case("X_inf", {**_tn(Raises((V,), "infinity")), "vsr": Raises((DataError,), "infinity")},
         X=lambda: _with(-np.inf, 5, 2)),
    Case("X_pandas_NA", {**_tn(Raises((V,), "NaN")), "vsr": Raises((DataError,), "NaN")},
         X=lambda: pd.DataFrame(X0).astype("Float64").mask(np.arange(3 * N).reshape(N, 3) == 4)),
    Case("X_values_1e308", {**_tn(OK), "vsr": (OK, Raises((DataError,), "overflow|too large"))},
         X=lambda: X0 * 1.7e308),
    Case("X_some_values_1e308", _same(OK), X=lambda: _with(1e308, [0, 7], 1)),
    Case("X_subnormal_values", {**_tn((OK, Raises((DataError,), "subnormal"))),  # minmax: clear error
                                "vsr": (OK, Raises((DataError,), "subnormal|underflow|too small"))},
         X=lambda: X0 * 1e-310),
    Case("X_complex", {**_tn(Raises((V,), "Complex data not supported")),
                       "vsr": Raises((DataError,), "Complex data not supported")}, X=lambda: X0 + 1j),
    Case("X_numeric_strings", {**_tn(Raises((V,), "strings")), "vsr": OK}, X=lambda: X0.astype(str)),
    Case("X_letters", {**_tn(Raises((V,), "strings")), "vsr": Raises((DataError,), "non-numeric")},
         X=lambda: np.full((N, 3), "abc")),
    Case("X_sparse_matrix", _same(SPARSE), X=lambda: sp.csr_matrix(X0)),
    Case("X_sparse_array", _same(SPARSE), X=lambda: sp.csr_array(X0)),
    Case("X_bool", _same(OK), X=lambda: X0 > 0),
    Case("X_int32", _same(OK), X=lambda: (X0 * 100).astype(np.int32)),
    Case("X_float16", _same(OK), X=lambda: X0.astype(np.float16)),
    Case("X_float32", _same(OK), X=lambda: X0.astype(np.float32)),
    Case("X_list_of_lists", _same(OK), X=lambda: X0.tolist()),
    Case("X_fortran_order", _same(OK), X=lambda: np.asfortranarray(X0)),
    Case("X_read_only", _same(OK), X=lambda: np.lib.stride_tricks.as_strided(X0, writeable=False)),
    Case("X_constant", {**_tn(OK), "vsr": Raises((DataError,), "constant")}, X=lambda: np.ones((N, 3))),
    Case("duplicated_column_names", {**_tn(Raises((V,), "unique column names")),
                                     "vsr": Raises((DataError,), "unique column names")},
         X=lambda: pd.DataFrame(X0, columns=["a", "a", "b"])),
    Case("date_column", {**_tn(Raises((DataError,), "columns \\['t'\\] hold dates")),
                         "vsr": Raises((DataError,), "non-numeric columns \\['t'\\]")},
         X=lambda: _frame(t=pd.date_range("2000-01-01", periods=N))),
    # -- y at fit ---------------------------------------------------------------------------
    Case("y_none", {**_tn(Raises((V,), "requires y")), "vsr": Raises((DataError,), "requires y")}, y=lambda k: None),
    Case("y_wrong_length", {**_tn(Raises((V,), "inconsistent numbers of samples")),
                            "vsr": Raises((DataError,), "same length")}, y=lambda k: _default_y(k)[:-1]),
    Case("y_nan", {**_tn(Raises((V,), "NaN")), "vsr": Raises((DataError,), "NaN")},
         y=lambda k: np.where(np.arange(N) == 3, np.nan, (X0[:, 0] > 0) * 1.0 if k == "classifier" else Y_REG)),
    Case("y_inf", {"regressor": Raises((V,), "infinity"), "vsr": Raises((DataError,), "infinity")},
         y=lambda k: np.where(np.arange(N) == 3, np.inf, Y_REG)),
    Case("y_values_1e308", {"regressor": OK, "vsr": (OK, Raises((DataError,), "overflow|too large"))},
         y=lambda k: Y_REG / np.abs(Y_REG).max() * 1.7e308),
    Case("y_complex", {**_tn(Raises((V,), "Complex data not supported")),
                       "vsr": Raises((DataError,), "Complex data not supported")}, y=lambda k: Y_REG + 1j),
    Case("y_strings_for_regression", {"regressor": Raises((V,), "could not convert string to float"),
                                      "vsr": Raises((DataError,), "numeric")}, y=lambda k: Y_CLF),
    Case("y_sparse", {**_tn(Raises((DataError, TypeError), "[Ss]parse")), "vsr": Raises((DataError,), "[Ss]parse")},
         y=lambda k: sp.csr_matrix(Y_REG[:, None])),
    Case("y_3d", {**_tn(Raises((V,), "dim 3")), "vsr": Raises((DataError,), "1-D .* or 2-D")},
         y=lambda k: Y_REG[:, None, None]),
    Case("y_column_vector", _same(OK), y=lambda k: _default_y(k)[:, None]),
    Case("y_constant", {"regressor": OK, "vsr": Raises((DataError,), "constant")}, y=lambda k: np.full(N, 2.5)),
    Case("y_one_class", {"classifier": Raises((DataError,), "only one class"),
                         "vsr_classification": Raises((DataError,), "one class only")}, y=lambda k: np.zeros(N)),
    Case("y_10000_classes", {"classifier": Raises((DataError,), "10000 classes for 10000 samples"),
                             "vsr_classification": Raises((DataError,), "classes")},
         X=lambda: np.random.default_rng(1).uniform(-1, 1, size=(10_000, 2)), y=lambda k: np.arange(10_000),
         isolate={"vsr_classification"}),
    Case("y_continuous_for_classification", {"classifier": Raises((V,), "Unknown label type: continuous"),
                                             "vsr_classification": Raises((DataError,), "Unknown label type")},
         y=lambda k: Y_REG),
    Case("y_labels_of_mixed_types", {"classifier": Raises((V,), "Unknown label type"),
                                     "vsr_classification": Raises((DataError,), "Unknown label type")},
         y=lambda k: np.array([1, "a"] * (N // 2), dtype=object)),
    Case("y_two_label_columns", {"classifier": Raises((V,), "1d array|1-D"),
                                 "vsr_classification": Raises((DataError,), "one label per row")},
         y=lambda k: np.column_stack([Y_CLF, Y_CLF])),
    # -- after fitting ----------------------------------------------------------------------
    Case("predict_wrong_feature_count", {**_tn(Raises((V,), "4 features")), "vsr": Raises((DataError,), "4 features")},
         phase="predict", X=lambda: np.ones((5, 4))),
    Case("predict_nan", {**_tn(Raises((V,), "NaN")), "vsr": Raises((DataError,), "NaN")},
         phase="predict", X=lambda: _with(np.nan, 0, 0)),
    Case("predict_inf", {**_tn(Raises((V,), "infinity")), "vsr": Raises((DataError,), "infinity")},
         phase="predict", X=lambda: _with(np.inf, 0, 0)),
    Case("predict_1d", {**_tn(Raises((V,), "Expected 2D array")), "vsr": Raises((DataError,), "Expected 2D array")},
         phase="predict", X=lambda: X0[0]),
    Case("predict_3d", {**_tn(Raises((V,), "dim 3")), "vsr": Raises((DataError,), "dim 3")},
         phase="predict", X=lambda: X0[:, :, None]),
    Case("predict_empty", {**_tn(Raises((V,), "0 sample")), "vsr": Raises((DataError,), "0 sample")},
         phase="predict", X=lambda: np.empty((0, 3))),
    Case("predict_complex", {**_tn(Raises((V,), "Complex")), "vsr": Raises((DataError,), "Complex")},
         phase="predict", X=lambda: X0 + 1j),
    Case("predict_strings", {**_tn(Raises((V,), "strings")), "vsr": Raises((DataError,), "non-numeric")},
         phase="predict", X=lambda: np.full((N, 3), "abc")),
    Case("predict_sparse", _same(SPARSE), phase="predict", X=lambda: sp.csr_matrix(X0)),
    Case("predict_values_1e308", {**_tn(OK), "vsr": (OK, Raises((NumericalError,), "not finite"))},
         phase="predict", X=lambda: X0 * 1e308),
    Case("predict_other_column_names", {**_tn(Raises((V,), "feature names should match")),
                                        "vsr": Raises((DataError,), "feature names should match")},
         phase="predict", fit_X=lambda: pd.DataFrame(X0, columns=["a", "b", "c"]),
         X=lambda: pd.DataFrame(X0, columns=["a", "b", "z"])),
    Case("predict_date_column", _tn(Raises((DataError,), "hold dates")), phase="predict",
         fit_X=lambda: _frame(c=X0[:, 2]), X=lambda: _frame(c=pd.date_range("2000-01-01", periods=N))),
    Case("predict_unseen_category", _tn(OK), phase="predict",
         fit_X=lambda: _frame(kind=["u", "v"] * (N // 2)), X=lambda: _frame(kind=["w"] * N)),
    Case("score_unseen_labels", {"classifier": OK, "vsr_classification": OK}, phase="score",
         y=lambda k: np.array(["a", "zzz"] * (N // 2))),
    Case("predict_before_fit", {**_tn(Raises((NotFittedError,), "not fitted")),
                                "vsr": Raises((NotFittedError,), "not fitted")}, phase="unfitted"),
]

#: Cells where VSR does not yet meet the table (vsr/ is owned elsewhere): the reason, measured.
#: None at present: 1e308 and subnormal X, 1e308, complex and sparse y and 10,000 classes are all
#: handled (fitted, or refused with a DataError that says what to do).
VSR_GAPS: dict[tuple[str, str], str] = {}


def _fitted(kind: str, case: Case):
    X = case.fit_X() if case.fit_X is not None else X0
    y = case.fit_y(kind) if case.fit_y is not None else _default_y(kind)
    return _make(kind).fit(X, y)


def _run(case: Case, kind: str):
    """Run one cell; return "ok" or the exception raised."""
    try:
        if case.phase == "fit":
            X = case.X()
            model = _make(kind).fit(X, case.y(kind))
            predictions = model.predict(X)
            n = len(X) if hasattr(X, "__len__") else X.shape[0]
        elif case.phase == "unfitted":
            _make(kind).predict(X0)
        else:
            model = _fitted(kind, case)
            if case.phase == "score":
                score = model.score(X0, case.y(kind))
                assert 0.0 <= score <= 0.5, score  # half the labels are unseen: counted as wrong
                return OK
            X = case.X()
            predictions = model.predict(X)
            n = X.shape[0]
    except Exception as error:  # noqa: BLE001 - the table says which exceptions are expected
        return error
    predictions = np.asarray(predictions)
    assert predictions.shape[0] == n
    if kind in ("regressor", "vsr"):
        assert np.isfinite(predictions.astype(float)).all(), "a non-finite prediction was returned"
    else:
        assert set(np.unique(predictions)) <= set(model.classes_)
    return OK


def _run_isolated(case: Case, kind: str):
    """Run one cell in a subprocess limited to 1 GB of memory and 60 s (for inputs that could
    exhaust the machine when the guard is missing)."""
    here = Path(__file__).resolve().parent
    code = textwrap.dedent(f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        sys.path.insert(0, {str(here)!r})
        import test_bad_inputs as t
        case = next(c for c in t.CASES if c.id == {case.id!r})
        outcome = t._run(case, {kind!r})
        if outcome == "ok":
            print(json.dumps({{"ok": True}}))
        else:
            print(json.dumps({{"type": type(outcome).__name__, "message": str(outcome)}}))
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        return TimeoutError("ran for more than 60 s")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return MemoryError(f"exit code {done.returncode}: {done.stderr.strip()[-300:]}")
    result = json.loads(lines[-1])
    if result.get("ok"):
        return OK
    errors = {"DataError": DataError, "NumericalError": NumericalError, "MemoryError": MemoryError}
    return errors.get(result["type"], RuntimeError)(result["message"])


def _matches(outcome, expected) -> bool:
    if expected == OK:
        return outcome == OK
    return (outcome != OK and isinstance(outcome, expected.types)
            and __import__("re").search(expected.match, str(outcome)) is not None)


def _params():
    out = []
    for case in CASES:
        for kind, expected in case.expect.items():
            marks = []
            if (case.id, kind) in VSR_GAPS:
                marks.append(pytest.mark.xfail(strict=True, reason=VSR_GAPS[(case.id, kind)]))
            out.append(pytest.param(case, kind, expected, id=f"{case.id}-{kind}", marks=marks))
    return out


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning",
                            "ignore::sklearn.exceptions.DataConversionWarning")
@pytest.mark.parametrize(("case", "kind", "expected"), _params())
def test_bad_input(case, kind, expected):
    outcome = _run_isolated(case, kind) if kind in case.isolate else _run(case, kind)
    allowed = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):  # pragma: no cover
        raise outcome
    assert any(_matches(outcome, e) for e in allowed), (
        f"{case.id} / {kind}: expected {allowed}, got "
        f"{outcome if outcome == OK else f'{type(outcome).__name__}: {outcome}'}")
    if outcome != OK:  # errors say what was wrong in one readable message, never a bare repr
        assert isinstance(outcome, (ValueError, TypeError, NotFittedError)) and len(str(outcome)) > 15
