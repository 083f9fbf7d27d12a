"""taskneurons: task-based neurons discovered by vectorized symbolic regression.

    import taskneurons as tn
    f = tn.Formula("0.068*x**3 + 0.15*x + 0.76")
"""

from __future__ import annotations

from . import datasets
from .errors import DataError, FormulaError, ModelFileError, NumericalError, TaskNeuronsError
from .formula import Formula, Term

__version__ = "0.1.0"

__all__ = [
    "Formula",
    "Term",
    "datasets",
    "FormulaError",
    "DataError",
    "ModelFileError",
    "NumericalError",
    "TaskNeuronsError",
    "__version__",
]
