"""The ``taskneurons`` command: discover, fit, predict, bench, demo.

Every command reads CSV/CSV.gz/Parquet tables whose target is a named column (default: the
last one). Bad input ends with one line on stderr and a non-zero exit code, never a traceback:

    0  success
    1  the computation failed (e.g. training stayed numerically unstable)
    2  bad input: a missing or unreadable file, an unknown column, NaN rows, a foreign model file
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from . import __version__
from .errors import DataError, NumericalError, TaskNeuronsError, WorkerError

app = typer.Typer(
    name="taskneurons",
    help="Task-based neurons: discover a neuron formula for a dataset (vectorized symbolic regression) "
         "and train networks of it.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
bench_app = typer.Typer(help="Reproduce the paper's Table 5 (formulas) and Table 6 (LN vs TN networks).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130


class Task(str, Enum):
    auto = "auto"
    regression = "regression"
    classification = "classification"


class Scale(str, Enum):
    minmax = "minmax"
    shared = "shared"
    none = "none"


class TermWeights(str, Enum):
    per_neuron = "per_neuron"
    per_input = "per_input"
    auto = "auto"


class TermSchedule(str, Enum):
    joint = "joint"
    linear_first = "linear_first"


# -- shared options ----------------------------------------------------------------------------
DataArg = Annotated[Path, typer.Argument(metavar="DATA", help="A .csv, .csv.gz or .parquet table with a "
                                         "header row.", show_default=False)]
TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="Target column: its name, or its 0-based position "
                                              "(-1 is the last) when no column has that name (default: the last column).")]
DropnaOpt = Annotated[bool, typer.Option("--dropna", help="Drop rows with missing values instead of refusing them.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or extra text.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed in [0, 2**32) (same seed, same result).")]


def _console():
    """Results go to stdout; ``--quiet`` only silences progress bars and notes.

    Piped output gets 140 columns rather than rich's 80, so formulas are not wrapped letter by letter.
    """
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 140)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"taskneurons {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    """Task-based neurons for tabular data."""


# -- data helpers ------------------------------------------------------------------------------
def read_data(path: Path, target: str | None, dropna: bool):
    """Read a table and split it into features and target, refusing what cannot be used."""
    frame = _read_frame(path)
    column = _target_column(frame, target, path)
    _check_text_columns(frame, path, column)
    frame = _handle_missing(frame, path, dropna)
    y = frame[column]
    X = frame.drop(columns=[column])
    if X.shape[1] == 0:
        raise DataError(f"{path} has no feature columns besides the target {column!r}")
    return X, y


def _target_column(frame, target: str | None, path: Path):
    """The target's column label: by name, else by 0-based position (``-1``: the last column)."""
    if target is None:
        return frame.columns[-1]
    names = [str(c) for c in frame.columns]
    if target in names:
        return frame.columns[names.index(target)]
    text = target.strip()
    if text.lstrip("+-").isdigit():
        position = int(text)
        if -len(names) <= position < len(names):
            return frame.columns[position]
        raise DataError(f"--target {target}: {path} has no column of that name, and {len(names)} columns, so "
                        f"positions run from 0 to {len(names) - 1} (or -1 for the last)")
    import difflib

    lowered = {name.strip().lower(): name for name in names}
    close = [lowered[m] for m in difflib.get_close_matches(text.lower(), list(lowered), n=3, cutoff=0.6)]
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    raise DataError(f"no column {target!r} in {path}{hint}; its columns are {_listed(names)}")


def _listed(names, limit: int = 20) -> str:
    """Column names for a message, quoted (so that spaces show) and at most ``limit`` of them."""
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _row(position: int) -> str:
    """A data row for a message, counted as ``predict`` numbers its output rows: from 0, after the header."""
    return f"row {position} counted from 0"


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _check_header(frame, path: Path) -> None:
    """Refuse a table without a header row: pandas would take its first data row for the column names
    (and lose that row). A header of whole numbers ("0,1,2") is a header; one of decimals is data."""
    names = [str(c).strip() for c in frame.columns]
    if all(_NUMBER.fullmatch(n) for n in names) and not all(n.lstrip("+-").isdigit() for n in names):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise DataError(f"{path} has no header row: its first row holds numbers ({shown}), not column names; add "
                        "a first line with one name per column, e.g. x1,x2,...,y")


def _check_text_columns(frame, path: Path, target) -> None:
    """Refuse text columns that would be encoded wrongly: numbers written as text ("1,234.5", "$5",
    "12%"), numbers with a few markers such as "?", and (features only) identifiers or dates, which
    one-hot encoding would turn into one column per row."""
    import pandas as pd

    from .preprocessing import MAX_NUMERIC_CATEGORIES, decorated_numbers, numbers_with_markers, parse_numbers

    n = len(frame)
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype) or isinstance(column.dtype, pd.CategoricalDtype):
            continue  # numbers, booleans, or categories the file's reader declared
        values, text = parse_numbers(column)
        if not text.any():
            continue  # missing values only, or numbers stored as objects: both handled later
        first = np.flatnonzero(text)[0]
        where = _row(int(first))
        if decorated_numbers(column[text].astype(str).str.strip()):
            raise DataError(f"column {str(name)!r} of {path} holds numbers written as text, such as "
                            f"{column.iloc[first]!r} ({where}): thousands separators, decimal commas, currency "
                            "and percent signs are not read as numbers; write plain numbers such as 1234.5 "
                            "('.' for decimals, no separators or signs)")
        if numbers_with_markers(values, text):
            shown = ", ".join(repr(v) for v in column[text].astype(str).str.strip().unique()[:3])
            raise DataError(f"column {str(name)!r} of {path} holds numbers but also the text {shown} in "
                            f"{int(text.sum())} row(s) (first: {where}); if those mark missing values, leave the "
                            "cells empty and pass --dropna, otherwise replace them by numbers")
        # a text column with more distinct values than MAX_NUMERIC_CATEGORIES and than half its rows is no
        # set of categories: an identifier, a date or free text
        n_distinct = column.nunique()
        if name != target and n_distinct > max(MAX_NUMERIC_CATEGORIES, n / 2):
            raise DataError(f"column {str(name)!r} of {path} holds {n_distinct} different text values in {n} rows, "
                            f"such as {column.dropna().iloc[0]!r}: an identifier, a date or free text, which would "
                            "become one feature per value; remove the column from the table, or convert it to "
                            "numbers")


def _read_frame(path: Path, min_columns: int = 2):
    """Read a table; ``min_columns=1`` for rows to predict, which have no target column."""
    from .datasets import read_table

    if not path.exists():
        raise DataError(f"no such file: {path}")
    if not path.is_file():
        raise DataError(f"{path} is not a file; pass a .csv, .csv.gz or .parquet table")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; it needs a header row and at least one data row")
    frame = read_table(path, min_columns=min_columns)  # refuses a header without data rows
    _check_header(frame, path)
    return frame


def _handle_missing(frame, path: Path, dropna: bool):
    _refuse_infinite(frame, path)
    missing = frame.isna().any(axis=1)
    n_missing = int(missing.sum())
    if n_missing and not dropna:
        raise DataError(f"{n_missing} of {len(frame)} rows in {path} have missing values ({_first_missing(frame)}); "
                        "pass --dropna to drop them or fill them in first")
    if n_missing:
        frame = frame.loc[~missing]
        if len(frame) == 0:
            raise DataError(f"every row of {path} has a missing value; nothing is left after --dropna")
        # A missing cell makes pandas read a True/False column as object: once the rows with missing values
        # are gone, give such columns back the dtype of a complete file, or they would be taken for text.
        frame = frame.infer_objects()
    return frame


def _first_missing(frame) -> str:
    """Where the first missing value of ``frame`` is, for a message."""
    cells = frame.isna().to_numpy()
    row, col = divmod(int(cells.argmax()), cells.shape[1])
    return f"first: {_row(row)}, column {str(frame.columns[col])!r}"


def _refuse_infinite(frame, path: Path) -> None:
    """Refuse infinite numbers ("inf", "-Infinity", "1e999" in the file), naming the first; they would
    fail later as a bare "Input X contains infinity"."""
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] == 0:
        return
    with np.errstate(invalid="ignore"):
        cells = np.isinf(numeric.to_numpy(dtype=float, na_value=np.nan))
    if cells.any():
        row, col = divmod(int(cells.argmax()), cells.shape[1])
        raise DataError(f"{int(cells.any(axis=1).sum())} row(s) of {path} hold an infinite number (first: "
                        f"{_row(row)}, column {str(numeric.columns[col])!r}); replace them by finite numbers or "
                        "remove those rows")


def _check_seed(seed: int) -> None:
    """numpy's and scikit-learn's seeds must lie in [0, 2**32); refused here in the option's name."""
    if not 0 <= seed < 2**32:
        raise DataError(f"--seed must be an integer in [0, 2**32), got {seed}")


def _resolve_task(task: Task, y) -> str:
    import pandas as pd

    from .datasets import infer_task

    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    if task == Task.auto:
        inferred, _, _ = infer_task(y)
        resolved = "regression" if inferred == "regression" else "classification"
    elif task == Task.regression and not numeric:
        example = y.dropna().iloc[0] if y.notna().any() else None
        raise DataError(f"the target {str(y.name)!r} is not numeric ({y.dtype}, e.g. {example!r}); use --task "
                        "classification for labels")
    else:
        resolved = task.value
    n_classes = int(y.nunique())
    if resolved == "classification" and len(y) > 20 and n_classes > round(0.5 * len(y)):
        # scikit-learn's threshold for "not class labels", refused in the command's words
        what = "pass --task regression" if numeric else "make it numeric and pass --task regression"
        raise DataError(f"the target {str(y.name)!r} has {n_classes} different values in {len(y)} rows, too many "
                        f"classes to learn (most have one example); if it is a measured quantity {what}, "
                        "otherwise choose another --target")
    return resolved


def _check_out_folder(out: Path | None, example: str) -> None:
    """Refuse an --out file that cannot be written before the work, not after it: a missing or read-only
    folder, or a path that is a folder itself."""
    if out is None:
        return
    if out.is_dir():
        raise DataError(f"--out {out} is a folder; pass a file path such as {out / example} instead")
    if not out.parent.is_dir():
        raise DataError(f"the folder {out.parent} of --out {out} does not exist; create it first")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise DataError(f"the folder {out.parent} of --out {out} is not writable; choose another place")


def _encode(X):
    """Numeric matrix for VSR: text columns one-hot encoded, no scaling (VSR scales itself)."""
    from .preprocessing import TabularEncoder

    encoder = TabularEncoder(scale=None, clip=None)
    return encoder.fit_transform(X), encoder.feature_names_out_


def _print_json(payload: dict[str, Any]) -> None:
    typer.echo(_to_json(payload))


def _to_json(payload: dict[str, Any]) -> str:
    """Strict JSON: an undefined metric (NaN, e.g. R² on one test row) is null, since NaN and Infinity are
    not JSON and strict parsers (JSON.parse, jq) refuse them."""
    return json.dumps(_jsonable(payload), indent=2, allow_nan=False, default=str)


def _jsonable(value):
    """``value`` with numpy values as Python ones and non-finite numbers as None."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value) -> str:
    """A table cell: 4 significant digits for numbers and formulas."""
    if value is None:
        return "n/a"  # an undefined metric
    if isinstance(value, float):
        return f"{value:.4g}"
    return value.format() if hasattr(value, "format") and not isinstance(value, str) else str(value)


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise DataError(f"--hidden takes comma-separated widths such as 64,32; got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise DataError(f"--hidden takes positive widths such as 64,32; got {text!r}")
    return sizes


# -- discover ----------------------------------------------------------------------------------
@app.command()
def discover(
    data: DataArg,
    target: TargetOpt = None,
    task: Annotated[Task, typer.Option(help="auto: classification for label-like targets.")] = Task.auto,
    bases: Annotated[str, typer.Option(help="Term families, comma-separated: poly, trig, exp, log, sqrt, "
                                            "tanh, rational, or all.")] = "poly",
    max_degree: Annotated[int, typer.Option(min=1, max=32, help="Highest power of x.")] = 7,
    max_terms: Annotated[int | None, typer.Option(min=1, help="Most terms in the formula (default: --max-degree "
                                                              "with --bases poly, else 4).")] = None,
    scale: Annotated[Scale, typer.Option(help="minmax: each feature to [-1, 1]; shared: one map for all "
                                              "features; none: raw units.")] = Scale.minmax,
    time_budget: Annotated[float | None, typer.Option(
        min=0, help="Seconds for the search; when they run out the best formula so far is kept (default: no "
                    "limit). Bounds the search, not the whole command.")] = None,
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the formula and front as JSON.")] = None,
    dropna: DropnaOpt = False,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Discover the neuron formula shared by all input variables (vectorized symbolic regression)."""
    _check_seed(seed)
    _check_out_folder(out, "formula.json")
    X, y = read_data(data, target, dropna)
    resolved = _resolve_task(task, y)
    values, names = _encode(X)
    from .vsr import VSR  # after the input checks: bad input is refused without loading the models

    vsr = VSR(bases=tuple(b.strip() for b in bases.split(",")), max_degree=max_degree, max_terms=max_terms,
              scale=None if scale == Scale.none else scale.value, task=resolved, random_state=seed,
              time_budget=time_budget, verbose=not (quiet or json_output))
    start = time.perf_counter()
    vsr.fit(values, y.to_numpy())
    seconds = time.perf_counter() - start
    raw = getattr(vsr, "formula_raw_", None)
    payload = {
        "data": str(data), "target": str(y.name), "task": resolved, "n_samples": len(X),
        "n_features": len(names), "scale": scale.value, "formula": str(vsr.formula_),
        "formula_latex": vsr.formula_.latex(), "formula_raw": str(raw) if raw is not None else None,
        "seconds": round(seconds, 4), "stopped_early": vsr.stopped_early_,
        "pareto": [{**row, "formula": str(row["formula"])} for row in vsr.pareto_.to_dict(orient="records")],
        "formula_record": vsr.formula_.to_dict(),
    }
    labelled = _class_formulas(vsr)
    if labelled:  # classification: one formula per one-vs-rest output; say which class each predicts
        payload["classes"] = [_jsonable(label) for label in vsr.classes_.tolist()]
        payload["class_formulas"] = [{"class": _jsonable(label), "formula": str(f)} for label, f in labelled]
    if out is not None:
        out.write_text(_to_json(payload))
    if json_output:
        _print_json(payload)
        return
    from rich.table import Table

    console = _console()
    units = "scaled inputs, " + scale.value if scale != Scale.none else "raw units"
    if labelled:
        for label, formula in labelled:
            console.print(f"formula for class {label!r} ({units}): [bold]{formula.format()}[/bold]")
    else:
        console.print(f"formula ({units}): [bold]{vsr.formula_.format()}[/bold]")
    if raw is not None and scale != Scale.none:
        console.print(f"formula in raw units: {raw.format()}")
    table = Table(title="complexity / error front")
    for column in ("complexity", "n_terms", "train_loss", "val_loss", "formula"):
        table.add_column(column)
    for row in vsr.pareto_.to_dict(orient="records"):
        table.add_row(*(_cell(row.get(c)) for c in ("complexity", "n_terms", "train_loss", "val_loss", "formula")))
    console.print(table)
    if not quiet:
        stopped = ", search stopped by --time-budget" if vsr.stopped_early_ == "time_budget" else ""
        console.print(f"{len(X)} rows x {len(names)} features, {seconds:.2f} s{stopped}")
    if out is not None and not quiet:
        console.print(f"wrote {out}")


def _class_formulas(vsr) -> list[tuple[Any, Any]]:
    """``(class, formula)`` per output of a classification VSR (empty for regression): one-vs-rest
    outputs, one per class, or for two classes the single output of the second (positive) class."""
    classes = getattr(vsr, "classes_", None)
    if classes is None:
        return []
    labels = classes[1:] if len(classes) == 2 else classes
    return list(zip(labels.tolist(), vsr.formulas_, strict=True))


# -- fit ---------------------------------------------------------------------------------------
@app.command()
def fit(
    data: DataArg,
    target: TargetOpt = None,
    task: Annotated[Task, typer.Option(help="auto: classification for label-like targets.")] = Task.auto,
    formula: Annotated[str, typer.Option(help="auto (discover it), a formula such as '2*x**2 + x', or x "
                                              "for ordinary linear neurons.")] = "auto",
    hidden: Annotated[str, typer.Option(help="Hidden layer widths, comma-separated.")] = "64,32",
    term_weights: Annotated[TermWeights, typer.Option(
        help="per_neuron: every neuron weighs every (term, input), the paper's layer; per_input: each input "
             "runs through its own fitted copy of the formula, then a linear layer; auto: train both, keep "
             "the one with the lower validation loss.")] = TermWeights.per_neuron,
    term_schedule: Annotated[TermSchedule, typer.Option(
        help="joint: train everything at once; linear_first (with --term-weights per_input or auto): train the linear "
             "network first, then the formulas too, keeping them only if validation improves.")] = TermSchedule.joint,
    formula_stage_epochs: Annotated[int | None, typer.Option(
        min=1, help="With --term-schedule linear_first: the most epochs of the formula stage (default: the "
                    "epochs the linear stage left of --max-epochs).")] = None,
    max_epochs: Annotated[int, typer.Option(help="Upper bound on training epochs (early stopping).")] = 200,
    test_size: Annotated[float, typer.Option(help="Fraction of rows held out for the reported metrics.")] = 0.2,
    compare: Annotated[bool, typer.Option("--compare/--no-compare",
                                          help="Also train linear neurons of the same shape and compare.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: SeedOpt = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Save the trained model here (.tn).")] = None,
    dropna: DropnaOpt = False,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a network of task-based neurons and report held-out metrics."""
    if not 0 < test_size < 1:
        raise DataError(f"--test-size must lie strictly between 0 and 1, got {test_size}")
    _check_seed(seed)
    _check_out_folder(out, "model.tn")
    sizes = _parse_hidden(hidden)
    X, y = read_data(data, target, dropna)
    resolved = _resolve_task(task, y)
    n_test = math.ceil(test_size * len(X))  # as train_test_split rounds
    if len(X) - n_test < 3:
        raise DataError(f"{data} has {len(X)} usable row(s); --test-size {test_size} holds out {n_test} and leaves "
                        f"{len(X) - n_test} to train on, fewer than 3; pass more rows or a smaller --test-size")
    if formula not in ("auto", "x"):
        from .formula import Formula

        Formula(formula)  # refuse a bad formula before any training
    from sklearn.model_selection import train_test_split

    from .estimators import TaskNeuronClassifier, TaskNeuronRegressor

    stratify = y if resolved == "classification" and y.value_counts().min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=seed,
                                                        stratify=stratify)
    Estimator = TaskNeuronClassifier if resolved == "classification" else TaskNeuronRegressor
    settings = {"hidden_layer_sizes": sizes, "max_epochs": max_epochs, "random_state": seed, "device": device,
                "verbose": not (quiet or json_output)}
    model = Estimator(formula=formula, term_weights=term_weights.value, term_schedule=term_schedule.value,
                      formula_stage_epochs=formula_stage_epochs, **settings).fit(X_train, y_train)
    results = {"TN" if formula != "x" else "LN": _evaluate(model, X_test, y_test, resolved)}
    if compare and formula != "x":
        baseline = Estimator(formula="x", **settings).fit(X_train, y_train)
        results["LN"] = _evaluate(baseline, X_test, y_test, resolved)
    if out is not None:
        model.save(out)
    payload = {"data": str(data), "target": str(y.name), "task": resolved, "n_train": len(X_train),
               "n_test": len(X_test), "formula": str(model.formula_), "hidden": list(model.hidden_layer_sizes_),
               "results": results, "model": str(out) if out else None}
    if json_output:
        _print_json(payload)
        return
    from rich.table import Table

    console = _console()
    console.print(f"neuron formula: [bold]{model.formula_.format()}[/bold]")
    table = Table(title=f"held-out metrics ({len(X_test)} rows)")
    columns = list(next(iter(results.values())))
    table.add_column("model")
    for column in columns:
        table.add_column(column, justify="right")
    for name, metrics in results.items():
        table.add_row(name, *(_cell(metrics[c]) for c in columns))
    console.print(table)
    if out is not None and not quiet:
        console.print(f"saved {out}")


def _evaluate(model, X_test, y_test, task: str) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, r2_score

    predictions = model.predict(X_test)
    metrics: dict[str, Any] = {}
    if task == "classification":
        metrics["accuracy"] = float(accuracy_score(y_test, predictions))
    else:
        # sklearn's R² is undefined (NaN and a warning) on fewer than two rows
        metrics["r2"] = float(r2_score(y_test, predictions)) if len(y_test) >= 2 else None
        metrics["mse"] = float(mean_squared_error(y_test, predictions))
        metrics["mae"] = float(mean_absolute_error(y_test, predictions))
    metrics.update({"parameters": int(model.n_parameters_), "epochs": int(model.n_epochs_),
                    "fit_seconds": round(float(model.fit_time_), 3)})
    return metrics


# -- predict -----------------------------------------------------------------------------------
@app.command()
def predict(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model saved by `taskneurons fit --out`.",
                                               show_default=False)],
    data: DataArg,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write predictions as CSV (default: stdout): a "
                                             "column row (the data row of DATA, counted from 0), then the "
                                             "prediction(s).")]
    = None,
    proba: Annotated[bool, typer.Option("--proba", help="Add class probabilities (classifiers).")] = False,
    dropna: DropnaOpt = False,
) -> None:
    """Predict with a saved model; the table must hold the model's feature columns (others are ignored).

    A model fitted without column names (on an array) takes a table of exactly its features, in the order of fit.
    """
    import pandas as pd

    _check_out_folder(out, "predictions.csv")
    from .persistence import load

    model = load(model_path)
    if proba and not hasattr(model, "predict_proba"):
        raise DataError("--proba needs a classifier model; this model is a regressor")
    frame = _read_frame(data, min_columns=1)  # rows to predict have no target column
    features, by_position = _feature_columns(model, model_path, frame, data)
    _refuse_infinite(features, data)
    missing = features.isna().any(axis=1)
    if missing.any() and not dropna:
        raise DataError(f"{int(missing.sum())} of {len(frame)} rows in {data} have missing feature values "
                        f"({_first_missing(features)}); pass --dropna to skip them")
    if missing.any():
        features = features.loc[~missing].infer_objects()  # as in _handle_missing: True/False back to bool
    inputs = _positional_input(features, model_path, data) if by_position else features
    result = pd.DataFrame({"row": features.index})
    with warnings.catch_warnings():
        # The model's columns were matched by name above; sklearn would warn that the model has no names.
        warnings.filterwarnings("ignore", message="X has feature names, but", category=UserWarning)
        prediction = model.predict(inputs)
        probabilities = model.predict_proba(inputs) if proba else None
    if np.ndim(prediction) == 2:
        for j in range(prediction.shape[1]):
            result[f"prediction_{j}"] = prediction[:, j]
    else:
        result["prediction"] = prediction
    if probabilities is not None:
        for label, column in zip(model.classes_, probabilities.T, strict=False):
            result[f"proba_{label}"] = column
    if out is None:
        result.to_csv(sys.stdout, index=False)
    else:
        result.to_csv(out, index=False)


def _feature_columns(model, model_path: Path, frame, data: Path):
    """The model's feature columns of ``frame``, and whether they were taken by position.

    By name where the model knows its columns' names. sklearn keeps no names for columns named by
    numbers; the encoder keeps them as text when the model has categorical columns, as a CSV header
    does. A model fitted on an array (or on number-named numeric columns) takes its features by position.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = getattr(getattr(model, "encoder_", None), "feature_names_in_", None)
    if names is not None:
        names = [str(c) for c in names]
        absent = [c for c in names if c not in frame.columns]
        if absent:
            raise DataError(f"{data} lacks the model's feature columns {_listed(absent)}")
        return frame[names], False
    n_features = int(model.n_features_in_)
    if frame.shape[1] != n_features:
        raise DataError(f"{model_path} was fitted without column names (on an array, or on columns named by "
                        f"numbers), so it takes its {n_features} feature(s) by position, but {data} has "
                        f"{frame.shape[1]} columns; pass a table of exactly those {n_features} columns, in the "
                        "order of fit")
    return frame, True


def _positional_input(features, model_path: Path, data: Path) -> np.ndarray:
    """The array for a model fitted without column names, which has only numeric features."""
    import pandas as pd

    for name in features.columns:
        dtype = features[name].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            raise DataError(f"column {name!r} of {data} holds text, but {model_path} was fitted on numbers only "
                            "(without column names); pass numeric columns in the order of fit")
    return features.to_numpy(dtype=float)


# -- demo --------------------------------------------------------------------------------------
@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the report.")] = Path("taskneurons-demo"),
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """The main job on bundled data: discover neurons, train TN vs LN, write a report with plots."""
    from .demo import run_demo

    run_demo(out, seed=seed, console=_console(), verbose=not quiet)


# -- bench -------------------------------------------------------------------------------------
class Protocol(str, Enum):
    fast = "fast"
    paper = "paper"


class Executor(str, Enum):
    local = "local"
    ray = "ray"


BenchData = Annotated[Path | None, typer.Option("--data-dir", help="Folder of <name>.csv[.gz]/.parquet tables "
                                                                   "(default: $TASKNEURONS_DATA).")]
BenchNames = Annotated[list[str] | None, typer.Option("--datasets", help="Datasets to run (default: every "
                                                                        "table found in the data folder).")]
BenchOut = Annotated[Path, typer.Option("--out", "-o", help="Folder for results.jsonl, report.md and figures.")]
BenchJobs = Annotated[int, typer.Option("--n-jobs", help="Parallel workers.")]
BenchExecutor = Annotated[Executor, typer.Option("--executor", help="local (process pool) or ray.")]
BenchAddress = Annotated[str | None, typer.Option("--address", help="Ray cluster address (default: local Ray).")]
BenchProtocol = Annotated[Protocol, typer.Option("--protocol", help="fast (early stopping) or paper "
                                                                    "(RMSprop, batch 10, 300 epochs).")]
Table5Protocol = Annotated[Protocol, typer.Option("--protocol", help="fast or paper: the protocol whose split, input "
                                                                     "scaling and discovery (VSR) settings are used; "
                                                                     "Table 5 trains no networks.")]


BenchRetry = Annotated[bool, typer.Option("--retry-errors", help="Compute again the cells recorded as errors "
                                                                 "(kept and skipped by default).")]
BenchReportOnly = Annotated[bool, typer.Option("--report-only", help="Only rebuild report.md and the figures "
                                                                     "from OUT/results.jsonl.")]
BenchPaper = Annotated[Path | None, typer.Option("--paper-dir", help="Folder of the paper's table5.csv and "
                                                                     "table6.csv (default: found automatically).")]


_BENCH_LIST_OPTIONS = ("--datasets", "--structures", "--tn", "--reuse")


def _expand_bench_lists(argv: list[str]) -> list[str]:
    """Let ``bench`` list options take several values, ``--datasets abalone phoneme``, as the docs
    write them: click options take one value each, so repeat the option for every value. The bench
    commands have no positional arguments, so every bare word after such an option is one of its values."""
    if not argv or argv[0] != "bench":
        return argv
    out: list[str] = []
    current = None
    for token in argv:
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            current = name if name in _BENCH_LIST_OPTIONS else None
            out.append(token)
        elif current is not None and out[-1] != current:
            out += [current, token]
        else:
            out.append(token)
    return out


def _split_commas(values: list[str] | None) -> list[str] | None:
    """``--datasets a,b`` is the same as ``--datasets a b``."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _setting_value(text: str):
    """A ``--tn`` value: a JSON literal (``20``, ``0.01``, ``true``, ``null``, ``[64, 32]``), Python's
    ``True`` / ``False`` / ``None``, or else the text itself."""
    python = {"True": True, "False": False, "None": None}
    if text in python:
        return python[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _tn_protocol(protocol: str, settings: list[str] | None, formula: str) -> str | dict:
    """The protocol of a run with ``--tn KEY=VALUE`` / ``--tn-formula`` (its name kept, so that the
    unchanged LN, VSR and boosting cells can be reused), or the plain name without them."""
    if not settings and formula == "vsr":
        return protocol
    tn = {}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"--tn {item!r} is not KEY=VALUE; write e.g. --tn basis=terms or --tn patience=20")
        tn[key.strip()] = _setting_value(value.strip())
    return {"name": protocol, "base": protocol, "tn": tn, "tn_formula": formula}


def _report_only(out: Path, paper_dir: Path | None, quiet: bool, command: str) -> None:
    from .bench import build_report

    path = build_report(out, paper_dir=paper_dir, command=command)
    if not quiet:
        _console().print(f"wrote {path}")


@bench_app.command("table5")
def bench_table5(
    data_dir: BenchData = None,
    datasets: BenchNames = None,
    out: BenchOut = Path("runs/table5"),
    seed: SeedOpt = 0,
    protocol: Table5Protocol = Protocol.fast,
    n_jobs: BenchJobs = 1,
    executor: BenchExecutor = Executor.local,
    address: BenchAddress = None,
    retry_errors: BenchRetry = False,
    report_only: BenchReportOnly = False,
    paper_dir: BenchPaper = None,
    quiet: QuietOpt = False,
) -> None:
    """Table 5: the formula VSR finds on every dataset, beside the paper's."""
    if report_only:
        _report_only(out, paper_dir, quiet, "table5")
        return
    from .bench import run_table5

    run_table5(data_dir=data_dir, datasets=_split_commas(datasets), out=out, seed=seed, n_jobs=n_jobs,
               executor=executor.value, address=address, console=_console(), verbose=not quiet,
               protocol=protocol.value, retry_errors=retry_errors, paper_dir=paper_dir)


@bench_app.command("table6")
def bench_table6(
    data_dir: BenchData = None,
    datasets: BenchNames = None,
    structures: Annotated[list[str] | None, typer.Option("--structures", help="Any of S1..S5 (default: all).")]
    = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Runs per cell (seeds 0..N-1).")] = 10,
    protocol: BenchProtocol = Protocol.fast,
    out: BenchOut = Path("runs/table6"),
    n_jobs: BenchJobs = 1,
    executor: BenchExecutor = Executor.local,
    address: BenchAddress = None,
    boosting: Annotated[bool, typer.Option("--boosting/--no-boosting",
                                           help="Add gradient-boosted trees on the same splits (HGB; XGBoost "
                                                "and LightGBM when installed).")] = True,
    tn: Annotated[list[str] | None, typer.Option(
        "--tn", help="A TN network setting KEY=VALUE (an estimator argument, e.g. basis=terms, "
                     "add_linear_term=false, patience=20; VALUE is JSON or text); repeat for several. "
                     "LN, VSR and boosting cells stay those of the protocol.")] = None,
    tn_formula: Annotated[str, typer.Option(
        "--tn-formula", help="The TN neurons' formula: vsr (discovered per dataset and seed), paper (the "
                             "paper's Table 5 formula of each dataset) or a formula such as 'x**2' for all.")]
    = "vsr",
    reuse: Annotated[list[Path] | None, typer.Option(
        "--reuse", help="Result folders of earlier runs: the finished cells this run needs, with identical "
                        "settings and data, are copied from there instead of computed (e.g. the LN cells "
                        "for a --tn variant).")] = None,
    retry_errors: BenchRetry = False,
    report_only: BenchReportOnly = False,
    paper_dir: BenchPaper = None,
    quiet: QuietOpt = False,
) -> None:
    """Table 6: linear-neuron vs task-based networks, structures S1-S5, several seeds (resumable)."""
    if report_only:
        _report_only(out, paper_dir, quiet, "table6")
        return
    from .bench import run_table6

    run_table6(data_dir=data_dir, datasets=_split_commas(datasets), structures=_split_commas(structures), seeds=seeds,
               protocol=_tn_protocol(protocol.value, tn, tn_formula), out=out, n_jobs=n_jobs,
               executor=executor.value, address=address, boosting=boosting, console=_console(),
               verbose=not quiet, retry_errors=retry_errors, paper_dir=paper_dir, reuse=reuse)


# -- entry point -------------------------------------------------------------------------------
def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, like the errors, not Python's two lines with a source line.
    Warnings of other libraries keep their category's name (e.g. ConvergenceWarning) as a hint."""
    own = category is UserWarning or category.__module__.startswith("taskneurons")
    label = "" if own else f"{category.__name__}: "
    try:
        (file or sys.stderr).write(f"taskneurons: warning: {label}{_one_line(str(message))}\n")
    except OSError:  # stderr closed: a warning is not worth a traceback
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (used by the console script)."""
    with warnings.catch_warnings():  # restores the usual display for a caller (tests call main())
        warnings.showwarning = _show_warning
        return _main_checked(argv)


def _main_checked(argv: list[str] | None) -> int:
    argv = _expand_bench_lists(list(sys.argv[1:] if argv is None else argv))
    try:
        # In this mode click turns Ctrl-C into a *returned* 130 (its Abort), not an exception.
        code = app(args=argv, prog_name="taskneurons", standalone_mode=False)
        if code == EXIT_INTERRUPTED:
            typer.echo("taskneurons: interrupted", err=True)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt) as exc:
        if isinstance(exc.__cause__, EOFError):
            # Typer turns any EOFError into Abort, as for a prompt closed with Ctrl-D; here it is an
            # input that ended early (nobody pressed Ctrl-C), so it is bad input, not an interruption.
            detail = str(exc.__cause__) or "an input ended before its end"
            typer.echo(f"taskneurons: error: {_one_line(detail)} (EOFError)", err=True)
            return EXIT_BAD_INPUT
        typer.echo("taskneurons: interrupted", err=True)
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:  # usage errors of Typer's (vendored) click
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message())  # a bare `taskneurons`: the help text is the answer
            return 0
        typer.echo(f"taskneurons: error: {_one_line(exc.format_message())} (see --help)", err=True)
        return getattr(exc, "exit_code", EXIT_BAD_INPUT)
    except (NumericalError, WorkerError) as exc:
        typer.echo(f"taskneurons: error: {_one_line(str(exc))}", err=True)
        return EXIT_FAILED
    except (TaskNeuronsError, ValueError) as exc:
        typer.echo(f"taskneurons: error: {_one_line(str(exc))}", err=True)
        return EXIT_BAD_INPUT
    except OSError as exc:
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        typer.echo(f"taskneurons: error: {exc.strerror or exc}{where}", err=True)
        return EXIT_BAD_INPUT


def console_main() -> None:  # pragma: no cover - exercised through the installed script
    sys.exit(main())
