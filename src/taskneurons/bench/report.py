"""Benchmark reports, rebuilt from ``results.jsonl`` alone: ``report.md`` plus PNG figures.

:func:`build_report` writes, for every protocol found in the results:

* **Table 6** (LN and TN cells): per dataset and structure, LN and TN mean (std) over seeds with
  their parameter counts, the paired difference and its outcome (win / tie / loss, defined in the
  report), the paper's LN and TN numbers, and the boosting baselines; a win/tie/loss summary; for
  classification datasets, TN's best structure against the paper's best TN accuracy; figures
  ``table6_<protocol>_datasets.png`` and ``table6_<protocol>_outcomes.png``.
* **Table 5** (VSR cells): the formula found, how stable it is over seeds, its own test metric and
  search time, beside the paper's formula.
* the cost of every kind of cell (for sizing a grid) and the cells that failed.

The paper's numbers come from :func:`taskneurons.datasets.paper_table6` / ``paper_table5``; where
they cannot be found (a ``DataError``), "n/a" is printed. Figures are plain ``matplotlib.figure.Figure``
objects written to PNG (no pyplot, no display; the process-wide backend is left alone).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .protocols import STRUCTURES
from .runner import RESULTS_FILE
from .store import ResultStore

__all__ = [
    "load_results",
    "tn_formula_text",
    "table6_summary",
    "outcome_counts",
    "best_structures",
    "table5_summary",
    "cost_summary",
    "build_report",
    "print_table6",
    "print_table5",
    "REPORT_FILE",
    "ALPHA",
]

REPORT_FILE = "report.md"
#: Significance level of the paired test that separates wins and losses from ties.
ALPHA = 0.05
_NETWORKS = ("LN", "TN")
_BOOSTING = ("HGB", "XGBoost", "LightGBM")


# -- loading -----------------------------------------------------------------------------------
def load_results(source: str | os.PathLike, *, command: str = "table6") -> pd.DataFrame:
    """All records of ``source`` (an output folder or a ``.jsonl`` file) as a DataFrame, one row a cell.

    ``command``: the ``taskneurons bench`` command that the error for a folder without results says to run.
    """
    path = Path(source)
    if path.is_dir() or path.suffix != ".jsonl":  # an output folder, existing or not
        if path.is_file():
            raise DataError(f"{path} is a file, not a results folder or a .jsonl file of results; pass the "
                            "--out folder of a run")
        path = path / "results.jsonl"
    records = ResultStore.read(path)
    if not records:
        raise DataError(f"no results in {path}; run `taskneurons bench {command} --out {path.parent}` first")
    frame = pd.DataFrame.from_records(records)
    for column in ("status", "test_value", "train_value", "n_parameters", "hidden_used", "time", "fit_time",
                   "formula", "formula_record", "error", "data_dir", "metric", "task", "settings"):
        if column not in frame:
            frame[column] = None
    frame["test_value"] = pd.to_numeric(frame["test_value"], errors="coerce")
    return frame


def _paper_tables(paper_dir, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """(table5, table6, where) of the paper, or None where not found (then ``where`` says why)."""
    from ..datasets import paper_table5, paper_table6

    # Without paper_dir, also the shared layout next to the runs' data: <root>/datasets/paper and <root>/paper.
    near = list(frame["data_dir"].dropna().unique()) if "data_dir" in frame else []
    try:
        return (paper_table5(paper_dir, near=near), paper_table6(paper_dir, near=near),
                "the paper's Tables 5 and 6")
    except DataError as exc:
        return None, None, str(exc)


# -- statistics --------------------------------------------------------------------------------
def _std(values: np.ndarray) -> float:
    """Sample standard deviation; NaN (printed "–") with fewer than two values."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def _count_text(values) -> str:
    """One integer, or the range when seeds differ (TN widths follow each seed's formula)."""
    values = [int(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def _widths_text(values) -> str:
    shapes = [tuple(v) for v in values if isinstance(v, (list, tuple))]
    if not shapes:
        return "n/a"
    common = pd.Series([",".join(map(str, s)) for s in shapes]).mode()
    return common.iloc[0] if len(set(shapes)) == 1 else f"{common.iloc[0]} (mode)"


def _outcome(better: np.ndarray, alpha: float) -> tuple[str, float]:
    """(outcome, p-value) from paired differences oriented so that positive = TN better."""
    from scipy import stats

    if len(better) == 0:
        return "n/a", math.nan
    mean = float(np.mean(better))
    # Identical differences (up to float rounding, where the t statistic is meaningless): the sign decides.
    if len(better) < 2 or float(np.std(better)) <= 1e-10 * abs(mean):
        return ("win" if mean > 0 else "loss" if mean < 0 else "tie"), math.nan
    p_value = float(stats.ttest_rel(better, np.zeros_like(better)).pvalue)
    if p_value < alpha:
        return ("win" if mean > 0 else "loss"), p_value
    return "tie", p_value


def _structure_order(name: str) -> tuple:
    names = list(STRUCTURES)
    return (names.index(name), name) if name in names else (len(names), name)


def table6_summary(frame: pd.DataFrame, paper6: pd.DataFrame | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (protocol, dataset, structure) holding LN and/or TN results.

    Columns: protocol, dataset, task, metric, structure; ``ln_``/``tn_`` + mean, std (sample std
    over the seeds both models finished, or over all finished seeds when the other model has
    none), n (seeds with status ok), params, hidden; n_pairs, diff (mean paired difference,
    positive = TN better: LN - TN for MSE, TN - LN for accuracy), rel_diff (diff / |LN mean|),
    p_value (paired t-test), outcome ("win", "tie", "loss", "n/a"), tn_ge (TN mean better or equal),
    paper_ln_mean/std and paper_tn_mean/std (NaN when unknown), and ``<boosting>_mean``/``_std``.
    """
    ok = frame[frame["status"] == "ok"]
    nets = frame[frame["model"].isin(_NETWORKS)]
    rows = []
    groups = nets.groupby(["protocol", "dataset", "structure"], sort=False)
    for (protocol, dataset, structure), group in groups:
        row: dict[str, Any] = {"protocol": protocol, "dataset": dataset, "structure": structure,
                               "task": group["task"].iloc[0], "metric": group["metric"].iloc[0]}
        per_model = {}
        for model in _NETWORKS:
            cells = ok[(ok["protocol"] == protocol) & (ok["dataset"] == dataset) & (ok["structure"] == structure)
                       & (ok["model"] == model)]
            per_model[model] = cells.set_index("seed")["test_value"]
            prefix = model.lower()
            row[f"{prefix}_n"] = len(cells)
            row[f"{prefix}_params"] = _count_text(cells["n_parameters"])
            row[f"{prefix}_hidden"] = _widths_text(cells["hidden_used"])
        seeds = per_model["LN"].index.intersection(per_model["TN"].index)
        for model in _NETWORKS:
            # Over the seeds both models finished (a failed cell leaves one out), so the shown means
            # agree with Δ, the test and the strict count; over all finished seeds when the other
            # model has none.
            values = per_model[model]
            values = (values[values.index.isin(seeds)] if len(seeds) else values).to_numpy(float)
            row[f"{model.lower()}_mean"] = float(np.mean(values)) if len(values) else math.nan
            row[f"{model.lower()}_std"] = _std(values)
        sign = -1.0 if row["metric"] == "mse" else 1.0
        better = sign * (per_model["TN"].loc[seeds].to_numpy(float) - per_model["LN"].loc[seeds].to_numpy(float))
        row["n_pairs"] = len(seeds)
        row["diff"] = float(np.mean(better)) if len(better) else math.nan
        row["rel_diff"] = row["diff"] / abs(row["ln_mean"]) if len(better) and row["ln_mean"] else math.nan
        row["outcome"], row["p_value"] = _outcome(better, alpha)
        row["tn_ge"] = bool(len(better)) and row["diff"] >= 0
        row.update(_paper_row(paper6, dataset, structure))
        for model in _BOOSTING:
            cells = ok[(ok["protocol"] == protocol) & (ok["dataset"] == dataset) & (ok["model"] == model)]
            values = cells["test_value"].to_numpy(float)
            row[f"{model}_mean"] = float(np.mean(values)) if len(values) else math.nan
            row[f"{model}_std"] = _std(values)
        rows.append(row)
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    summary["_order"] = summary["structure"].map(_structure_order)
    summary["_name"] = summary["dataset"].str.lower()
    summary = summary.sort_values(["protocol", "_name", "_order"], kind="stable").drop(columns=["_order", "_name"])
    return summary.reset_index(drop=True)


def _paper_row(paper6: pd.DataFrame | None, dataset: str, structure: str) -> dict[str, float]:
    out = {f"paper_{m.lower()}_{s}": math.nan for m in _NETWORKS for s in ("mean", "std")}
    if paper6 is None:
        return out
    hits = paper6[(paper6["dataset"] == dataset) & (paper6["structure"] == structure)]
    for record in hits.to_dict("records"):
        out[f"paper_{record['model'].lower()}_mean"] = float(record["mean"])
        out[f"paper_{record['model'].lower()}_std"] = float(record["std"])
    return out


def outcome_counts(summary: pd.DataFrame) -> dict[str, int]:
    """Win / tie / loss / n/a counts over (dataset, structure) pairs, and the strict TN >= LN count."""
    decided = summary[summary["outcome"] != "n/a"]
    counts = {name: int((summary["outcome"] == name).sum()) for name in ("win", "tie", "loss", "n/a")}
    counts["pairs"] = len(decided)
    counts["tn_ge"] = int(decided["tn_ge"].sum())
    return counts


def best_structures(summary: pd.DataFrame, paper6: pd.DataFrame | None) -> pd.DataFrame:
    """Classification datasets: TN's best structure (highest mean accuracy) vs the paper's best TN.

    ``outcome``: "beats" (ours >= paper's), "matches" (below, but within one standard error of our
    mean, std/sqrt(n)), "below", or "n/a" (no paper number for the dataset).
    """
    rows = []
    for (protocol, dataset), group in summary[summary["metric"] == "accuracy"].groupby(["protocol", "dataset"],
                                                                                       sort=False):
        group = group[group["tn_n"] > 0]
        if group.empty:
            continue
        best = group.loc[group["tn_mean"].idxmax()]
        se = best["tn_std"] / math.sqrt(best["tn_n"]) if best["tn_n"] > 0 else math.nan
        row = {"protocol": protocol, "dataset": dataset, "structure": best["structure"], "tn_mean": best["tn_mean"],
               "tn_std": best["tn_std"], "tn_se": se, "paper_structure": None, "paper_tn_mean": math.nan,
               "paper_tn_std": math.nan, "outcome": "n/a"}
        if paper6 is not None:
            paper = paper6[(paper6["dataset"] == dataset) & (paper6["model"] == "TN")]
            if not paper.empty:
                top = paper.loc[paper["mean"].idxmax()]
                row.update(paper_structure=top["structure"], paper_tn_mean=float(top["mean"]),
                           paper_tn_std=float(top["std"]))
                ours, theirs = best["tn_mean"], float(top["mean"])
                row["outcome"] = "beats" if ours >= theirs else ("matches" if ours + se >= theirs else "below")
        rows.append(row)
    return pd.DataFrame(rows)


def _term_set(record) -> tuple:
    from ..formula import Formula

    if not isinstance(record, dict):
        return ()
    return tuple(sorted(t.key for t in Formula.from_dict(record).terms))


def table5_summary(frame: pd.DataFrame, paper5: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (protocol, dataset) with VSR cells: the formula of the lowest seed (3 significant
    digits), how many seeds share its terms, the formula's own test metric (mean over seeds), the
    median search time (s), and the paper's formula."""
    from ..formula import Formula

    vsr = frame[(frame["model"] == "VSR") & (frame["status"] == "ok")]
    rows = []
    for (protocol, dataset), group in vsr.groupby(["protocol", "dataset"], sort=False):
        group = group.sort_values("seed")
        first = group.iloc[0]
        terms = [_term_set(r) for r in group["formula_record"]]
        paper = math.nan
        if paper5 is not None:
            hits = paper5[paper5["dataset"] == dataset]
            paper = hits["formula"].iloc[0] if not hits.empty else math.nan
        rows.append({
            "protocol": protocol, "dataset": dataset, "task": first["task"], "metric": first["metric"],
            "seed": int(first["seed"]), "formula": Formula.from_dict(first["formula_record"]).format(3),
            "n_seeds": len(group), "same_terms": sum(t == terms[0] for t in terms),
            "test_mean": float(group["test_value"].mean()), "time_median": float(group["fit_time"].median()),
            "paper_formula": paper,
        })
    return pd.DataFrame(rows)


def cost_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Wall-clock seconds per cell, by protocol and model: cells, median, max, total (all datasets)."""
    timed = frame.dropna(subset=["time"])
    if timed.empty:
        return pd.DataFrame()
    grouped = timed.groupby(["protocol", "model"])["time"]
    return pd.DataFrame({"cells": grouped.size(), "median_s": grouped.median(), "max_s": grouped.max(),
                         "total_s": grouped.sum()}).reset_index()


# -- Markdown ----------------------------------------------------------------------------------
def _num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"


def _mean_std(mean, std) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{_num(mean)} ({'–' if std is None or math.isnan(std) else _num(std)})"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _definitions(alpha: float) -> list[str]:
    return [
        "Definitions:",
        "",
        "- Metric: test MSE on targets min-max scaled with the training targets (regression; lower is better) "
        "or test accuracy (classification; higher is better), on the seed's 80/20 split; mean (sample std) over "
        "seeds. Seed s is the same split, and the same seed, for every model.",
        "- [params]: learnable parameters; with `parameter_budget='linear'` each TN network has at most as "
        "many as the LN network of its structure (its widths are shrunk by one common factor). A range means "
        "the count differed between seeds (with VSR's formulas each seed discovers its own).",
        "- Δ: mean over seeds of the paired difference, oriented so that positive means TN is better "
        "(LN − TN for MSE, TN − LN for accuracy); Δ% is Δ relative to the LN mean.",
        f"- win / loss: a two-sided paired t-test over the seeds gives p < {alpha} and the mean difference "
        f"favours TN / LN. tie: p ≥ {alpha}, i.e. the difference is within the seed-to-seed noise of the "
        "paired differences. With one seed (or identical differences) the sign of Δ decides, tie only when "
        "Δ = 0.",
        "- strict: TN's mean is better than or equal to LN's mean (no test).",
    ]


def _table6_section(summary: pd.DataFrame, best: pd.DataFrame, protocol: str, figures: list[str],
                    paper_note: str, alpha: float, boosting: list[str], settings: dict | None,
                    failed: set[tuple[str, str]] = frozenset()) -> list[str]:
    """``failed``: the (dataset, structure) pairs of this protocol with a failed LN or TN cell."""
    lines = [f"## Table 6 — protocol `{protocol}`", ""]
    if settings:
        for label, values in settings.items():
            if isinstance(values, str):
                lines += [f"{label}: {values}", ""]
                continue
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            lines += [f"{label}: `{shown}`", ""]
    counts = outcome_counts(summary)
    pairs = counts["pairs"]
    if pairs:
        share = (counts["win"] + counts["tie"]) / pairs
        lines += [
            f"**TN vs LN over {pairs} (dataset, structure) pairs: {counts['win']} wins, {counts['tie']} ties, "
            f"{counts['loss']} losses** (paired t-test, α = {alpha}); TN not significantly worse on "
            f"{share:.0%}. Strict count, TN mean better or equal: {counts['tn_ge']} of {pairs} "
            f"({counts['tn_ge'] / pairs:.0%}).",
            "",
        ]
    lines += _definitions(alpha) + [""]
    if paper_note:
        lines += [f"Paper numbers: {paper_note}", ""]
    headers = ["dataset", "metric", "S", "LN mean (std) [params]", "TN mean (std) [params]", "TN widths", "Δ",
               "Δ%", "p", "outcome", "paper LN", "paper TN", *boosting]
    rows = []
    for r in summary.to_dict("records"):
        rows.append([
            r["dataset"], r["metric"], r["structure"],
            f"{_mean_std(r['ln_mean'], r['ln_std'])} [{r['ln_params']}]",
            f"{_mean_std(r['tn_mean'], r['tn_std'])} [{r['tn_params']}]",
            r["tn_hidden"], _num(r["diff"], 3),
            "n/a" if math.isnan(r["rel_diff"]) else f"{100 * r['rel_diff']:+.1f}%",
            "–" if math.isnan(r["p_value"]) else f"{r['p_value']:.3f}", r["outcome"],
            _mean_std(r["paper_ln_mean"], r["paper_ln_std"]), _mean_std(r["paper_tn_mean"], r["paper_tn_std"]),
            *(_mean_std(r[f"{m}_mean"], r[f"{m}_std"]) for m in boosting),
        ])
    lines += _table(headers, rows) + [""]
    unpaired = summary[(summary["n_pairs"] > 0)
                       & (summary["n_pairs"] < summary[["ln_n", "tn_n"]].max(axis=1))]
    if not unpaired.empty:
        # A seed is unpaired because its cell failed or because it is not computed yet (a run in
        # progress or interrupted): only the first has a line under "Failed cells".
        shown = "; ".join(
            f"{r['dataset']} {r['structure']} (LN {r['ln_n']}, TN {r['tn_n']}, both {r['n_pairs']}; "
            + ("failed cells: see Failed cells" if (r["dataset"], r["structure"]) in failed
               else "missing: not computed yet") + ")"
            for r in unpaired.to_dict("records"))
        lines += [f"Seeds one model lacks (missing, not computed or failed) are left out of these rows: {shown}.",
                  ""]
    if not best.empty:
        decided = best[best["outcome"] != "n/a"]
        ok = int(decided["outcome"].isin(["beats", "matches"]).sum())
        lines += [
            "### Classification: TN's best structure vs the paper's best TN accuracy",
            "",
            f"Ours matches or beats the paper's on {ok} of {len(decided)} datasets with a paper number "
            "(beats: our mean ≥ the paper's; matches: below it by less than one standard error of our mean, "
            "std/√n).",
            "",
        ]
        lines += _table(["dataset", "our best S", "TN mean (std)", "paper best S", "paper TN mean (std)", "outcome"],
                        [[b["dataset"], b["structure"], _mean_std(b["tn_mean"], b["tn_std"]),
                          b["paper_structure"] or "n/a", _mean_std(b["paper_tn_mean"], b["paper_tn_std"]),
                          b["outcome"]] for b in best.to_dict("records")]) + [""]
    for figure in figures:
        lines += [f"![{figure}]({figure})", ""]
    return lines


def _table5_section(summary: pd.DataFrame, protocol: str, paper_note: str) -> list[str]:
    lines = [f"## Table 5 — formulas found (protocol `{protocol}`)", "",
             "Formulas are written in the scaled inputs the networks see (every feature min-max scaled to "
             "[-1, 1] on the training rows), as f(x) = c0 + Σ_k c_k Σ_i φ_k(x_i). The paper's scaling differs "
             "(to [0, 1]), so coefficients are not comparable one to one; the terms are. \"same terms\": seeds "
             "whose formula has the terms of the shown one. Test metric: the formula used as a model on the "
             "held-out rows (MSE on min-max scaled targets / accuracy). Time: the median search time.", ""]
    if paper_note:
        lines += [f"Paper formulas: {paper_note}", ""]
    rows = [[r["dataset"], r["task"], f"`{r['formula']}` (seed {r['seed']})", f"{r['same_terms']}/{r['n_seeds']}",
             f"{r['metric']} {_num(r['test_mean'])}", f"{r['time_median']:.2f} s",
             "n/a" if not isinstance(r["paper_formula"], str) else f"`{r['paper_formula']}`"]
            for r in summary.to_dict("records")]
    return lines + _table(["dataset", "task", "formula found", "same terms", "test", "time", "paper's formula"],
                          rows) + [""]


# -- figures -----------------------------------------------------------------------------------
def _figure(nrows: int, ncols: int, width: float, height: float):
    # A plain Figure renders to files without pyplot or a backend switch: the caller's backend (a
    # notebook's inline one) stays as it is.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return figure, figure.subplots(nrows, ncols, squeeze=False)


def _datasets_figure(summary: pd.DataFrame, boosting: list[str], path: Path) -> None:
    """Per dataset: LN, TN, paper LN, paper TN bars with std error bars; boosting as dashed lines."""
    names = list(dict.fromkeys(summary["dataset"]))
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    figure, axes = _figure(nrows, ncols, 3.6, 2.9)
    series = [("ln", "LN", "tab:blue", None), ("tn", "TN", "tab:orange", None),
              ("paper_ln", "paper LN", "lightsteelblue", "//"), ("paper_tn", "paper TN", "navajowhite", "//")]
    colors = ["tab:green", "tab:purple", "tab:brown"]
    for index, name in enumerate(names):
        ax = axes[index // ncols][index % ncols]
        part = summary[summary["dataset"] == name]
        x = np.arange(len(part))
        present = [s for s in series if part[f"{s[0]}_mean"].notna().any()]
        width = 0.8 / max(1, len(present))
        tops, bottoms = [], []
        for offset, (prefix, label, color, hatch) in enumerate(present):
            means = part[f"{prefix}_mean"].to_numpy(float)
            stds = np.nan_to_num(part[f"{prefix}_std"].to_numpy(float))  # one seed: no error bar
            ax.bar(x + (offset - (len(present) - 1) / 2) * width, np.nan_to_num(means), width,
                   yerr=stds, label=label, color=color, hatch=hatch, edgecolor="grey",
                   linewidth=0.4, capsize=2, error_kw={"elinewidth": 0.8})
            tops.append(np.nanmax(means + stds))
            bottoms.append(np.nanmin(means - stds))
        for model, color in zip(boosting, colors, strict=False):
            value = part[f"{model}_mean"].iloc[0]
            if not math.isnan(value):
                ax.axhline(value, color=color, linestyle="--", linewidth=1, label=model)
                tops.append(value)
                bottoms.append(value)
        metric = part["metric"].iloc[0]
        if metric == "accuracy" and bottoms:
            low, high = min(bottoms), max(tops)
            pad = 0.15 * (high - low) + 1e-3
            ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad) if high <= 1 else high + pad)
        ax.set_xticks(x, list(part["structure"]))
        ax.set_xlim(-0.5, len(part) - 0.5)
        ax.set_title(f"{name}  ({'MSE ↓' if metric == 'mse' else 'accuracy ↑'})", fontsize=9)
        ax.tick_params(labelsize=7)
    for index in range(len(names), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    # Every series of any panel (the first may lack the paper's bars or a boosting line that others have).
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    figure.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=len(legend),
                  fontsize=8)
    figure.savefig(path, dpi=100)


def _outcomes_figure(summary: pd.DataFrame, path: Path, alpha: float) -> None:
    """Datasets x structures, coloured by outcome and labelled with Δ% (positive = TN better)."""
    from matplotlib.colors import ListedColormap

    names = list(dict.fromkeys(summary["dataset"]))
    structures = sorted(dict.fromkeys(summary["structure"]), key=_structure_order)
    codes = {"loss": 0, "tie": 1, "win": 2, "n/a": 3}
    grid = np.full((len(names), len(structures)), 3.0)
    labels = [["" for _ in structures] for _ in names]
    for r in summary.to_dict("records"):
        i, j = names.index(r["dataset"]), structures.index(r["structure"])
        grid[i, j] = codes[r["outcome"]]
        labels[i][j] = "" if math.isnan(r["rel_diff"]) else f"{100 * r['rel_diff']:+.1f}%"
    figure, axes = _figure(1, 1, max(5.5, 1.1 * len(structures) + 2.5), max(2.5, 0.38 * len(names) + 1.3))
    ax = axes[0][0]
    cmap = ListedColormap(["#e07b7b", "#d9d9d9", "#7bc47f", "#ffffff"])
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=3.5, aspect="auto")
    for i in range(len(names)):
        for j in range(len(structures)):
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(structures)), structures)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=cmap(codes[k]), label=k) for k in ("win", "tie", "loss")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    counts = outcome_counts(summary)
    ax.set_title(f"TN vs LN: {counts['win']} wins, {counts['tie']} ties, {counts['loss']} losses\n"
                 f"paired t-test, α={alpha}; label: Δ% vs LN, + = TN better", fontsize=9)
    figure.savefig(path, dpi=100)


# -- the report --------------------------------------------------------------------------------
def _settings_of(frame: pd.DataFrame, protocol: str) -> dict[str, dict | str]:
    """What the records say about how they were made: structures, LN and TN settings, TN formula."""
    cells = frame[frame["protocol"] == protocol]
    out: dict[str, dict | str] = {}
    shapes = cells[cells["model"] == "LN"].drop_duplicates("structure")
    if len(shapes):
        order = sorted(shapes["structure"], key=_structure_order)
        widths = dict(zip(shapes["structure"], shapes["hidden"], strict=True))
        out["Structures (LN hidden widths)"] = {s: tuple(widths[s] or ()) for s in order}
    ln = _distinct(cells[cells["model"] == "LN"]["settings"])
    tn = _distinct(cells[cells["model"] == "TN"]["settings"])
    if len(ln) > 1 or len(tn) > 1:
        # e.g. a TN variant run into the folder of a run of other datasets: say so, don't show one of them
        out["Network settings"] = (f"differ between the cells of this folder ({len(ln)} LN and {len(tn)} TN "
                                   "settings); see `settings` in results.jsonl")
    elif ln or tn:
        if ln:
            out["Network settings (LN)"] = ln[0]
        if tn:
            out["TN settings beyond LN's"] = {k: v for k, v in tn[0].items() if not ln or ln[0].get(k) != v}
    formula = tn_formula_text(cells[(cells["model"] == "TN") & (cells["status"] == "ok")])
    if formula:
        out["TN formula"] = formula
    return out


def _distinct(settings: pd.Series) -> list[dict]:
    """The different settings dicts among records, in order of appearance."""
    seen: dict[str, dict] = {}
    for value in settings.dropna():
        seen.setdefault(json.dumps(value, sort_keys=True, default=str), value)
    return list(seen.values())


def tn_formula_text(tn: pd.DataFrame) -> str:
    """How the TN records ``tn`` got their formula, or "" when by VSR per (dataset, seed) (records
    before the ``formula_source`` field were all VSR's)."""
    if "formula_source" not in tn or tn["formula_source"].fillna("vsr").eq("vsr").all():
        return ""
    sources = set(tn["formula_source"].dropna())
    if sources == {"paper"}:
        return "the paper's Table 5 formula of each dataset (its terms; each neuron learns its own coefficients)"
    if len(sources) == 1:
        return f"`{sources.pop()}` on every dataset (fixed; each neuron learns its own coefficients)"
    return "mixed sources: " + ", ".join(f"`{s}`" for s in sorted(sources))


def build_report(out: str | os.PathLike, *, paper_dir: str | os.PathLike | None = None, alpha: float = ALPHA,
                 command: str = "table6") -> Path:
    """Write ``<out>/report.md`` and its PNG figures from ``<out>/results.jsonl``; returns the report's path.

    ``out`` may also be that ``results.jsonl`` itself (the report goes into its folder). ``command``:
    the ``taskneurons bench`` command that the error for a folder without results says to run.
    """
    out = Path(out)
    if out.is_file() and out.name == RESULTS_FILE:
        out = out.parent
    elif out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; pass the folder that holds {RESULTS_FILE} (the --out folder of "
                        "the run)")
    frame = load_results(out, command=command)
    paper5, paper6, where = _paper_tables(paper_dir, frame)
    paper_note = "" if paper6 is not None else f"n/a ({where})"
    n_errors = int((frame["status"] != "ok").sum())
    lines = ["# taskneurons benchmark report", "",
             f"Built from `results.jsonl`: {len(frame)} cells, {n_errors} failed. "
             "Rebuild with `taskneurons bench table6 --report-only --out FOLDER` "
             "(or `taskneurons.bench.build_report(FOLDER)`).", ""]
    summary_all = table6_summary(frame, paper6, alpha)
    for protocol in dict.fromkeys(frame["protocol"]):
        summary = summary_all[summary_all["protocol"] == protocol] if not summary_all.empty else summary_all
        if summary.empty:
            continue
        boosting = [m for m in _BOOSTING if summary[f"{m}_mean"].notna().any()]
        # Names are checked when a run starts; results written before that check may hold any name.
        part = re.sub(r"[^A-Za-z0-9_.-]", "_", str(protocol)).lstrip(".") or "_"
        figures = [f"table6_{part}_datasets.png", f"table6_{part}_outcomes.png"]
        _datasets_figure(summary, boosting, out / figures[0])
        _outcomes_figure(summary, out / figures[1], alpha)
        best = best_structures(summary, paper6)
        broken = frame[(frame["protocol"] == protocol) & frame["model"].isin(_NETWORKS) & (frame["status"] != "ok")]
        failed = set(zip(broken["dataset"], broken["structure"], strict=True))
        lines += _table6_section(summary, best, protocol, figures, paper_note, alpha, boosting,
                                 _settings_of(frame, protocol), failed)
    table5 = table5_summary(frame, paper5)
    for protocol in dict.fromkeys(table5["protocol"]) if not table5.empty else []:
        note = "" if paper5 is not None else f"n/a ({where})"
        lines += _table5_section(table5[table5["protocol"] == protocol], protocol, note)
    cost = cost_summary(frame)
    if not cost.empty:
        lines += ["## Cost per cell", "",
                  "Wall-clock seconds of one cell (one thread each; data loading, fit and scoring).", ""]
        lines += _table(["protocol", "model", "cells", "median s", "max s", "total s"],
                        [[c["protocol"], c["model"], c["cells"], f"{c['median_s']:.2f}", f"{c['max_s']:.2f}",
                          f"{c['total_s']:.0f}"] for c in cost.to_dict("records")]) + [""]
    if n_errors:
        failed = frame[frame["status"] != "ok"]
        lines += ["## Failed cells", "",
                  "Kept (and skipped) on re-runs; `--retry-errors` computes them again.", ""]
        lines += _table(["dataset", "model", "structure", "seed", "protocol", "error"],
                        [[r["dataset"], r["model"], r["structure"], r["seed"], r["protocol"], str(r["error"])[:300]]
                         for r in failed.head(50).to_dict("records")])
        if len(failed) > 50:
            lines += ["", f"... and {len(failed) - 50} more."]
        lines.append("")
    path = out / REPORT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)
    return path


# -- console tables ----------------------------------------------------------------------------
def print_table6(console, out: str | os.PathLike, *, protocol: str, paper_dir=None, datasets=None,
                 structures=None, alpha: float = ALPHA) -> None:
    """Print the Table 6 summary of ``out`` (one protocol; optionally some datasets/structures) to a rich Console."""
    from rich.table import Table

    frame = load_results(out)
    _, paper6, _ = _paper_tables(paper_dir, frame)
    summary = table6_summary(frame[frame["protocol"] == protocol], paper6, alpha)
    if summary.empty:
        console.print(f"no LN/TN results for protocol {protocol!r} in {out}")
        return
    if datasets is not None:
        summary = summary[summary["dataset"].isin(list(datasets))]
    if structures is not None:
        summary = summary[summary["structure"].isin(list(structures))]
    table = Table(title=f"Table 6, protocol {protocol}: mean (std) over seeds [parameters]")
    for name in ("dataset", "S", "metric", "LN", "TN", "outcome", "paper LN", "paper TN"):
        table.add_column(name, justify="left" if name in ("dataset", "S", "metric", "outcome") else "right")
    for r in summary.to_dict("records"):
        table.add_row(r["dataset"], r["structure"], r["metric"],
                      f"{_mean_std(r['ln_mean'], r['ln_std'])} [{r['ln_params']}]",
                      f"{_mean_std(r['tn_mean'], r['tn_std'])} [{r['tn_params']}]", r["outcome"],
                      _mean_std(r["paper_ln_mean"], r["paper_ln_std"]), _mean_std(r["paper_tn_mean"], r["paper_tn_std"]))
    console.print(table)
    counts = outcome_counts(summary)
    if counts["pairs"]:
        console.print(f"TN vs LN: {counts['win']} wins, {counts['tie']} ties, {counts['loss']} losses "
                      f"(paired t-test, alpha={alpha}); strict TN mean better or equal: {counts['tn_ge']} of "
                      f"{counts['pairs']}")


def print_table5(console, out: str | os.PathLike, *, protocol: str, paper_dir=None, datasets=None,
                 seeds=None) -> None:
    """Print the Table 5 summary (formula found vs the paper's) of ``out`` to a rich Console."""
    from rich.table import Table

    frame = load_results(out)
    frame = frame[frame["protocol"] == protocol]
    if datasets is not None:
        frame = frame[frame["dataset"].isin(list(datasets))]
    if seeds is not None:
        frame = frame[frame["seed"].isin(list(seeds))]
    paper5, _, _ = _paper_tables(paper_dir, frame)
    summary = table5_summary(frame, paper5)
    table = Table(title=f"Table 5, protocol {protocol}: formulas found (scaled inputs in [-1, 1])")
    for name in ("dataset", "formula found", "test", "time", "paper's formula"):
        table.add_column(name)
    for r in summary.to_dict("records"):
        table.add_row(r["dataset"], r["formula"], f"{r['metric']} {_num(r['test_mean'])}", f"{r['time_median']:.2f} s",
                      r["paper_formula"] if isinstance(r["paper_formula"], str) else "n/a")
    console.print(table)
