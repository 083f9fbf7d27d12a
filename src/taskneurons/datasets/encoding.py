"""Turn a loaded feature table into a float matrix for models that need numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["encode_features", "categorical_columns"]


def categorical_columns(X: pd.DataFrame) -> list[str]:
    """Columns holding labels rather than quantities: category, string/object and bool dtypes."""
    return [
        col for col in X.columns
        if isinstance(X[col].dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(X[col].dtype)
        or not pd.api.types.is_numeric_dtype(X[col].dtype)
    ]


def encode_features(
    X: pd.DataFrame | np.ndarray,
    categorical: str = "onehot",
) -> tuple[np.ndarray, list[str]]:
    """Encode categorical columns and return a float matrix with its column names.

    Parameters
    ----------
    X : DataFrame of shape (n_samples, n_features), or a numeric array
        As returned by :func:`taskneurons.datasets.load`.
    categorical : {"onehot", "ordinal"}
        ``"onehot"``: one 0/1 column ``"<col>=<category>"`` per category (a missing value is all
        zeros). ``"ordinal"``: the category's position (0, 1, ...) in one column; categories are
        in the dtype's order (the declared scale for ordered categoricals such as diamonds' cut,
        color, clarity; sorted for categories built from strings); a missing value stays NaN.
        Boolean columns become 0/1 in both modes.

    Returns
    -------
    values : ndarray of float64, shape (n_samples, n_columns)
        Numeric columns unchanged, categorical ones encoded in place (column order kept).
    names : list of str
        One name per column of ``values``.

    Notes
    -----
    The encoding depends on the categories present in ``X`` (or declared by its dtype), so encode
    the whole dataset once before splitting it, or declare the categories, to give train and
    test the same columns.
    """
    if categorical not in ("onehot", "ordinal"):
        raise DataError(f"categorical must be 'onehot' or 'ordinal', got {categorical!r}")
    if not isinstance(X, pd.DataFrame):
        values = np.asarray(X)
        if values.ndim != 2:
            raise DataError(f"X must be 2-D (n_samples, n_features), got shape {values.shape}")
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(
                "X holds non-numeric values; pass a DataFrame so that categorical columns can be "
                "recognised and encoded."
            ) from exc
        return values, [f"x{i}" for i in range(values.shape[1])]

    blocks: list[np.ndarray] = []
    names: list[str] = []
    labels = set(categorical_columns(X))
    for col in X.columns:
        series = X[col]
        if col not in labels:
            blocks.append(series.to_numpy(dtype=np.float64, na_value=np.nan)[:, None])
            names.append(str(col))
            continue
        if pd.api.types.is_bool_dtype(series.dtype):
            blocks.append(series.astype(np.float64).to_numpy()[:, None])
            names.append(str(col))
            continue
        cat = series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
        codes = cat.cat.codes.to_numpy()  # -1 marks a missing value
        if categorical == "ordinal":
            blocks.append(np.where(codes < 0, np.nan, codes).astype(np.float64)[:, None])
            names.append(str(col))
        else:
            n_cat = len(cat.cat.categories)
            onehot = (codes[:, None] == np.arange(n_cat)[None, :]).astype(np.float64)
            blocks.append(onehot)
            names.extend(f"{col}={value}" for value in cat.cat.categories)
    if not blocks:
        return np.empty((len(X), 0)), []
    return np.hstack(blocks), names
