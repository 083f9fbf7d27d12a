"""Figures for reports: Pareto fronts, neuron response curves, training curves, TN-vs-LN bars.

Each function draws on a matplotlib ``Axes`` the caller owns, so reports can lay them out as
they like. :func:`new_figure` builds a ``matplotlib.figure.Figure`` directly: it is not registered
with pyplot and the caller's matplotlib backend is left alone; :func:`save_figure` writes it to a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from .formula import Formula

__all__ = ["new_figure", "save_figure", "plot_pareto", "plot_response", "plot_history", "plot_comparison"]


def new_figure(n_panels: int = 1, *, width: float = 4.2, height: float = 3.2):
    """A figure with ``n_panels`` side-by-side axes, and the list of axes.

    The figure is a plain ``matplotlib.figure.Figure``: no display is needed, pyplot does not
    keep it alive (no ``plt.close`` needed) and the process-wide matplotlib backend is unchanged.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * n_panels, height), layout="constrained")
    axes = figure.subplots(1, n_panels, squeeze=False)[0]
    return figure, list(axes)


def save_figure(figure, path: str | os.PathLike) -> None:
    """Write ``figure`` to exactly ``path`` (110 dpi).

    The format follows the file suffix when matplotlib can write it (``.png``, ``.pdf``,
    ``.svg``, ...); otherwise, a missing suffix included, the file is a PNG (and no suffix is
    added). The folder must exist (else ``FileNotFoundError``). A binary file object gets a PNG.
    """
    suffix = os.path.splitext(path)[1][1:].lower() if isinstance(path, (str, os.PathLike)) else ""
    file_format = suffix if suffix in figure.canvas.get_supported_filetypes() else "png"
    figure.savefig(path, dpi=110, format=file_format)


def plot_pareto(ax, pareto, chosen: Formula | None = None, title: str = "complexity / error front") -> None:
    """Validation (or train) loss against complexity, the chosen formula highlighted.

    ``pareto`` is a VSR ``pareto_`` frame with columns complexity, train_loss, val_loss, formula. The
    y axis is logarithmic when every loss is positive, linear otherwise (an exact fit has loss 0).
    """
    loss = pareto["val_loss"] if "val_loss" in pareto and pareto["val_loss"].notna().any() else pareto["train_loss"]
    ax.plot(pareto["complexity"], loss, "o-", color="tab:blue", label="front")
    if chosen is not None:
        hits = [i for i, f in enumerate(pareto["formula"]) if Formula(f) == chosen]
        if hits:
            i = hits[0]
            ax.plot(pareto["complexity"].iloc[i], loss.iloc[i], "*", color="tab:red", markersize=14, label="chosen")
    # log only when every loss is positive: an exact fit (loss 0), often the chosen formula, would vanish
    values = np.asarray(loss, dtype=float)
    values = values[np.isfinite(values)]
    ax.set_yscale("log" if len(values) and (values > 0).all() else "linear")
    ax.set_xlabel("complexity (expression nodes)")
    ax.set_ylabel("validation MSE" if loss.name == "val_loss" else "train MSE")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)


def plot_response(ax, formulas: Mapping[str, Formula], *, low: float = -1.0, high: float = 1.0,
                  title: str = "neuron response g(x)") -> None:
    """The scalar formulas g(x) on [low, high] (the scaled input range), one curve each."""
    if not isinstance(formulas, Mapping):
        raise ValueError(f"formulas must be a mapping label -> formula, e.g. {{'found': formula}}, got "
                         f"{type(formulas).__name__}")
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"the input range needs finite low < high, got low={low!r}, high={high!r}")
    grid = np.linspace(low, high, 201)
    for label, formula in formulas.items():
        with np.errstate(all="ignore"):
            values = np.broadcast_to(np.asarray(Formula(formula).evaluate(grid), dtype=float), grid.shape)
        ax.plot(grid, values, label=f"{label}: {Formula(formula).format(3)}")
    ax.set_xlabel("x (scaled input)")
    ax.set_ylabel("g(x)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=7)


def plot_history(ax, histories: Mapping[str, object], *, column: str = "valid_loss",
                 title: str = "training curves") -> None:
    """Per-epoch ``column`` (e.g. validation loss) for several fitted models.

    Each history is an estimator's ``history_`` frame, the :class:`~taskneurons.training.History`
    (or the whole ``TrainingResult``) that :func:`~taskneurons.training.fit_module` returns, or a
    mapping of column names to per-epoch values. A history
    without values of ``column`` (trained without validation data) shows its ``train_loss``. The y axis
    is logarithmic when every value drawn is positive, linear otherwise (e.g. an r2 metric below 0).
    """
    shown = set()
    values_drawn = []
    for label, history in histories.items():
        if isinstance(getattr(history, "history", None), list):  # a TrainingResult: its History
            history = history.history
        if isinstance(history, Mapping):  # columns given as lists, e.g. {"valid_loss": [...]}
            import pandas as pd

            history = pd.DataFrame(history)
        if isinstance(history, list):  # a training.History: a list of per-epoch records
            from .training import History

            history = History(history).to_frame()
        used = column if column in history and history[column].notna().any() else "train_loss"
        if used not in history:
            raise ValueError(f"history {label!r} has no values of {column!r} and no 'train_loss' column.")
        shown.add(used)  # a model trained without validation data falls back to its train loss
        values = np.asarray(history[used], dtype=float)
        values_drawn.append(values[np.isfinite(values)])
        # markers: a single epoch (or a few) would otherwise be an invisible line of one point
        ax.plot(np.arange(1, len(values) + 1), values, label=label, marker="o" if len(values) <= 20 else None,
                markersize=4)
    drawn = np.concatenate(values_drawn) if values_drawn else np.empty(0)
    ax.set_yscale("log" if len(drawn) and (drawn > 0).all() else "linear")
    ax.set_xlabel("epoch")
    ax.set_ylabel(" / ".join(name.replace("_", " ") for name in sorted(shown)) or column.replace("_", " "))
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)


def plot_comparison(ax, labels: Sequence[str], series: Mapping[str, Sequence[float]],
                    errors: Mapping[str, Sequence[float]] | None = None, *, ylabel: str = "",
                    title: str = "") -> None:
    """Grouped bars: one group per label, one bar per series (e.g. LN, TN, paper)."""
    n = len(series)
    width = 0.8 / max(n, 1)
    positions = np.arange(len(labels))
    for j, (name, values) in enumerate(series.items()):
        err = None if errors is None or name not in errors else np.asarray(errors[name], dtype=float)
        for what, array in (("values", values), ("errors", err)):
            if array is not None and len(array) != len(labels):  # matplotlib would broadcast one value
                raise ValueError(f"series {name!r} has {len(array)} {what} for {len(labels)} labels")
        ax.bar(positions + (j - (n - 1) / 2) * width, np.asarray(values, dtype=float), width, yerr=err,
               label=name, capsize=2)
    ax.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
