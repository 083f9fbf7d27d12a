"""One grid cell of a benchmark: a picklable description (:class:`Cell`) and :func:`run_cell`.

A cell is one model trained and tested on one (dataset, seed) split:

* ``"VSR"`` (structure ``"-"``): discover the formula on the training rows, in the input space
  the networks see; the record holds it as ``Formula.to_dict()`` for the TN cells.
* ``"LN"`` / ``"TN"`` (structure ``"S1"``...): a linear-neuron or task-based network.
* ``"HGB"``, ``"XGBoost"``, ``"LightGBM"`` (structure ``"-"``): gradient-boosted trees.

:func:`run_cell` is what executors call, in this process, a pool worker or a Ray worker. It is
deterministic given the cell (the split and every model are seeded from ``cell.seed``; torch and
BLAS/OpenMP compute on one thread) and it never raises for a failure of its own computation:
the record gets ``status="error"`` and the message instead, so one bad cell cannot stop a grid.

Metrics, as the paper reports them: regression = test MSE of the predictions on targets min-max
scaled with the *training* targets' minimum and maximum; classification = test accuracy.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .protocols import CELL_VERSION

__all__ = ["Cell", "run_cell", "settings_hash", "NETWORK_MODELS", "BOOSTING_MODELS", "clear_cache"]

NETWORK_MODELS = ("LN", "TN")
BOOSTING_MODELS = ("HGB", "XGBoost", "LightGBM")
NO_STRUCTURE = "-"
_MAX_CACHED_DATASETS = 4  # per worker process; the paper's largest table is ~54k x 9
_MAX_WARNINGS = 5


def settings_hash(payload: Mapping[str, Any]) -> str:
    """A short, stable fingerprint of everything that shapes a cell's numbers."""
    text = json.dumps({"cell_version": CELL_VERSION, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Cell:
    """Everything a worker needs to compute one cell (no reference to module-level settings).

    ``settings`` are the keyword arguments of the cell's estimator; ``encoder`` the input
    encoding of VSR cells (as the networks' estimator does it); ``formula`` the formula of a TN
    cell (``Formula.to_dict()``), discovered by its VSR cell unless the protocol fixes it
    (``formula_source``); ``hidden`` the LN widths of the structure.
    """

    dataset: str
    model: str
    structure: str
    seed: int
    protocol: str
    task: str  # "regression", "binary" or "multiclass"
    data_dir: str | None
    test_size: float
    settings: dict[str, Any] = field(default_factory=dict)
    hidden: tuple[int, ...] | None = None
    encoder: dict[str, Any] | None = None
    formula: dict[str, Any] | None = None
    settings_hash: str = ""
    data_sha: str = ""
    formula_source: str = "vsr"  # where a TN cell's formula comes from: "vsr", "paper" or a fixed text

    @property
    def key(self) -> tuple:
        return (self.dataset, self.model, self.structure, self.seed, self.protocol)

    def base_record(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "model": self.model, "structure": self.structure, "seed": self.seed,
                "protocol": self.protocol, "task": self.task, "metric": _metric_name(self.task),
                "hidden": list(self.hidden) if self.hidden else None, "settings": self.settings,
                "settings_hash": self.settings_hash, "data_dir": self.data_dir, "data_sha": self.data_sha}


def _metric_name(task: str) -> str:
    return "mse" if task == "regression" else "accuracy"


# -- data, loaded once per worker process ------------------------------------------------------
@dataclass
class _Data:
    X: Any  # DataFrame (n_samples, n_features), categorical columns as pandas categories
    y: Any  # Series (n_samples,)
    codes: np.ndarray | None  # class indices 0..C-1 (classification), else None
    _encoded: np.ndarray | None = None

    @property
    def encoded(self) -> np.ndarray:
        """One-hot encoded, unscaled float matrix (n_samples, n_columns), for the tree models."""
        if self._encoded is None:
            from ..datasets import encode_features

            self._encoded = encode_features(self.X, "onehot")[0]
        return self._encoded


_CACHE: OrderedDict[tuple[str, str | None, str], _Data] = OrderedDict()


def clear_cache() -> None:
    """Forget the datasets this process has loaded."""
    _CACHE.clear()


def _dataset(name: str, data_dir: str | None, task: str, data_sha: str = "") -> _Data:
    # The fingerprint is part of the key: a file edited between two runs of one process (a
    # notebook) must be read again, not served from the cache.
    key = (name, data_dir, data_sha)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    from sklearn.preprocessing import LabelEncoder

    from ..datasets import load

    X, y = load(name, data_dir)
    codes = None if task == "regression" else LabelEncoder().fit_transform(y.astype(str).to_numpy())
    data = _Data(X=X, y=y, codes=codes)
    _CACHE[key] = data
    while len(_CACHE) > _MAX_CACHED_DATASETS:
        _CACHE.popitem(last=False)
    return data


def split_indices(n_samples: int, codes: np.ndarray | None, seed: int, test_size: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices of the seed's split (stratified when every class has 2+ rows)."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if codes is not None and np.bincount(codes).min() >= 2:
        stratify = codes
    rows = np.arange(n_samples)
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, shuffle=True, stratify=stratify)
    return np.sort(train), np.sort(test)


def _score(task: str, y_true, y_pred, y_train) -> float:
    """Min-max-scaled MSE (scaler from the training targets) or accuracy."""
    if task == "regression":
        y_true = np.asarray(y_true, dtype=float).ravel()
        y_pred = np.asarray(y_pred, dtype=float).ravel()
        low, high = float(np.min(y_train)), float(np.max(y_train))
        span = high - low if high > low else 1.0
        return float(np.mean(((y_pred - y_true) / span) ** 2))
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


# -- the three kinds of cell -------------------------------------------------------------------
def _targets(data: _Data, task: str):
    """Targets as the models are given them: float values (regression) or class indices."""
    return data.y.to_numpy(dtype=float) if task == "regression" else data.codes


def _run_network(cell: Cell, data: _Data, train, test) -> dict[str, Any]:
    from ..estimators import TaskNeuronClassifier, TaskNeuronRegressor
    from ..formula import Formula
    from ..nn import count_parameters

    y = _targets(data, cell.task)
    Estimator = TaskNeuronRegressor if cell.task == "regression" else TaskNeuronClassifier
    kwargs = dict(cell.settings)
    if cell.task != "regression":
        kwargs.pop("scale_y", None)  # targets are class labels: nothing to scale
    kwargs.update(hidden_layer_sizes=tuple(cell.hidden), random_state=cell.seed, verbose=False)
    if cell.model == "TN":
        kwargs["formula"] = Formula.from_dict(cell.formula)
    X_train, X_test = data.X.iloc[train], data.X.iloc[test]
    model = Estimator(**kwargs).fit(X_train, y[train])
    n_in = model.network_[0].in_features
    n_out = model.network_[-1].out_features
    record = {
        "test_value": _score(cell.task, y[test], model.predict(X_test), y[train]),
        "train_value": _score(cell.task, y[train], model.predict(X_train), y[train]),
        "n_parameters": int(model.n_parameters_),
        "hidden_used": list(model.hidden_layer_sizes_),
        "ln_n_parameters": int(count_parameters(n_in, tuple(cell.hidden), n_out, "x")),
        "ln_hidden": list(cell.hidden),
        "n_inputs": int(n_in),
        "n_epochs": int(model.n_epochs_),
        "fit_time": float(model.fit_time_),
    }
    if cell.model == "TN":
        record["formula"] = str(model.formula_)
        record["formula_source"] = cell.formula_source
        record["layer_terms"] = [str(t) for t in model.layer_formulas_[0].terms]
        record["term_weights"] = model.term_weights_  # the layer kind trained ("auto" chooses one)
    return record


def _run_vsr(cell: Cell, data: _Data, train, test) -> dict[str, Any]:
    from ..preprocessing import TabularEncoder
    from ..vsr import VSR

    y = _targets(data, cell.task)
    encoder = TabularEncoder(cell.encoder["scale_X"], cell.encoder["categorical"], cell.encoder["input_clip"])
    X_train = encoder.fit_transform(data.X.iloc[train])
    X_test = encoder.transform(data.X.iloc[test])
    task = "regression" if cell.task == "regression" else "classification"
    # As TaskNeuron*._make_vsr does: discover in the space the network's inputs live in.
    vsr = VSR(**{**cell.settings, "scale": None, "task": task, "random_state": cell.seed, "verbose": False})
    start = time.perf_counter()
    vsr.fit(X_train, y[train])
    fit_time = time.perf_counter() - start
    formula = vsr.formula_
    pareto = []
    for row in vsr.pareto_.to_dict(orient="records"):
        pareto.append({k: (str(v) if k == "formula" else v) for k, v in row.items()
                       if k in ("complexity", "n_terms", "train_loss", "val_loss", "selected", "formula")})
    return {
        "test_value": _score(cell.task, y[test], vsr.predict(X_test), y[train]),
        "train_value": _score(cell.task, y[train], vsr.predict(X_train), y[train]),
        "formula": str(formula),
        "formula_record": formula.to_dict(),
        "n_terms": len(formula.terms),
        "complexity": int(formula.complexity),
        "n_inputs": int(X_train.shape[1]),
        "fit_time": float(fit_time),
        "pareto": pareto,
    }


def _boosting_estimator(model: str, task: str, settings: dict[str, Any], seed: int):
    regression = task == "regression"
    if model == "HGB":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    elif model == "XGBoost":
        import xgboost

        cls = xgboost.XGBRegressor if regression else xgboost.XGBClassifier
    elif model == "LightGBM":
        import lightgbm

        cls = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
    else:
        raise ValueError(f"unknown boosting model {model!r}; use one of {', '.join(BOOSTING_MODELS)}")
    return cls(**settings, random_state=seed)


def _run_boosting(cell: Cell, data: _Data, train, test) -> dict[str, Any]:
    y = _targets(data, cell.task)
    X = data.encoded
    model = _boosting_estimator(cell.model, cell.task, cell.settings, cell.seed)
    start = time.perf_counter()
    model.fit(X[train], y[train])
    fit_time = time.perf_counter() - start
    return {
        "test_value": _score(cell.task, y[test], model.predict(X[test]), y[train]),
        "train_value": _score(cell.task, y[train], model.predict(X[train]), y[train]),
        "n_inputs": int(X.shape[1]),
        "fit_time": float(fit_time),
    }


def _runner(model: str):
    if model in NETWORK_MODELS:
        return _run_network
    if model == "VSR":
        return _run_vsr
    if model in BOOSTING_MODELS:
        return _run_boosting
    raise ValueError(f"unknown model {model!r}")


def run_cell(cell: Cell) -> dict[str, Any]:
    """Compute one cell and return its result record (``status`` "ok" or "error"); never raises
    for a failure inside the cell. Times are wall-clock seconds."""
    from threadpoolctl import threadpool_limits

    from .executors import single_threaded

    start = time.perf_counter()
    record = cell.base_record()
    caught: list[warnings.WarningMessage] = []
    try:
        # One thread for torch, BLAS and OpenMP (the tree models): numbers do not depend on the
        # executor or on how many cells share the machine.
        with single_threaded(), threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = _dataset(cell.dataset, cell.data_dir, cell.task, cell.data_sha)
            train, test = split_indices(len(data.y), data.codes, cell.seed, cell.test_size)
            record.update(n_train=int(len(train)), n_test=int(len(test)), n_features=int(data.X.shape[1]))
            record.update(_runner(cell.model)(cell, data, train, test))
        record.update(status="ok", error=None)
        if not np.isfinite(record.get("test_value", np.nan)):
            record.update(status="error", error="the test metric is not finite (NaN or inf predictions)")
    except Exception as exc:  # noqa: BLE001 - a failed cell is a result, not a crash of the grid
        record.update(status="error", error=f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000],
                      traceback="".join(traceback.format_exception(exc)[-3:])[-2000:])
    messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}"[:300] for w in caught))
    record["warnings"] = messages[:_MAX_WARNINGS]
    record["time"] = time.perf_counter() - start
    return record
