"""`taskneurons demo`: the main job end to end on data that ships with scikit-learn.

For each demo task -- a generated VSR task whose true formula is known, scikit-learn's
``diabetes`` (regression) and ``breast_cancer`` (classification) -- it

1. discovers the neuron with VSR on the training split (formula, Pareto front, time),
2. trains a task-based network (TN) and a linear-neuron network (LN) of the same depth,
   the TN given no more parameters than the LN,
3. scores both on the held-out split,

then prints a comparison table and writes ``report.md`` with PNG figures (Pareto fronts,
neuron response curves, training curves, TN-vs-LN bars) and ``summary.json``.
"""

from __future__ import annotations

import json
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .formula import Formula

__all__ = ["run_demo", "DEMO_TASKS"]

#: The generated task: g(x) shared by 8 inputs in [-1, 1], 5 % noise.
SYNTHETIC_TRUTH = "1.5*x**3 - 2*x**2 + 0.5*x"
DEMO_TASKS = ("synthetic", "diabetes", "breast_cancer")
HIDDEN = (32, 16)


@dataclass
class DemoResult:
    name: str
    task: str
    n_samples: int
    n_features: int
    formula: Formula
    vsr_seconds: float
    metric: str
    scores: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    truth: Formula | None = None
    models: dict[str, Any] = field(default_factory=dict, repr=False)


def _load(name: str, seed: int):
    from sklearn.datasets import load_breast_cancer, load_diabetes

    if name == "synthetic":
        rng = np.random.default_rng(seed)
        truth = Formula(SYNTHETIC_TRUTH)
        X = rng.uniform(-1.0, 1.0, size=(1500, 8))
        clean = truth.predict(X)
        y = clean + rng.normal(0.0, 0.05 * np.sqrt(np.mean(clean**2)), size=len(clean))
        return X, y, "regression", truth
    if name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
        return X, y, "regression", None
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        return X, y, "classification", None
    raise ValueError(f"unknown demo task {name!r}; choose from {', '.join(DEMO_TASKS)}")


def _run_task(name: str, seed: int, verbose: bool) -> DemoResult:
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split

    from .estimators import TaskNeuronClassifier, TaskNeuronRegressor

    X, y, task, truth = _load(name, seed)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=stratify)
    Estimator = TaskNeuronClassifier if task == "classification" else TaskNeuronRegressor
    common = {"hidden_layer_sizes": HIDDEN, "max_epochs": 150, "random_state": seed, "verbose": verbose}
    tn = Estimator(formula="auto", parameter_budget="linear", **common).fit(X_train, y_train)
    ln = Estimator(formula="x", **common).fit(X_train, y_train)
    score = accuracy_score if task == "classification" else r2_score
    result = DemoResult(name=name, task=task, n_samples=len(X), n_features=X.shape[1], formula=tn.formula_,
                        vsr_seconds=float(getattr(tn.vsr_, "fit_time_", float("nan"))),
                        metric="accuracy" if task == "classification" else "R^2", truth=truth)
    for label, model in (("TN", tn), ("LN", ln)):
        result.scores[label] = float(score(y_test, model.predict(X_test)))
        result.parameters[label] = int(model.n_parameters_)
        result.fit_seconds[label] = float(model.fit_time_)
        result.models[label] = model
    return result


def _figures(result: DemoResult, out: Path) -> list[str]:
    from .plots import new_figure, plot_history, plot_pareto, plot_response, save_figure

    tn, ln = result.models["TN"], result.models["LN"]
    figure, (left, middle, right) = new_figure(3)
    if tn.vsr_ is not None:
        plot_pareto(left, tn.vsr_.pareto_, chosen=result.formula, title=f"{result.name}: VSR front")
    curves = {"discovered": result.formula}
    if result.truth is not None:
        curves["true"] = result.truth
    plot_response(middle, curves, title=f"{result.name}: neuron g(x)")
    plot_history(right, {f"TN ({result.parameters['TN']} params)": tn.history_,
                         f"LN ({result.parameters['LN']} params)": ln.history_},
                 title=f"{result.name}: validation loss")
    name = f"{result.name}.png"
    save_figure(figure, out / name)
    return [name]


def _summary_figure(results: list[DemoResult], out: Path) -> str:
    from .plots import new_figure, plot_comparison, save_figure

    figure, (ax,) = new_figure(1, width=6.0)
    plot_comparison(ax, [f"{r.name} ({r.metric})" for r in results],
                    {"LN": [r.scores["LN"] for r in results], "TN": [r.scores["TN"] for r in results]},
                    ylabel="held-out score (higher is better)", title="TN vs LN")
    save_figure(figure, out / "tn_vs_ln.png")
    return "tn_vs_ln.png"


def _markdown(results: list[DemoResult], figures: list[str], seconds: float) -> str:
    lines = ["# taskneurons demo", "",
             "Task-based neurons (TN) discovered by vectorized symbolic regression versus ordinary",
             f"linear neurons (LN); hidden layers {HIDDEN}, the TN network shrunk to no more parameters than",
             "the LN one; 25 % of every dataset held out. Formulas are written in the scaled inputs (each",
             "feature mapped to [-1, 1]).", "",
             "| task | n x d | discovered neuron g(x) | VSR s | metric | LN | TN | LN params | TN params |",
             "|---|---|---|---:|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.n_samples} x {r.n_features} | `{r.formula.format(3)}` | {r.vsr_seconds:.2f} "
                     f"| {r.metric} | {r.scores['LN']:.4f} | {r.scores['TN']:.4f} | {r.parameters['LN']} "
                     f"| {r.parameters['TN']} |")
    synthetic = [r for r in results if r.truth is not None]
    for r in synthetic:
        lines += ["", f"The generated task's true neuron is `{r.truth}` (8 inputs, 5 % noise); VSR found "
                      f"`{r.formula.format(3)}` (terms {'match' if r.formula.same_terms(r.truth) else 'differ'})."]
    lines += ["", f"Total time: {seconds:.1f} s.", ""]
    lines += [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def run_demo(out: str | Path = "taskneurons-demo", *, seed: int = 0, console=None, verbose: bool = False,
             tasks: tuple[str, ...] = DEMO_TASKS) -> list[DemoResult]:
    """Run the demo and write its report into ``out``; returns the per-task results."""
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)  # one name, not its letters
    unknown = [name for name in tasks if name not in DEMO_TASKS]
    if unknown or not tasks:  # refused before any work or any output folder
        what = f"unknown demo task(s) {unknown}" if unknown else "no demo tasks given"
        raise ValueError(f"{what}; choose from {', '.join(DEMO_TASKS)}")
    # numpy's and scikit-learn's seeds must lie in [0, 2**32); checked here, not seconds into the first task
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise DataError(f"seed (--seed) must be an integer in [0, 2**32), got {seed!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; pass a folder (it will hold report.md, summary.json and the "
                        "figures)")
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in tasks:
        if console is not None and verbose:
            console.print(f"[bold]{name}[/bold]: discovering the neuron and training TN and LN ...")
        results.append(_run_task(name, seed, verbose))
    figures = [name for r in results for name in _figures(r, out)]
    figures.insert(0, _summary_figure(results, out))
    seconds = time.perf_counter() - start
    (out / "report.md").write_text(_markdown(results, figures, seconds))
    summary = [{"task": r.name, "formula": str(r.formula), "metric": r.metric, "scores": r.scores,
                "parameters": r.parameters, "fit_seconds": r.fit_seconds, "vsr_seconds": r.vsr_seconds,
                "truth": str(r.truth) if r.truth is not None else None} for r in results]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if console is not None:
        _print_table(console, results, out, seconds)
    return results


def _print_table(console, results: list[DemoResult], out: Path, seconds: float) -> None:
    from rich.table import Table

    table = Table(title="task-based (TN) vs linear (LN) neurons, held-out scores")
    for column in ("task", "discovered neuron", "metric", "LN", "TN", "LN params", "TN params"):
        table.add_column(column, justify="right" if column in ("LN", "TN", "LN params", "TN params") else "left")
    for r in results:
        better = "[green]" if r.scores["TN"] >= r.scores["LN"] else ""
        table.add_row(r.name, r.formula.format(3), r.metric, f"{r.scores['LN']:.4f}",
                      f"{better}{r.scores['TN']:.4f}", str(r.parameters["LN"]), str(r.parameters["TN"]))
    console.print(table)
    console.print(f"report: {out / 'report.md'}  ({seconds:.1f} s)")
