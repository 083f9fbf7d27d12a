"""taskneurons: task-based neurons discovered by vectorized symbolic regression.

    import taskneurons as tn
    f = tn.Formula("0.068*x**3 + 0.15*x + 0.76")
"""

from __future__ import annotations

from . import datasets, nn
from .errors import DataError, FormulaError, ModelFileError, NumericalError, TaskNeuronsError
from .estimators import TaskNeuronClassifier, TaskNeuronRegressor
from .formula import Formula, Term
from .persistence import load

__version__ = "0.1.0"

__all__ = [
    "Formula",
    "Term",
    "datasets",
    "nn",
    "TaskNeuronRegressor",
    "TaskNeuronClassifier",
    "load",
    "FormulaError",
    "DataError",
    "ModelFileError",
    "NumericalError",
    "TaskNeuronsError",
    "__version__",
]
