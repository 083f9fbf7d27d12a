"""Type predicates the parameter checks share: numbers only, never booleans or text.

``True`` is an ``int`` to Python; read as a count or a rate it would silently mean 1, so every
parameter check refuses booleans through these.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["is_integer", "is_real"]


def is_integer(value: Any) -> bool:
    """An int or numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """A real number (numpy floats and integers included), not a bool; may be inf or NaN."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
