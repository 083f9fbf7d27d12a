"""The paper's published reference numbers (Tables 5 and 6), read from its CSV files.

The CSV files are not shipped with the package (project rule: they stay in the shared data
folder). :func:`resolve_paper_dir` finds the folder holding ``table5.csv`` and ``table6.csv``,
first that applies:

1. the ``paper_dir`` argument;
2. ``$TASKNEURONS_PAPER_DIR``;
3. ``$TASKNEURONS_DATA/../../paper`` (the shared layout: ``datasets/paper`` and ``paper``);
4. ``../shared/paper`` relative to the current directory (a development checkout);
5. ``<folder>/../../paper`` for each data folder in ``near`` (the shared layout again, for a run
   whose ``--data-dir`` names the folder; the benchmarks pass theirs).

If none holds the tables, a :class:`~taskneurons.errors.DataError` says so; reports then print
"paper numbers not available".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..errors import DataError
from .registry import canonical_name

__all__ = ["STRUCTURES", "MODELS", "resolve_paper_dir", "paper_table5", "paper_table6"]

#: Network structures of Table 6.
STRUCTURES = ("S1", "S2", "S3", "S4", "S5")
#: LN = linear-neuron network, TN = task-based-neuron network.
MODELS = ("LN", "TN")

_FILES = ("table5.csv", "table6.csv")


def _candidates(paper_dir, near=()) -> list[tuple[str, Path]]:
    if paper_dir is not None:
        return [("paper_dir argument", Path(paper_dir))]
    found = []
    env = os.environ.get("TASKNEURONS_PAPER_DIR", "").strip()
    if env:
        found.append(("$TASKNEURONS_PAPER_DIR", Path(env).expanduser()))
    data = os.environ.get("TASKNEURONS_DATA", "").strip()
    if data:
        found.append(("$TASKNEURONS_DATA/../../paper", Path(data).expanduser() / ".." / ".." / "paper"))
    found.append(("../shared/paper", Path("..") / "shared" / "paper"))
    for folder in dict.fromkeys(str(f) for f in near if f is not None):
        found.append(("the data folder's ../../paper", Path(folder) / ".." / ".." / "paper"))
    return found


def resolve_paper_dir(paper_dir: str | os.PathLike | None = None, *,
                      near: Iterable[str | os.PathLike | None] = ()) -> Path:
    """The folder holding the paper's ``table5.csv`` and ``table6.csv`` (see module docstring);
    ``near``: data folders whose ``../../paper`` is tried last (when ``paper_dir`` is None).

    Raises
    ------
    DataError
        When no candidate folder holds both files; the message lists every folder tried.
    """
    candidates = _candidates(paper_dir, near)
    for _, folder in candidates:
        if all((folder / name).is_file() for name in _FILES):
            return folder.resolve()
    looked = "; ".join(f"{label}: {folder}" for label, folder in candidates)
    raise DataError(
        f"The paper's reference numbers are not available: no folder holding {' and '.join(_FILES)} "
        f"was found (looked at {looked}). Pass paper_dir=... or set $TASKNEURONS_PAPER_DIR."
    )


def _registry_name(paper_name: str, table: str) -> str:
    name = canonical_name(paper_name)
    if name is None:
        raise DataError(
            f"{table} names a dataset {paper_name!r} that the registry does not know; "
            f"is the file the paper's table?"
        )
    return name


def paper_table5(paper_dir: str | os.PathLike | None = None, *,
                 near: Iterable[str | os.PathLike | None] = ()) -> pd.DataFrame:
    """Table 5: the formula the paper's VSR found on each dataset (``paper_dir``, ``near``: where to
    look, see :func:`resolve_paper_dir`).

    Returns
    -------
    DataFrame with one row per dataset (20) and columns
        ``dataset`` (registry name), ``paper_name``, ``task`` ("regression", "binary",
        "multiclass"), ``n_samples``, ``n_features``, ``n_classes`` (nullable Int64; <NA> for
        regression) and ``formula`` (text in this project's syntax, see ``taskneurons.Formula``).
    """
    path = resolve_paper_dir(paper_dir, near=near) / "table5.csv"
    raw = pd.read_csv(path, dtype=str)
    expected = {"dataset", "instances", "features", "classes", "formula"}
    if not expected <= set(raw.columns):
        raise DataError(f"{path} lacks columns {sorted(expected - set(raw.columns))}")
    try:
        classes = pd.to_numeric(raw["classes"].where(raw["classes"].str.strip() != "continuous"),
                                errors="raise").astype("Int64")
        n_samples, n_features = raw["instances"].astype(int), raw["features"].astype(int)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path} holds a malformed number in its classes, instances or features column "
                        f"({exc}); is the file the paper's table?") from None
    task = ["regression" if pd.isna(c) else ("binary" if c == 2 else "multiclass") for c in classes]
    return pd.DataFrame({
        "dataset": [_registry_name(n, path.name) for n in raw["dataset"]],
        "paper_name": raw["dataset"].str.strip(),
        "task": task,
        "n_samples": n_samples,
        "n_features": n_features,
        "n_classes": classes,
        "formula": raw["formula"].str.strip(),
    })


def _number(path: Path, record: dict, column: str) -> float:
    """One value of table6.csv as a float; a malformed one names the file, row and column."""
    value = record[column]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}: the row of {str(record['dataset']).strip()!r} holds {value!r} in column "
                        f"{column}, not a number; is the file the paper's table?") from None


def paper_table6(paper_dir: str | os.PathLike | None = None, *,
                 near: Iterable[str | os.PathLike | None] = ()) -> pd.DataFrame:
    """Table 6: test MSE / accuracy of LN and TN networks, structures S1..S5, mean (std) of 10 runs
    (``paper_dir``, ``near``: where to look, see :func:`resolve_paper_dir`).

    Returns
    -------
    DataFrame in tidy form, one row per (dataset, structure, model): 20 x 5 x 2 = 200 rows with
    columns ``dataset`` (registry name), ``paper_name``, ``structure`` ("S1".."S5"), ``model``
    ("LN" or "TN"), ``metric`` ("mse": lower is better, on min-max scaled targets; "accuracy":
    higher is better), ``mean`` and ``std`` (floats).
    """
    path = resolve_paper_dir(paper_dir, near=near) / "table6.csv"
    raw = pd.read_csv(path)
    value_cols = [f"{m}_{s}_{stat}" for s in STRUCTURES for m in MODELS for stat in ("mean", "std")]
    missing = [c for c in ["dataset", "metric", *value_cols] if c not in raw.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing}")
    rows = []
    for record in raw.to_dict("records"):
        name = _registry_name(record["dataset"], path.name)
        for structure in STRUCTURES:
            for model in MODELS:
                rows.append({
                    "dataset": name,
                    "paper_name": str(record["dataset"]).strip(),
                    "structure": structure,
                    "model": model,
                    "metric": str(record["metric"]).strip(),
                    "mean": _number(path, record, f"{model}_{structure}_mean"),
                    "std": _number(path, record, f"{model}_{structure}_std"),
                })
    return pd.DataFrame(rows)
