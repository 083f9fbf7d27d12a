"""Tabular input encoding and scaling with a small, explicit, JSON-serialisable state.

The estimators turn whatever table they are given (a numeric array, or a DataFrame with
string/categorical columns such as abalone's ``Sex``) into the float matrix the network
sees. The state is kept as plain lists and arrays rather than fitted scikit-learn objects so
a model file can store it as JSON + tensors and load it without unpickling anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import is_real
from .errors import DataError

__all__ = ["TabularEncoder", "TargetScaler", "SCALINGS", "TARGET_SCALINGS", "CATEGORICAL_ENCODINGS"]

SCALINGS = ("minmax", "quantile", "standard", None)
#: Scalings of regression targets (affine only: predictions are mapped back exactly).
TARGET_SCALINGS = ("standard", "minmax", None)
#: Most quantiles a "quantile" scaling keeps per feature.
N_QUANTILES = 1000
CATEGORICAL_ENCODINGS = ("onehot", "ordinal")


def _is_dataframe(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def _is_categorical_column(series) -> bool:
    """Whether the column's *dtype* is not plain numbers (text, object, categorical): such columns
    are looked at by name and value (:func:`_holds_categories`); booleans are the numbers 0/1."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return False
    return isinstance(dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(dtype)


#: A mostly numeric text column is refused (rather than one-hot encoded) when it has more distinct
#: numbers than this, or than half its rows: see :func:`_holds_categories`.
MAX_NUMERIC_CATEGORIES = 20

#: What turns numbers into text: spaces, thousands separators, decimal commas, currency and percent signs.
_NUMBER_DECORATION = r"[\s,$€£%]"


def decorated_numbers(texts) -> bool:
    """Whether every value of ``texts`` (a pandas Series of str) is a number once spaces, thousands
    separators, currency and percent signs are taken out ("1,453.6", "$5", "12 %"): numbers that a
    spreadsheet wrote as text, which as categories would be one-hot encoded one per distinct value."""
    import pandas as pd

    stripped = texts.str.replace(_NUMBER_DECORATION, "", regex=True)
    return bool(len(texts)) and bool(pd.to_numeric(stripped, errors="coerce").notna().all())


def parse_numbers(series) -> tuple[np.ndarray, np.ndarray]:
    """The column's values as float64 (missing values and text as NaN), and a mask of the values
    that are text rather than numbers ("?", "n/a"; not missing values, not the text "nan").

    Numbers stored as objects (records, Decimal, ``df.T``), numeric text ("1.5") and True/False
    all count as numbers, as scikit-learn's validation converts them.
    """
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    present = series.notna().to_numpy()
    try:
        parsed = pd.to_numeric(series, errors="coerce")
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or not pd.api.types.is_numeric_dtype(parsed.dtype) \
            or pd.api.types.is_complex_dtype(parsed.dtype):
        return np.full(len(series), np.nan), present
    values = parsed.to_numpy(dtype=float, na_value=np.nan)
    text = np.isnan(values) & present
    if text.any():  # the text "nan" is float("nan"): a missing number, refused as such later
        spelled_nan = series[text].astype(str).str.strip().str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
        text[np.flatnonzero(text)[spelled_nan]] = False
    return values, text


def numbers_with_markers(values: np.ndarray, text: np.ndarray) -> bool:
    """Whether a column, as :func:`parse_numbers` reads it, is mostly numbers -- more than its text
    values, with more distinct ones than ``MAX_NUMERIC_CATEGORIES`` or than half the values -- plus a
    few text values such as "?": almost always missing-value markers, not a set of categories."""
    found = values[~np.isnan(values)]
    n_distinct = len(np.unique(found))
    return len(found) > text.sum() and n_distinct > min(MAX_NUMERIC_CATEGORIES, (len(found) + text.sum()) / 2)


def _describe_text(series, text: np.ndarray) -> tuple[str, list[str]]:
    """"the text values '?', 'n/a' (3 of 300 rows, first at index 5)" and the most common values."""
    counts = series[text].astype(str).value_counts()
    shown = [str(v) for v in counts.index[:5]]
    more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
    first = series.index[int(np.flatnonzero(text)[0])]
    first = first.item() if isinstance(first, np.generic) else first  # 96, not np.int64(96)
    listed = ", ".join(repr(v) for v in shown)
    return (f"the text value{'s' if len(counts) > 1 else ''} {listed}{more} ({int(text.sum())} of {len(series)} rows, "
            f"first at index {first!r})"), shown


def _holds_categories(series, name: str) -> bool:
    """Fit: whether a column is encoded as categories (True) or used as numbers (False).

    Categorical dtypes are categories, even of numbers (the user declared them). Other non-numeric
    columns are numbers when every value is one (see :func:`parse_numbers`), and categories when
    they hold text -- except a column of mostly numbers with many distinct ones and a few text
    values such as "?": one-hot encoding would make one category per distinct number (hundreds of
    columns, none of them seen again at prediction time) and silently lose the feature. That is
    almost always a missing-value marker, so it is refused with what to do.
    """
    import pandas as pd

    if not _is_categorical_column(series):
        return False
    if isinstance(series.dtype, pd.CategoricalDtype):
        return True
    values, text = parse_numbers(series)
    if not text.any():
        return False
    if decorated_numbers(series[text].astype(str)):
        described, _ = _describe_text(series, text)
        raise DataError(f"column {name!r} holds numbers written as text: {described}. Thousands separators, "
                        "decimal commas, currency and percent signs are not read as numbers, and as text the "
                        "column would be one-hot encoded with one category per value; write plain numbers (e.g. "
                        f"frame[{name!r}].str.replace(',', '').astype(float)), or convert it with "
                        ".astype('category') to encode it as categories on purpose")
    if numbers_with_markers(values, text):
        described, shown = _describe_text(series, text)
        n_distinct = len(np.unique(values[~np.isnan(values)]))
        raise DataError(f"column {name!r} holds numbers ({n_distinct} distinct) except for {described}. As text it "
                        "would be one-hot encoded with one category per distinct number and lose its meaning. "
                        "Replace those values by numbers, or mark them missing (e.g. pd.read_csv(..., "
                        f"na_values={shown!r})) and drop or impute those rows; to encode the column as "
                        "categories on purpose, convert it with .astype('category')")
    return True


def _column_numbers(series, name: str) -> np.ndarray:
    """Transform: a column that held numbers in fit, as float64 (missing values as NaN).

    Numbers stored as objects or text are converted as in fit; text is refused by name.
    """
    if not _is_categorical_column(series):
        return series.to_numpy(dtype=float, na_value=np.nan)
    values, text = parse_numbers(series)
    if text.any():
        described, _ = _describe_text(series, text)
        raise DataError(f"column {name!r} holds {described}, but it held numbers in fit; replace them by "
                        "numbers or remove those rows (pass the same kind of data as in fit)")
    return values


def _categories(series) -> list[str]:
    """Declared order for pandas categoricals (diamonds' cut: Fair < ... < Ideal), else sorted."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        return [str(c) for c in series.dtype.categories]
    return sorted({str(v) for v in series.dropna()})


def _category_text(value, known: set[str]) -> str:
    """The category ``value`` stands for: its text, or for a whole number the spelling fit stored.

    10 and 10.0 are one category (as in scikit-learn's OneHotEncoder): a column of integer codes
    arrives as floats once a missing value has been dropped, and would otherwise become all-zero
    one-hot columns (an unseen category) without a word.
    """
    text = str(value)
    if text in known or not is_real(value) or not float(value).is_integer():
        return text
    for spelling in (str(int(value)), str(float(value))):
        if spelling in known:
            return spelling
    return text


class TabularEncoder:
    """Encode categorical columns, scale every column, and clip extreme values.

    Parameters
    ----------
    scale : {"minmax", "quantile", "standard", None}
        ``"minmax"`` maps each training column to [-1, 1] (the paper's preprocessing; the
        natural domain of polynomial neurons). ``"quantile"`` maps each column through its
        training quantiles to a uniform distribution on [-1, 1]: heavy tails and outliers no
        longer squash the bulk of a column into a corner of [-1, 1], and new values outside the
        training range stay inside it. ``"standard"`` gives zero mean and unit variance.
    categorical : {"onehot", "ordinal"}
        How text/categorical DataFrame columns become numbers. One-hot columns get
        one 0/1 column per category seen in training; unseen categories at transform time
        encode as all zeros. Ordinal columns have no free code for an unseen category (after
        scaling and clipping any new code would coincide with a seen one), so one raises a
        DataError naming it. A whole number is the same category as int or float (10 and 10.0).

        Which columns are categories: pandas ``category`` columns always (also of numbers).
        Booleans are the numbers 0/1. An object or string column whose values are all numbers
        (numbers stored as objects, numeric text such as ``"1.5"``, True/False) is numeric, as
        in scikit-learn. A column holding text is categorical -- unless it is mostly numbers with
        more than ``MAX_NUMERIC_CATEGORIES`` (20) distinct ones, or more distinct numbers than
        half its rows, and a few text values such as ``"?"``: that is refused with a DataError
        naming the column and the text values (mark them missing and drop or impute those rows,
        or convert the column with ``.astype("category")`` to encode it as categories).
    clip : float or None
        After scaling, values are clipped to [-clip, clip]. Training data lie in [-1, 1]
        under minmax, so this only touches far outliers at prediction time, where a degree-7
        neuron would otherwise turn a 100x outlier into 1e14 and overflow float32.

    Attributes (after ``fit``)
    --------------------------
    n_features_in_ : int
    feature_names_in_ : list of str or None
    feature_names_out_ : list of str
    categories_ : dict column name -> list of categories (as strings)
    """

    def __init__(self, scale: str | None = "minmax", categorical: str = "onehot", clip: float | None = 10.0):
        if scale not in SCALINGS:
            raise DataError(f"scale must be one of {SCALINGS}, got {scale!r}")
        if categorical not in CATEGORICAL_ENCODINGS:
            raise DataError(f"categorical must be one of {CATEGORICAL_ENCODINGS}, got {categorical!r}")
        if clip is not None and not (is_real(clip) and 0 < clip < np.inf):  # np.float32 counts; inf: say None
            raise DataError(f"clip must be a positive finite number or None (no clipping), got {clip!r}")
        self.scale = scale
        self.categorical = categorical
        self.clip = clip

    # -- fitting ------------------------------------------------------------------------------
    def fit_transform(self, X) -> np.ndarray:
        if _is_dataframe(X):
            self.feature_names_in_ = [str(c) for c in X.columns]
            if len(set(self.feature_names_in_)) != len(self.feature_names_in_):
                duplicated = sorted({c for c in self.feature_names_in_ if self.feature_names_in_.count(c) > 1})
                raise DataError(f"duplicated column names {duplicated}; give every column a unique name")
            self.categories_ = {
                name: _categories(X.iloc[:, i])
                for i, name in enumerate(self.feature_names_in_) if _holds_categories(X.iloc[:, i], name)
            }
        else:
            self.feature_names_in_ = None
            self.categories_ = {}
        self.n_features_in_ = X.shape[1]
        raw = self._encode(X)
        self.quantiles_ = None
        if self.scale == "quantile":
            references = np.linspace(0.0, 1.0, min(N_QUANTILES, len(raw)))
            self.quantiles_ = np.quantile(raw, references, axis=0)
            # the uniform [0, 1] values then map affinely to [-1, 1]
            self.scale_, self.offset_ = np.full(raw.shape[1], 2.0), np.full(raw.shape[1], -1.0)
        elif self.scale == "minmax":
            # Halves first: high - low overflows for columns near +-1.8e308, high/2 - low/2 never does.
            low, high = raw.min(axis=0), raw.max(axis=0)
            half_span, middle = high / 2 - low / 2, low / 2 + high / 2
            self.scale_ = self._inverse_spread(half_span, "[-1, 1]")
            self.offset_ = -middle * self.scale_  # a constant column maps to 0, the centre of [-1, 1]
        elif self.scale == "standard":
            mean, std = _robust_statistics(raw, lambda v: (v.mean(axis=0), v.std(axis=0)))
            if not (np.isfinite(mean).all() and np.isfinite(std).all()):
                raise DataError("X has values so large that their mean or variance overflows float64; "
                                "rescale those columns or use scale='minmax'")
            self.scale_ = self._inverse_spread(std, "unit variance")
            self.offset_ = -mean * self.scale_
        else:
            self.scale_ = np.ones(raw.shape[1])
            self.offset_ = np.zeros(raw.shape[1])
        return self._finish(raw)

    def _inverse_spread(self, spread: np.ndarray, target: str) -> np.ndarray:
        """``1 / spread`` per column (1 for constant columns), refusing spreads so small that it overflows."""
        with np.errstate(over="ignore", divide="ignore"):
            scale = 1.0 / np.where(spread > 0, spread, 1.0)
        if not np.isfinite(scale).all():  # 1/spread overflows for spreads below ~5.6e-309 (subnormal)
            tiny = [self._name(j) for j in np.flatnonzero(~np.isfinite(scale))]
            raise DataError(f"columns {tiny} vary by less than 1e-308 (subnormal numbers): too little to scale "
                            f"to {target}; multiply them by a constant (e.g. 1e300) or use quantile scaling")
        return scale

    def transform(self, X) -> np.ndarray:
        if X.shape[1] != self.n_features_in_:
            raise DataError(f"X has {X.shape[1]} features, but the model was fitted with "
                            f"{self.n_features_in_}; pass the same columns as in fit")
        if self.feature_names_in_ is not None and _is_dataframe(X):
            names = [str(c) for c in X.columns]
            if names != self.feature_names_in_:
                raise DataError(f"X has columns {names}, but the model was fitted with "
                                f"{self.feature_names_in_}; pass the same columns in the same order")
        return self._finish(self._encode(X))

    def _finish(self, raw: np.ndarray) -> np.ndarray:
        if self.quantiles_ is not None:
            raw = _quantile_transform(raw, self.quantiles_)
        out = raw * self.scale_ + self.offset_
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out

    def _name(self, j: int) -> str:
        """Name of encoded column ``j`` for messages."""
        names = self.feature_names_out_
        return names[j] if j < len(names) else f"x{j}"

    # -- encoding -----------------------------------------------------------------------------
    @property
    def feature_names_out_(self) -> list[str]:
        names = self.feature_names_in_ or [f"x{i}" for i in range(self.n_features_in_)]
        out: list[str] = []
        for name in names:
            if name in self.categories_ and self.categorical == "onehot":
                out.extend(f"{name}={c}" for c in self.categories_[name])
            else:
                out.append(name)
        return out

    def _encode(self, X) -> np.ndarray:
        if not _is_dataframe(X) or self.feature_names_in_ is None:
            if self.categories_:
                raise DataError(f"this encoder was fitted on a DataFrame with categorical columns "
                                f"{sorted(self.categories_)}; pass a DataFrame with the same named columns "
                                "so that they are encoded by name")
            if _is_dataframe(X):  # fitted on numbers only: object/text columns must hold numbers too
                return _numeric(np.column_stack([_column_numbers(X.iloc[:, i], str(X.columns[i]))
                                                 for i in range(X.shape[1])]), "X")
            return _numeric(np.asarray(X), "X")
        columns: list[np.ndarray] = []
        for i, name in enumerate(self.feature_names_in_):
            column = X.iloc[:, i]
            if name in self.categories_:
                columns.extend(self._encode_categorical(name, column))
            else:
                columns.append(_numeric(_column_numbers(column, name), f"column {name!r}"))
        if not columns:
            raise DataError("X has no columns left to use; pass at least one feature")
        return np.column_stack(columns).astype(float, copy=False)

    def _encode_categorical(self, name: str, column) -> list[np.ndarray]:
        values = column.to_numpy()
        if column.isna().any():  # None, NaN, pd.NA and NaT alike
            raise DataError(f"column {name!r} has missing values; fill them (e.g. with a 'missing' "
                            "category) first")
        categories = self.categories_[name]
        known = set(categories)
        text = np.array([_category_text(v, known) for v in values], dtype=object)
        if self.categorical == "onehot":
            return [(text == c).astype(float) for c in categories]
        lookup = {c: float(i) for i, c in enumerate(categories)}
        unseen = sorted({v for v in text if v not in lookup})
        if unseen:
            raise DataError(f"column {name!r} has categories not seen in fit: {unseen[:5]}; ordinal encoding "
                            "has no code for them. Map them to a known category, or fit with "
                            "categorical='onehot' (unseen categories become all-zero columns)")
        return [np.array([lookup[v] for v in text])]

    # -- serialisation ------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-safe settings and the arrays, for model files."""
        meta = {"scale": self.scale, "categorical": self.categorical, "clip": self.clip,
                "n_features_in": int(self.n_features_in_), "feature_names_in": self.feature_names_in_,
                "categories": self.categories_}
        arrays = {"scale": np.asarray(self.scale_, float), "offset": np.asarray(self.offset_, float)}
        if self.quantiles_ is not None:
            arrays["quantiles"] = np.asarray(self.quantiles_, float)
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TabularEncoder:
        encoder = cls(meta["scale"], meta["categorical"], meta["clip"])
        encoder.n_features_in_ = int(meta["n_features_in"])
        encoder.feature_names_in_ = meta["feature_names_in"]
        encoder.categories_ = {str(k): [str(c) for c in v] for k, v in meta["categories"].items()}
        encoder.scale_, encoder.offset_ = np.asarray(arrays["scale"], float), np.asarray(arrays["offset"], float)
        encoder.quantiles_ = np.asarray(arrays["quantiles"], float) if "quantiles" in arrays else None
        return encoder


class TargetScaler:
    """Affine scaling of regression targets, column by column: ``"standard"``, ``"minmax"`` or None.

    ``"minmax"`` maps to [0, 1] as the paper's protocol does for the targets it reports MSE on.
    """

    def __init__(self, scale: str | None = "standard"):
        if scale not in TARGET_SCALINGS:
            raise DataError(f"scale_y must be one of {TARGET_SCALINGS}, got {scale!r}")
        self.scale = scale

    def fit_transform(self, y: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            center, spread = _robust_statistics(y, self._statistics)
            varying = np.ptp(y, axis=0) > 0
            if (varying & ~(spread > 0)).any():  # the spread itself underflows (subnormal y)
                raise DataError("y varies by less than 1e-308 (subnormal numbers): too little to scale; "
                                "multiply y by a constant (e.g. 1e300) before fitting and divide the "
                                "predictions by it")
            self.center_ = center
            self.spread_ = np.where(spread > 0, spread, 1.0)
            out = self.transform(y)
        if not np.isfinite(out).all():
            raise DataError("y has values so large that scaling them overflows float64; divide y by a "
                            "constant (e.g. 1e300) before fitting and multiply the predictions back")
        return out

    def _statistics(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.scale == "standard":
            return y.mean(axis=0), y.std(axis=0)
        if self.scale == "minmax":
            low = y.min(axis=0)
            return low, y.max(axis=0) - low
        return np.zeros(y.shape[1]), np.ones(y.shape[1])

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (y - self.center_) / self.spread_

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        return y * self.spread_ + self.center_

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"scale": self.scale}, {"center": np.asarray(self.center_, float),
                                       "spread": np.asarray(self.spread_, float)}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TargetScaler:
        scaler = cls(meta["scale"])
        scaler.center_, scaler.spread_ = np.asarray(arrays["center"], float), np.asarray(arrays["spread"], float)
        return scaler


def _robust_statistics(values: np.ndarray, statistics) -> tuple[np.ndarray, np.ndarray]:
    """``statistics(values)`` -> per-column ``(center, spread)`` that neither overflow nor underflow.

    Values near the float64 limit (~1e308) overflow the sums; tiny ones (~1e-170) underflow the
    squares, so a varying column would look constant and be scaled as one (its signal dropped).
    The statistics are affine: such columns are computed on ``x / max|x|`` and scaled back.
    """
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        center, spread = (np.array(a, dtype=float) for a in statistics(values))
        redo = ~(np.isfinite(center) & np.isfinite(spread)) | ((spread == 0) & (np.ptp(values, axis=0) > 0))
        if redo.any():
            size = np.max(np.abs(values[:, redo]), axis=0)
            size = np.where(np.isfinite(size) & (size > 0), size, 1.0)
            part_center, part_spread = statistics(values[:, redo] / size)
            center[redo], spread[redo] = part_center * size, part_spread * size
    return center, spread


def _quantile_transform(raw: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Map each column to [0, 1] by linear interpolation in its quantiles.

    Ties (many equal quantiles, e.g. a 0/1 column) are resolved as scikit-learn's
    QuantileTransformer does: the average of interpolating upwards and downwards, so a value
    shared by many rows lands in the middle of its quantile range instead of at one end.
    """
    references = np.linspace(0.0, 1.0, len(quantiles))
    out = np.empty_like(raw, dtype=float)
    for j in range(raw.shape[1]):
        q = quantiles[:, j]
        out[:, j] = 0.5 * (np.interp(raw[:, j], q, references) - np.interp(-raw[:, j], -q[::-1], -references[::-1]))
    return out


def _numeric(values, what: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be numeric ({exc}); pass a pandas DataFrame to have text columns "
                        "encoded as categories") from None
    if out.ndim == 1:
        out = out.reshape(-1, 1)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).any(axis=1).sum())
        raise DataError(f"{what} contains NaN or infinity in {bad} row(s); remove or impute them first")
    return out

