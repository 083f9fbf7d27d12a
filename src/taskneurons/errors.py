"""Exceptions raised by taskneurons.

Every error a user can cause is a :class:`ValueError` subclass whose message says what was
wrong and what to do, so ``except ValueError`` keeps working for callers that do not care which.
"""

from __future__ import annotations

__all__ = ["TaskNeuronsError", "FormulaError", "DataError", "ModelFileError", "NumericalError", "WorkerError"]


class TaskNeuronsError(ValueError):
    """Base class of the errors taskneurons raises on bad input."""


class FormulaError(TaskNeuronsError):
    """A formula text or expression that cannot be accepted.

    Attributes
    ----------
    token : str or None
        The offending token, when one can be named.
    position : int or None
        0-based character offset of ``token`` in the text, when known.
    """

    def __init__(self, message: str, *, token: str | None = None, position: int | None = None):
        if position is not None:
            message = f"{message} (at position {position})"
        super().__init__(message)
        self.token = token
        self.position = position


class DataError(TaskNeuronsError):
    """Input data that cannot be used as given (NaN, wrong shape, unknown column, ...)."""


class ModelFileError(TaskNeuronsError):
    """A model file that is not ours, is damaged, or comes from a newer format version."""


class NumericalError(TaskNeuronsError, ArithmeticError):
    """A computation that would produce inf/NaN and cannot be recovered automatically."""


class WorkerError(TaskNeuronsError, RuntimeError):
    """A worker process of a parallel run died (killed, out of memory); finished work is kept."""
