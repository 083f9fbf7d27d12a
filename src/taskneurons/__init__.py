"""taskneurons: task-based neurons discovered by vectorized symbolic regression.

    import taskneurons as tn
    f = tn.Formula("0.068*x**3 + 0.15*x + 0.76")
    vsr = tn.VSR().fit(X, y)                                  # discover the neuron
    model = tn.TaskNeuronRegressor().fit(X, y)                # discover + train in one fit
    layer = tn.nn.TaskLinear(16, 8, vsr.formula_)             # a PyTorch layer of it

Public names are imported on first use (PEP 562), so ``import taskneurons`` and the command
line's ``--help`` do not pay for torch and scikit-learn until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import DataError, FormulaError, ModelFileError, NumericalError, TaskNeuronsError

__version__ = "0.1.0"

_ATTRIBUTES = {
    "Formula": "formula",
    "Term": "formula",
    "VSR": "vsr",
    "TaskNeuronRegressor": "estimators",
    "TaskNeuronClassifier": "estimators",
    "load": "persistence",
}
_SUBMODULES = ("nn", "datasets", "vsr", "training", "bench", "plots", "formula", "estimators", "persistence")

__all__ = [
    "Formula",
    "Term",
    "VSR",
    "TaskNeuronRegressor",
    "TaskNeuronClassifier",
    "load",
    "nn",
    "datasets",
    "FormulaError",
    "DataError",
    "ModelFileError",
    "NumericalError",
    "TaskNeuronsError",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import datasets, nn
    from .estimators import TaskNeuronClassifier, TaskNeuronRegressor
    from .formula import Formula, Term
    from .persistence import load
    from .vsr import VSR


def __getattr__(name: str) -> Any:
    if name in _ATTRIBUTES:
        value = getattr(importlib.import_module(f".{_ATTRIBUTES[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'taskneurons' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # the public names only: not this module's helpers (importlib, Any, annotations, ...)
    return sorted(set(__all__) | set(_SUBMODULES) | {n for n in globals() if n.startswith("__")})
