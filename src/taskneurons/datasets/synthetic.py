"""Synthetic VSR tasks with a known formula: the seed paper's 30 sets and a generator of new ones.

The seed sets ``epsilon_{low,medium,high}_no{1..10}`` hold 600 samples of 10 features drawn
uniformly from [-50, 50] (the same X in all 30 files) and ``y = sum_i g(x_i) + noise``, where g
is ``SYNTHETIC_TRUTHS["no<k>"]`` and the noise is Gaussian with standard deviation
``SYNTHETIC_NOISE[level]`` times the RMS of the clean target.

Default folder for the seed files, first that applies:
``data_dir`` argument; ``$TASKNEURONS_SYNTHETIC``; ``$TASKNEURONS_DATA/../synthetic`` (the
shared layout keeps ``datasets/paper`` and ``datasets/synthetic`` side by side);
``../shared/datasets/synthetic`` relative to the current directory (a development checkout).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..formula import Formula
from .loader import SUFFIXES, find_file, load

__all__ = [
    "SYNTHETIC_TRUTHS",
    "SYNTHETIC_NOISE",
    "SYNTHETIC_NAMES",
    "parse_synthetic_name",
    "synthetic_truth",
    "synthetic_clean_target",
    "synthetic_dir",
    "load_synthetic",
    "make_synthetic",
]

#: g(x) of each seed set, in this project's formula syntax (x is one input variable).
SYNTHETIC_TRUTHS: dict[str, str] = {
    "no1": "6*x**2",
    "no2": "3*x**4",
    "no3": "5*x + 4*x**2",
    "no4": "6*x + 2*x**4",
    "no5": "6*x + 3*x**2 + 2*x**4",
    "no6": "3*x + 2*x**2 + 4*x**3 + 3*x**4",
    "no7": "2*x**2 + 4*x**4",
    "no8": "3*x**3 + 2*x**4",
    "no9": "3*x + 2*x**3",
    "no10": "5*x + 4*x**4 + 3*x**5",
}

#: Noise standard deviation as a fraction of the clean target's RMS.
SYNTHETIC_NOISE: dict[str, float] = {"low": 0.05, "medium": 0.15, "high": 0.30}

#: The 30 seed set names, low/medium/high x no1..no10.
SYNTHETIC_NAMES: tuple[str, ...] = tuple(
    f"epsilon_{level}_{key}" for level in SYNTHETIC_NOISE for key in SYNTHETIC_TRUTHS
)

_NAME = re.compile(r"^(?:epsilon[\s_\-]*(low|medium|high)[\s_\-]*)?(?:no[\s_\-]*)?(\d+)$")


def parse_synthetic_name(name: str) -> tuple[str | None, str]:
    """Split ``"epsilon_low_no3"`` into ``("low", "no3")``; ``"no3"`` gives ``(None, "no3")``.

    Raises
    ------
    DataError
        If ``name`` is not one of the seed sets.
    """
    match = _NAME.match(str(name).strip().lower())
    key = f"no{int(match.group(2))}" if match else None
    if key not in SYNTHETIC_TRUTHS:
        raise DataError(
            f"Unknown synthetic set {name!r}: use epsilon_{{low,medium,high}}_no{{1..10}} "
            f"(e.g. 'epsilon_low_no3') or no1..no10 for the formula alone."
        )
    return match.group(1), key


def synthetic_truth(name: str) -> Formula:
    """The true formula g of a seed set (``"epsilon_high_no6"`` or ``"no6"``)."""
    return Formula(SYNTHETIC_TRUTHS[parse_synthetic_name(name)[1]])


def synthetic_clean_target(name: str, X) -> np.ndarray:
    """Noise-free target ``sum_i g(x_i)`` of a seed set for inputs ``X`` (n_samples, n_features).

    Returns an array of shape (n_samples,).
    """
    values = X.to_numpy(dtype=np.float64) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
    return np.asarray(synthetic_truth(name).predict(values))


def synthetic_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder :func:`load_synthetic` reads (see the module docstring for the order)."""
    if data_dir is not None:
        return Path(data_dir)
    candidates = []
    env = os.environ.get("TASKNEURONS_SYNTHETIC", "").strip()
    if env:
        return Path(env).expanduser()
    data = os.environ.get("TASKNEURONS_DATA", "").strip()
    if data:
        candidates.append(Path(data).expanduser() / ".." / "synthetic")
    candidates.append(Path("..") / "shared" / "datasets" / "synthetic")
    for folder in candidates:
        if folder.is_dir():
            return folder.resolve()
    raise DataError(
        "No folder of synthetic sets found: pass data_dir=..., or set $TASKNEURONS_SYNTHETIC to "
        f"the folder holding epsilon_low_no1.csv.gz etc. (looked in: "
        f"{', '.join(str(c) for c in candidates)})."
    )


def load_synthetic(name: str, data_dir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Load a seed synthetic set, e.g. ``"epsilon_medium_no4"``.

    Returns
    -------
    X : DataFrame of shape (600, 10), columns x1..x10
    y : Series of shape (600,), float64
    """
    level, key = parse_synthetic_name(name)
    if level is None:
        raise DataError(
            f"{name!r} names a formula, not a data file: add the noise level, e.g. "
            f"'epsilon_low_{key}'."
        )
    stem = f"epsilon_{level}_{key}"
    folder = synthetic_dir(data_dir)
    if find_file(stem, folder) is None:
        raise DataError(
            f"Synthetic set {stem!r} not found: put it at {folder.resolve() / (stem + '.csv.gz')} "
            f"(or {', '.join(s for s in SUFFIXES if s != '.csv.gz')}; target last)."
        )
    X, y = load(stem, folder, download=False)
    return X, y.astype(np.float64)


def make_synthetic(
    truth: str | Formula,
    *,
    n_samples: int = 600,
    n_features: int = 10,
    noise: float = 0.05,
    low: float = -50.0,
    high: float = 50.0,
    random_state: int | np.random.Generator | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """A new synthetic VSR task with known formula, generated like the seed sets.

    Parameters
    ----------
    truth : str or Formula
        The shared formula g (e.g. ``"2*x**3 - x"``); the clean target is ``Formula.predict``.
    n_samples, n_features : int
        Shape of X.
    noise : float
        Standard deviation of the Gaussian noise as a fraction of the clean target's RMS
        (0 gives the clean target).
    low, high : float
        X is drawn uniformly from [low, high).
    random_state : int, Generator or None
        Seed for reproducible data.

    Returns
    -------
    X : DataFrame of shape (n_samples, n_features), columns x1..x<n_features>
    y : Series of shape (n_samples,), float64, named "y"
    """
    if n_samples < 1 or n_features < 1:
        raise DataError(f"n_samples and n_features must be >= 1, got {n_samples}, {n_features}")
    if not noise >= 0:
        raise DataError(f"noise must be a fraction >= 0 of the clean RMS, got {noise}")
    if not high > low:
        raise DataError(f"high must exceed low, got low={low}, high={high}")
    formula = truth if isinstance(truth, Formula) else Formula(truth)
    rng = np.random.default_rng(random_state)
    values = rng.uniform(low, high, size=(n_samples, n_features))
    clean = np.asarray(formula.predict(values), dtype=np.float64)
    rms = float(np.sqrt(np.mean(clean**2)))
    y = clean + rng.normal(0.0, noise * rms, size=n_samples) if noise > 0 else clean
    X = pd.DataFrame(values, columns=[f"x{i + 1}" for i in range(n_features)])
    return X, pd.Series(y, name="y")
