"""Load tabular datasets from a data folder, the download cache, or OpenML.

File convention: one table per dataset, ``<data_dir>/<name>.csv``, ``.csv.gz`` or ``.parquet``,
one row per sample, a header row, and **the target in the last column**. Any such file loads,
registered or not, so a folder of new datasets runs without code changes.

Where :func:`load` looks, in order:

1. ``data_dir`` (argument), else ``$TASKNEURONS_DATA``;
2. the download cache, ``$TASKNEURONS_CACHE`` or ``~/.cache/taskneurons`` (``datasets/``
   holds earlier downloads as ``<name>.csv.gz``; you may also drop files there);
3. OpenML, for registered datasets, unless ``download=False`` or ``$TASKNEURONS_OFFLINE`` is set.

If all three fail, a :class:`~taskneurons.errors.DataError` names the file to create and where.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import warnings
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .registry import (
    REGISTRY,
    DatasetInfo,
    DatasetShapeWarning,
    canonical_name,
    lookup,
    normalize_name,
)

__all__ = [
    "SUFFIXES",
    "MAX_INFERRED_CLASSES",
    "load",
    "available",
    "get_info",
    "find_file",
    "default_data_dir",
    "cache_dir",
    "with_shape",
]

#: File endings :func:`load` reads, in order of preference when several exist.
SUFFIXES = (".csv", ".csv.gz", ".parquet")

#: An integer-valued numeric target with at most this many distinct values is inferred to be
#: a classification target (for files that are not in the registry).
MAX_INFERRED_CLASSES = 10

_TRUE = {"1", "true", "yes", "on"}


def default_data_dir() -> Path | None:
    """``$TASKNEURONS_DATA`` as a path, or None when unset or empty."""
    value = os.environ.get("TASKNEURONS_DATA", "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Root of the download cache: ``$TASKNEURONS_CACHE``, else ``~/.cache/taskneurons``."""
    value = os.environ.get("TASKNEURONS_CACHE", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "taskneurons"


def _cache_datasets_dir() -> Path:
    return cache_dir() / "datasets"


def _split_suffix(filename: str) -> tuple[str, str] | None:
    lower = filename.lower()
    # ".csv.gz" before ".csv" so "x.csv.gz" is not read as stem "x.csv".
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)], suffix
    return None


def _table_files(folder: Path) -> list[tuple[str, str, Path]]:
    """(stem, suffix, path) of every readable table in ``folder``, sorted by name."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if path.name.startswith(".") or not path.is_file():
            continue
        parts = _split_suffix(path.name)
        if parts is not None:
            found.append((parts[0], parts[1], path))
    return found


def _name_keys(name: str) -> set[str]:
    """Normalized names a file stem may have for dataset ``name``."""
    key = canonical_name(name)
    if key is None:
        return {normalize_name(name)}
    info = REGISTRY[key]
    names = [info.name, *info.aliases] + ([info.paper_name] if info.paper_name else [])
    return {normalize_name(n) for n in names}


def find_file(name: str, data_dir: str | os.PathLike | None) -> Path | None:
    """The table file for dataset ``name`` in ``data_dir``, or None.

    A file whose stem is exactly ``name`` (or the registry name) wins; otherwise any file whose
    stem matches one of the dataset's names up to case, spaces, ``_``, ``-`` and ``.``.
    Among several endings, ``.csv`` < ``.csv.gz`` < ``.parquet`` in preference.
    """
    if data_dir is None:
        return None
    files = _table_files(Path(data_dir))
    order = {suffix: i for i, suffix in enumerate(SUFFIXES)}
    key = canonical_name(name)
    exact = {name} | ({key} if key else set())
    keys = _name_keys(name)
    matches = [(stem not in exact, order[suffix.lower()], path)
               for stem, suffix, path in files
               if stem in exact or normalize_name(stem) in keys]
    return min(matches)[2] if matches else None


def read_table(path: Path, min_columns: int = 2) -> pd.DataFrame:
    """Read one ``.csv``, ``.csv.gz`` or ``.parquet`` table with at least ``min_columns`` columns.

    The default 2 is a dataset's minimum (features, then the target); a table of new rows to
    predict has no target, so ``min_columns=1`` accepts the single feature of a one-feature model.
    """
    if path.name.lower().endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise DataError(
                f"Reading {path} needs a parquet engine: pip install pyarrow "
                f"(or convert the file to .csv)."
            ) from exc
    else:
        try:
            frame = pd.read_csv(path)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"Could not read {path} as CSV: it is not UTF-8 text ({exc}); save it as UTF-8 (in Excel: "
                f"'CSV UTF-8') or as .parquet."
            ) from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"Could not read {path} as CSV: {exc}") from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            # A truncated or corrupted .csv.gz (e.g. an interrupted copy). EOFError must not escape:
            # click takes it for an aborted prompt and the command would report "interrupted".
            raise _damaged(path, exc) from exc
        except OSError as exc:
            if exc.errno is not None:  # a real I/O error (permissions, ...): the OS message says it
                raise
            raise _damaged(path, exc) from exc
    if frame.shape[1] < min_columns:
        need = ("a dataset needs at least one feature column and the target as the last column"
                if min_columns == 2 else f"at least {min_columns} are needed")
        header = str(frame.columns[0]) if frame.shape[1] else ""
        other = next((sep for sep in (";", "\t", "|") if sep in header), None)
        hint = (f"its header {header[:60]!r} is separated by {other!r}, not by commas: save the table with "
                f"commas as separators" if other is not None else "is the separator a comma?")
        raise DataError(f"{path} has {frame.shape[1]} column(s); {need} ({hint}).")
    if len(frame) == 0:
        raise DataError(f"{path} has a header but no data rows")
    return frame


def _damaged(path: Path, exc: BaseException) -> DataError:
    """The error for a table whose compressed data cannot be decompressed."""
    detail = str(exc) or type(exc).__name__
    return DataError(
        f"Could not read {path} as CSV: the file is damaged (truncated, corrupted or not gzip data: "
        f"{detail}); replace it with an intact copy or save it as plain .csv."
    )


def _is_label_dtype(series: pd.Series) -> bool:
    """Strings, booleans and categoricals: values that are labels, not quantities."""
    return (isinstance(series.dtype, pd.CategoricalDtype)
            or pd.api.types.is_bool_dtype(series.dtype)
            or not pd.api.types.is_numeric_dtype(series.dtype))


def infer_task(y: pd.Series) -> tuple[str, int | None, str]:
    """(task, n_classes, reason) for a target column: ``"regression"``, ``"binary"`` or ``"multiclass"``.

    Labels (strings, booleans, categoricals) and integer targets with 2..MAX_INFERRED_CLASSES
    distinct values are classification; every other numeric target is regression.
    """
    values = y.dropna()
    n_unique = int(values.nunique())
    if _is_label_dtype(y):
        reason = f"target dtype {y.dtype} holds labels"
    elif 2 <= n_unique <= MAX_INFERRED_CLASSES and np.all(np.mod(values.to_numpy(float), 1) == 0):
        reason = f"integer-valued target with {n_unique} <= {MAX_INFERRED_CLASSES} distinct values"
    else:
        return "regression", None, f"numeric target with {n_unique} distinct values"
    return ("binary" if n_unique <= 2 else "multiclass"), n_unique, reason


def _sidecar(path: Path) -> dict:
    """Optional ``<stem>.json`` next to a data file; may hold {"task": ...}."""
    parts = _split_suffix(path.name)
    side = path.with_name(parts[0] + ".json") if parts else None
    if side is None or not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"Could not read {side} as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{side} must hold a JSON object such as {{\"task\": \"regression\"}}.")
    return data


def _infer_info(name: str, frame: pd.DataFrame, path: Path) -> DatasetInfo:
    y = frame.iloc[:, -1]
    task, n_classes, reason = infer_task(y)
    override = _sidecar(path).get("task")
    if override is not None:
        if override == "classification":
            n_classes = int(y.nunique())
            task = "binary" if n_classes == 2 else "multiclass"
        elif override == "regression":
            task, n_classes = "regression", None
        elif override in ("binary", "multiclass"):
            task, n_classes = override, int(y.nunique())
            if (task == "binary") != (n_classes == 2):
                # The networks train one output per class whatever the sidecar says: a wrong name
                # would only mislabel the results.
                raise DataError(
                    f"The sidecar of {path} sets task {task!r}, but the target column {y.name!r} has "
                    f"{n_classes} classes; use 'binary' for 2 classes, 'multiclass' for more, or "
                    f"'classification' to have the count decide."
                )
        else:
            raise DataError(
                f"Unknown task {override!r} in the sidecar of {path}; use 'regression', "
                f"'classification', 'binary' or 'multiclass'."
            )
        reason = f"task set in {_stem_of(path)}.json"
    categorical = tuple(str(c) for c in frame.columns[:-1] if _is_label_dtype(frame[c]))
    return DatasetInfo(
        name=name, paper_name=None, task=task, n_samples=int(frame.shape[0]),
        n_features=int(frame.shape[1] - 1), n_classes=n_classes, target=str(frame.columns[-1]),
        categorical=categorical, id_status="n/a",
        notes=f"not a registered dataset; inferred from {path}: {reason}",
    )


def _stem_of(path: Path) -> str:
    parts = _split_suffix(path.name)
    return parts[0] if parts else path.stem


def _holds_registered(path: Path) -> bool:
    """Whether the file ``path``, named like a registered dataset, is taken as that dataset.

    Not when a ``<stem>.json`` next to it describes it: the sidecar is how a table of one's own
    declares its task, so a ``bank.csv`` with a ``bank.json`` is a new dataset that only shares
    a name, run under its own stem with its own task and never compared with the paper's numbers.
    """
    return not _sidecar(path)


def get_info(name: str, data_dir: str | os.PathLike | None = None) -> DatasetInfo:
    """Registry entry of ``name``, or an entry inferred from its file for an unknown dataset.

    For a file that is not registered the task is inferred from the target (last) column:

    * strings, booleans or categories -> classification;
    * integer-valued numbers with 2 to :data:`MAX_INFERRED_CLASSES` (10) distinct values
      -> classification (so 0/1 labels, but also ordinal scores such as 3..9);
    * anything else -> regression.

    Classification is "binary" with 2 classes, else "multiclass". To override, put a
    ``<stem>.json`` holding ``{"task": "regression"}`` (or "classification") next to the file.

    Raises
    ------
    DataError
        If ``name`` is neither registered nor a file in ``data_dir`` / ``$TASKNEURONS_DATA``.
    """
    key = canonical_name(name)
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    path = find_file(name, folder)
    if key is not None and (path is None or _holds_registered(path)):
        return REGISTRY[key]
    if path is None:
        lookup(name)  # raises the "unknown dataset" error, with suggestions
    return _infer_info(_stem_of(path), read_table(path), path)


def _as_categories(X: pd.DataFrame, info: DatasetInfo) -> pd.DataFrame:
    """String/object feature columns -> pandas ``category``, ordered when the registry knows the
    scale (also for columns a parquet file stores as unordered categories); booleans stay bool."""
    X = X.copy()
    for col in X.columns:
        series = X[col]
        categorical = isinstance(series.dtype, pd.CategoricalDtype)
        if not categorical and (pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype)):
            continue
        order = info.category_orders.get(str(col))
        if order is not None and set(series.dropna().astype(str).unique()) <= set(order):
            X[col] = pd.Categorical(series.astype(str).where(series.notna()), categories=list(order), ordered=True)
        elif not categorical:
            X[col] = series.astype("category")
    return X


def _as_target(y: pd.Series, info: DatasetInfo, path: Path) -> pd.Series:
    n_missing = int(y.isna().sum())
    if n_missing:
        raise DataError(
            f"The target column {y.name!r} of {path} has {n_missing} missing value(s); "
            f"drop those rows or fill them in the file."
        )
    if info.task == "regression":
        numeric = pd.to_numeric(y, errors="coerce")
        if numeric.isna().any():
            bad = y[numeric.isna()].iloc[0]
            raise DataError(
                f"Dataset {info.name!r} is a regression task but its target column {y.name!r} "
                f"in {path} holds non-numeric values such as {bad!r}."
            )
        return numeric.astype(np.float64)
    return y  # labels stay as in the file; the estimators encode them


def _check_shape(X: pd.DataFrame, y: pd.Series, info: DatasetInfo, source: Path) -> None:
    problems = []
    if X.shape != info.shape:
        problems.append(f"shape {X.shape[0]} x {X.shape[1]} (expected {info.n_samples} x "
                        f"{info.n_features})")
    if info.n_classes is not None and y.nunique() != info.n_classes:
        problems.append(f"{y.nunique()} classes (expected {info.n_classes})")
    if problems:
        warnings.warn(
            f"Dataset {info.name!r} from {source} has {' and '.join(problems)}, unlike the "
            f"paper's Table 5; results will not be comparable to the paper's.",
            DatasetShapeWarning,
            stacklevel=3,
        )


def _fetch_openml(**kwargs):
    """sklearn's fetch_openml, behind a module attribute so tests can replace it."""
    from sklearn.datasets import fetch_openml

    return fetch_openml(**kwargs)


# Errors that mean "the download did not work" (no network, server error, missing dataset).
_FETCH_ERRORS = (OSError, ValueError, http.client.HTTPException)


def _download(info: DatasetInfo) -> Path:
    """Fetch ``info`` from OpenML into the cache; return the written ``<name>.csv.gz``."""
    root = cache_dir()
    kwargs = {"as_frame": True, "data_home": str(root / "openml")}
    if info.openml_id is not None:
        kwargs["data_id"] = info.openml_id
    else:
        kwargs.update(name=info.openml_name, version=info.openml_version)
    if info.openml_target is not None:
        kwargs["target_column"] = info.openml_target
    bunch = _fetch_openml(**kwargs)
    X, y = bunch.data, bunch.target
    if not isinstance(X, pd.DataFrame) or not isinstance(y, pd.Series):
        raise DataError(
            f"OpenML returned no single target column for {info.name!r} "
            f"({_source_text(info)}); download it yourself and save it as a CSV with the target last."
        )
    target = str(y.name) if y.name is not None else "target"
    while target in X.columns:  # keep the target last and uniquely named
        target += "_target"
    frame = X.copy()
    frame[target] = y.to_numpy()
    out = _cache_datasets_dir() / f"{info.name}.csv.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename so an interrupted download never leaves a truncated cache file.
    tmp = out.with_name(out.name + ".part")
    frame.to_csv(tmp, index=False, compression="gzip")
    tmp.replace(out)
    return out


def _source_text(info: DatasetInfo) -> str:
    if info.openml_id is not None:
        return f"OpenML data id {info.openml_id}"
    return f"OpenML dataset {info.openml_name!r} version {info.openml_version}"


def _downloads_allowed(download: bool | None) -> bool:
    if download is not None:
        return bool(download)
    return os.environ.get("TASKNEURONS_OFFLINE", "").strip().lower() not in _TRUE


def _not_found(name: str, info: DatasetInfo | None, folder: Path | None, why: str) -> DataError:
    stem = info.name if info is not None else name
    where = folder if folder is not None else _cache_datasets_dir()
    looked = (f"looked in the data folder {folder} and" if folder is not None
              else "no data folder was given (pass data_dir=... or set $TASKNEURONS_DATA); looked")
    return DataError(
        f"Dataset {name!r} was not found: {looked} in the download cache "
        f"{_cache_datasets_dir()}; {why}{'' if why.endswith('?') else '.'} Put the data at {Path(where).resolve() / (stem + '.csv')} "
        f"(or {stem}.csv.gz / {stem}.parquet: a header row, one row per sample, the target in the "
        f"last column)."
    )


def load(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Load dataset ``name`` as features and target.

    Parameters
    ----------
    name : str
        A registered name in any accepted spelling ("california housing", "bank_marketing"),
        or the stem of a file in the data folder (a dataset the registry does not know).
    data_dir : path or None
        Folder holding ``<name>.csv`` / ``.csv.gz`` / ``.parquet``; default ``$TASKNEURONS_DATA``.
    download : bool or None
        Whether a registered dataset missing locally may be fetched from OpenML (into the cache,
        see :func:`cache_dir`). None (default): yes, unless ``$TASKNEURONS_OFFLINE`` is set;
        False: never; True: yes, even when ``$TASKNEURONS_OFFLINE`` is set.

    Returns
    -------
    X : DataFrame of shape (n_samples, n_features)
        Feature columns as in the file; string columns become pandas ``category`` (ordered for
        known ordinal scales such as diamonds' cut/color/clarity).
    y : Series of shape (n_samples,)
        The last column. Regression targets as float64; class labels unchanged.

    Raises
    ------
    DataError
        Unknown name and no such file; unreadable file; missing target values; or a registered
        dataset with no local file that could not be downloaded (the message names the file to
        create and where).

    Warns
    -----
    DatasetShapeWarning
        When a registered dataset's rows, features or classes differ from the paper's Table 5.
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    key = canonical_name(name)
    info = REGISTRY[key] if key is not None else None

    path = find_file(name, folder)
    if info is not None and path is not None and not _holds_registered(path):
        key = info = None  # the user's own table under a registered name (see _holds_registered)
    if path is None:  # the download cache: fetched files, and any table dropped there by hand
        path = find_file(info.name if info is not None else name, _cache_datasets_dir())
    if path is None:
        if info is None:
            try:
                lookup(name)
            except DataError as exc:
                raise _not_found(name, None, folder, str(exc).rstrip(".")) from None
        if not info.can_download:
            raise _not_found(name, info, folder, f"it cannot be downloaded ({info.notes})")
        if not _downloads_allowed(download):
            reason = ("download=False" if download is False
                      else "downloads are off ($TASKNEURONS_OFFLINE is set)")
            raise _not_found(name, info, folder, f"{reason}, so {_source_text(info)} was not fetched")
        try:
            path = _download(info)
        except _FETCH_ERRORS as exc:
            raise _not_found(
                name, info, folder,
                f"fetching {_source_text(info)} failed ({type(exc).__name__}: {exc})",
            ) from exc

    frame = read_table(path)
    if info is None:
        info = _infer_info(_stem_of(path), frame, path)
    X = _as_categories(frame.iloc[:, :-1], info)
    y = _as_target(frame.iloc[:, -1], info, path)
    if key is not None:
        _check_shape(X, y, info, path)
    return X, y


def available(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Datasets loadable from ``data_dir`` (default ``$TASKNEURONS_DATA``) without a download.

    Returns the registered names that have a file there (in Table 5 order), then the stems of
    the other ``.csv`` / ``.csv.gz`` / ``.parquet`` files (datasets the registry does not know),
    sorted. An unset or missing folder gives an empty list.
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    if folder is None:
        return []
    files = _table_files(folder)
    registered = []
    claimed: set[str] = set()
    for reg_name in REGISTRY:
        path = find_file(reg_name, folder)
        if path is not None and _holds_registered(path):
            registered.append(reg_name)
            claimed.add(_stem_of(path))
            # Other spellings of the same dataset must not show up as extra datasets.
            claimed.update(stem for stem, _, p in files
                           if canonical_name(stem) == reg_name and _holds_registered(p))
    others = sorted({stem for stem, _, _ in files if stem not in claimed}, key=str.lower)
    return registered + others


def with_shape(info: DatasetInfo, X: pd.DataFrame, y: pd.Series) -> DatasetInfo:
    """A copy of ``info`` with the shape and class count of the data actually loaded."""
    n_classes = int(y.nunique()) if info.is_classification else None
    return replace(info, n_samples=int(X.shape[0]), n_features=int(X.shape[1]), n_classes=n_classes)
