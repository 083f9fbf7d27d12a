"""TaskNeuron estimators against the linear-neuron baseline, scikit-learn's MLP and gradient boosting.

For every dataset (scikit-learn's bundled diabetes, breast_cancer, wine, digits and the 14 paper
datasets in ../shared/datasets/paper) and seeds 0..4: an 80/20 split (stratified for
classification), then

* ``TN``   TaskNeuronRegressor/Classifier(formula="auto", parameter_budget="linear"): VSR discovers
           the neuron on the training rows; the network is shrunk to <= LN's parameter count;
* ``LN``   the same estimator with formula="x" (an ordinary MLP of hidden_layer_sizes);
* ``MLP``  scikit-learn's MLPRegressor/MLPClassifier, same hidden sizes, early stopping,
           standard-scaled inputs (one-hot categorical columns), standardised regression targets;
* ``HGB``  HistGradientBoostingRegressor/Classifier (native categorical support).

Everything else is left at its default. Metric: test MSE on targets min-max scaled with the
training targets (regression, lower is better; the paper's metric) and test accuracy
(classification). Reported: mean (std) over seeds, parameter counts, mean fit time. The Bar
(issue 4): TN beats LN (mean) at an equal or smaller parameter count on >= 80 % of the 14 paper
datasets; a default fit of a 20,000-row dataset takes <= 60 s. Training throughput against a
plain PyTorch loop and skorch is measured by benchmarks/bench_throughput.py (run here too, its
bar lines are copied in).

    python benchmarks/bench_estimators.py [--seeds 5] [--n-jobs 2] [--datasets NAME ...] [--no-throughput]

Cells run in worker processes with one torch thread each; the table goes to stdout and to
docs/results/estimators.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT.parent / "shared" / "datasets" / "paper"
OUT = ROOT / "docs" / "results" / "estimators.md"
SKLEARN_SETS = ("diabetes", "breast_cancer", "wine", "digits")
MODELS = ("TN", "LN", "MLP", "HGB")
HIDDEN = (64, 32)


def load(name: str):
    """(X DataFrame, y Series, task) for a bundled or paper dataset."""
    from sklearn import datasets as skd

    import taskneurons as tn

    if name in SKLEARN_SETS:
        loader = getattr(skd, f"load_{name}")
        X, y = loader(return_X_y=True, as_frame=True)
        return X, y, "regression" if name == "diabetes" else "classification"
    X, y = tn.datasets.load(name, data_dir=PAPER)
    task = tn.datasets.get_info(name, PAPER).task
    return X, y, "regression" if task == "regression" else "classification"


def make_model(model: str, task: str, seed: int, X: pd.DataFrame):
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from taskneurons import TaskNeuronClassifier, TaskNeuronRegressor

    classification = task == "classification"
    if model in ("TN", "LN"):
        Estimator = TaskNeuronClassifier if classification else TaskNeuronRegressor
        extra = {"formula": "auto", "parameter_budget": "linear"} if model == "TN" else {"formula": "x"}
        return Estimator(hidden_layer_sizes=HIDDEN, random_state=seed, **extra)
    if model == "HGB":
        Estimator = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return Estimator(random_state=seed, categorical_features="from_dtype")
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    encode = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)],
                               remainder="passthrough")
    if classification:
        return make_pipeline(encode, StandardScaler(), MLPClassifier(hidden_layer_sizes=HIDDEN, early_stopping=True, random_state=seed))
    mlp = make_pipeline(encode, StandardScaler(), MLPRegressor(hidden_layer_sizes=HIDDEN, early_stopping=True, random_state=seed))
    return TransformedTargetRegressor(mlp, transformer=StandardScaler())


def n_parameters(model, name: str) -> int | None:
    if name in ("TN", "LN"):
        return int(model.n_parameters_)
    if name == "MLP":
        inner = model.regressor_ if hasattr(model, "regressor_") else model
        mlp = inner.steps[-1][1]
        return int(sum(w.size for w in mlp.coefs_) + sum(b.size for b in mlp.intercepts_))
    return None


def run_cell(job: tuple[str, str, int]) -> dict:
    """Fit one (dataset, model, seed) and score it on the held-out 20 %."""
    import torch
    from sklearn.model_selection import train_test_split

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    name, model_name, seed = job
    X, y, task = load(name)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=stratify)
    model = make_model(model_name, task, seed, X)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    prediction = model.predict(X_test)
    if task == "classification":
        score = float(np.mean(np.asarray(prediction) == np.asarray(y_test)))
    else:
        low, high = float(np.min(y_train)), float(np.max(y_train))
        span = high - low if high > low else 1.0
        score = float(np.mean(((np.asarray(prediction, float) - np.asarray(y_test, float)) / span) ** 2))
    formula = str(model.formula_.format(3)) if model_name == "TN" else None
    return {"dataset": name, "model": model_name, "seed": seed, "task": task, "score": score,
            "seconds": seconds, "parameters": n_parameters(model, model_name), "formula": formula}


def default_fit_time() -> dict:
    """A default TaskNeuronRegressor fit on California housing (20,640 rows), 2 threads."""
    import taskneurons as tn

    X, y = tn.datasets.load("california", data_dir=PAPER)
    start = time.perf_counter()
    model = tn.TaskNeuronRegressor(random_state=0).fit(X, y)
    return {"rows": len(X), "seconds": time.perf_counter() - start, "epochs": int(model.n_epochs_),
            "formula": model.formula_.format(3)}


def summarise(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    rows = []
    for (dataset, task), group in frame.groupby(["dataset", "task"], sort=False):
        row = {"dataset": dataset, "task": task, "metric": "accuracy" if task == "classification" else "mse"}
        for model in MODELS:
            part = group[group["model"] == model]
            row[model] = part["score"].mean()
            row[f"{model}_std"] = part["score"].std(ddof=1) if len(part) > 1 else 0.0
            row[f"{model}_s"] = part["seconds"].mean()
            row[f"{model}_params"] = part["parameters"].median() if part["parameters"].notna().any() else None
        better = (row["TN"] >= row["LN"]) if task == "classification" else (row["TN"] <= row["LN"])
        row["tn_beats_ln"] = bool(better) and row["TN_params"] <= row["LN_params"]
        row["formula"] = group[group["model"] == "TN"]["formula"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(summary: pd.DataFrame, seeds: int, fit: dict | None, throughput_bar: str | None) -> str:
    lines = ["# Estimators: TN vs LN vs scikit-learn MLP vs gradient boosting", "",
             f"Generated by `python benchmarks/bench_estimators.py` on {time.strftime('%Y-%m-%d')}: "
             f"{platform.python_version()}, {os.cpu_count()} CPUs, one torch thread per fit, {seeds} seeds, "
             f"80/20 splits, every estimator at its defaults except the ones named below; hidden layers {HIDDEN}.", "",
             "TN = `TaskNeuron*(formula=\"auto\", parameter_budget=\"linear\")` (VSR discovers the neuron on the "
             "training rows; widths shrunk to no more parameters than LN), LN = the same estimator with "
             "`formula=\"x\"`, MLP = scikit-learn `MLPRegressor/MLPClassifier` (early stopping, standard-scaled "
             "inputs), HGB = `HistGradientBoosting*`. Metric: test MSE on min-max-scaled targets (lower is better) "
             "or accuracy (higher is better); mean (std) over seeds; [parameters]; mean fit seconds.", "",
             "| dataset | metric | TN | LN | MLP | HGB | TN beats LN | TN formula (seed 0) |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        cells = []
        for model in MODELS:
            params = f" [{int(r[f'{model}_params'])}]" if r[f"{model}_params"] is not None and \
                not pd.isna(r[f"{model}_params"]) else ""
            cells.append(f"{r[model]:.4g} ({r[f'{model}_std']:.2g}){params}, {r[f'{model}_s']:.1f} s")
        lines.append(f"| {r['dataset']} | {r['metric']} | " + " | ".join(cells) +
                     f" | {'yes' if r['tn_beats_ln'] else 'no'} | `{r['formula']}` |")
    paper = summary[~summary["dataset"].isin(SKLEARN_SETS)]
    wins = int(paper["tn_beats_ln"].sum())
    lines += ["", "## Bar (issue 4)", "",
              f"- TN beats LN (mean over seeds, TN parameters <= LN's) on {wins} of {len(paper)} paper datasets "
              f"({100 * wins / max(len(paper), 1):.0f} %; bar >= 80 %): **{'PASS' if wins >= 0.8 * len(paper) else 'FAIL'}**"]
    if fit is not None:
        lines.append(f"- Default `TaskNeuronRegressor()` fit of california ({fit['rows']} rows, VSR included, "
                     f"{fit['epochs']} epochs, formula `{fit['formula']}`): {fit['seconds']:.1f} s (bar <= 60 s): "
                     f"**{'PASS' if fit['seconds'] <= 60 else 'FAIL'}**")
    if throughput_bar:
        lines += ["", "## Training throughput (benchmarks/bench_throughput.py, see throughput.md)", "", throughput_bar]
    return "\n".join(lines) + "\n"


def throughput_bar_lines() -> str | None:
    """Run the throughput benchmark and return the bar section of its report."""
    script = ROOT / "benchmarks" / "bench_throughput.py"
    subprocess.run([sys.executable, str(script), "--reps", "5"], check=True)
    text = (ROOT / "docs" / "results" / "throughput.md").read_text()
    start = text.find("## Bar")
    if start < 0:
        return None
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None].split("\n", 1)[1].strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import taskneurons as tn

    names = args.datasets or [*SKLEARN_SETS, *tn.datasets.available(PAPER)]
    jobs = [(name, model, seed) for name in names for seed in range(args.seeds) for model in MODELS]
    records = []
    started = time.perf_counter()
    with ProcessPoolExecutor(args.n_jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_cell, job) for job in jobs]
        for i, future in enumerate(as_completed(futures), 1):
            records.append(future.result())
            r = records[-1]
            print(f"[{i}/{len(jobs)}] {r['dataset']} {r['model']} seed {r['seed']}: {r['score']:.4g} "
                  f"({r['seconds']:.1f} s)", flush=True)
    print(f"grid: {time.perf_counter() - started:.0f} s", flush=True)
    order = {name: i for i, name in enumerate(names)}
    records.sort(key=lambda r: (order[r["dataset"]], MODELS.index(r["model"]), r["seed"]))
    summary = summarise(records)
    fit = default_fit_time() if PAPER.exists() else None
    bar = None if args.no_throughput else throughput_bar_lines()
    text = markdown(summary, args.seeds, fit, bar)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
