"""Review 4 of the benchmark runner, the training loop, the plots and the demo: what a researcher meets
when running the benchmarks and training models in their own loop."""

from __future__ import annotations

import json
import multiprocessing
import time

import matplotlib
import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from taskneurons import plots
from taskneurons.bench import build_report, resolve_structures, run_cells, run_table5, run_table6
from taskneurons.bench.runner import expand_seeds, resolve_datasets
from taskneurons.demo import run_demo
from taskneurons.errors import DataError
from taskneurons.training import Callback, fit_module, predict_module

TINY = {"name": "tiny", "estimator": {"max_epochs": 2, "batch_size": 32, "patience": 2},
        "tn": {"formula_stage_epochs": 2}, "vsr": {"max_degree": 2}}


def _write_quad(folder, n=80):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(n, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["y"] = (X ** 2).sum(axis=1) + 0.1 * rng.normal(size=n)
    frame.to_csv(folder / "quad.csv", index=False)
    return folder


def _record(dataset, model, seed, value, structure="S1", metric="mse", **extra):
    return {"dataset": dataset, "model": model, "structure": structure, "seed": seed, "protocol": "p",
            "task": "regression" if metric == "mse" else "binary", "metric": metric, "status": "ok",
            "test_value": value, "n_parameters": 10, "hidden_used": [4], "hidden": [4], "settings": {},
            "time": 0.1, "data_dir": None, "settings_hash": "h", **extra}


def _write_results(folder, records):
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


# -- bench: one store, one set of settings per report row ---------------------------------------
def test_other_seeds_of_changed_settings_are_refused_not_averaged(tmp_path):
    data = _write_quad(tmp_path)
    out = tmp_path / "out"
    common = dict(data_dir=data, structures={"T": (3,)}, boosting=False, report=False, out=out)
    run_table6(seeds=[0], protocol=TINY, **common)
    before = (out / "results.jsonl").read_bytes()
    # Seed 1 with 5 epochs instead of 2: no key overlaps seed 0's, but one report row would average both.
    changed = {**TINY, "estimator": {**TINY["estimator"], "max_epochs": 5}}
    with pytest.raises(DataError, match="computed with other settings.*'seed': 0"):
        run_table6(seeds=[1], protocol=changed, **common)
    assert (out / "results.jsonl").read_bytes() == before  # refused before any cell ran
    with pytest.raises(DataError, match="other settings"):  # a structure of the same name with other widths
        run_table6(seeds=[1], protocol=TINY, **{**common, "structures": {"T": (4,)}})
    # The same settings for another seed still grow the grid.
    grown = run_table6(seeds=[1], protocol=TINY, **common)
    assert (grown.n_cells, grown.n_computed) == (3, 3)


def test_seeds_structures_and_dataset_names_are_taken_as_given_or_refused(tmp_path):
    assert expand_seeds(3) == [0, 1, 2] and expand_seeds(np.int64(2)) == [0, 1]
    assert expand_seeds([2, 2, 0]) == [2, 0]
    for seeds in ("10", True, [0.5, 1.7], 2.5, None, [True]):  # "10" was the seeds 1 and 0, True one seed
        with pytest.raises(DataError, match="seeds must be"):
            expand_seeds(seeds)
    with pytest.raises(DataError, match="seed must be an integer"):
        run_table5(data_dir=tmp_path, seed=True, out=tmp_path / "out")
    assert resolve_structures({"T": np.array([4, 2])}) == {"T": (4, 2)}
    for widths in ("32", (3.5,), (True,), 4):  # "32" was the widths (3, 2), 3.5 width 3
        with pytest.raises(DataError, match="integer widths"):
            resolve_structures({"T": widths})
    specs = resolve_datasets(_write_quad(tmp_path), "quad")  # one name, not the letters q, u, a, d
    assert [s.name for s in specs] == ["quad"]


def test_interrupting_a_pool_run_ends_its_workers(tmp_path):
    """Ctrl-C (here: a KeyboardInterrupt from the result handler) ends the workers at once; a second Ctrl-C
    during the interpreter's exit used to leave them waiting for work and the coordinator waiting for them."""
    before = set(multiprocessing.active_children())

    def interrupt(result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cells([0.0, 60.0, 60.0], time.sleep, on_result=interrupt, n_jobs=2)
    workers = set(multiprocessing.active_children()) - before
    deadline = time.monotonic() + 15
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(w.is_alive() for w in workers), "pool workers still sleeping after the interrupt"


# -- bench: report and figures -------------------------------------------------------------------
def test_report_figures_leave_the_callers_matplotlib_backend_alone(tmp_path):
    _write_results(tmp_path, [_record("d", m, s, v) for s in (0, 1)
                              for m, v in (("LN", 0.2 + s), ("TN", 0.1 + s))])
    original = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        build_report(tmp_path)
        assert matplotlib.get_backend() == "svg"  # was switched to Agg (a notebook's inline backend too)
    finally:
        matplotlib.use(original)
    assert (tmp_path / "table6_p_datasets.png").read_bytes()[:4] == b"\x89PNG"


def test_the_datasets_figure_legend_names_series_the_first_panel_lacks(tmp_path, monkeypatch):
    records = [_record(d, m, s, v) for d in ("a_first", "b_second") for s in (0, 1)
               for m, v in (("LN", 0.2 + s / 10), ("TN", 0.1 + s / 10))]
    records += [_record("b_second", "HGB", s, 0.05, structure="-") for s in (0, 1)]  # on the 2nd only
    _write_results(tmp_path, records)
    saved = {}
    original = matplotlib.figure.Figure.savefig

    def keep(figure, path, *args, **kwargs):
        saved[str(path)] = figure
        return original(figure, path, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    build_report(tmp_path)
    figure = saved[str(tmp_path / "table6_p_datasets.png")]
    labels = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert sorted(labels) == ["HGB", "LN", "TN"]


# -- training ---------------------------------------------------------------------------------------
@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    return X, X.sum(1)


def _net(n_in=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 4), nn.ReLU(), nn.Linear(4, 1))


def _dataset(X, y):
    return TensorDataset(torch.tensor(X), torch.tensor(y))


@pytest.mark.parametrize("change, match", [
    (dict(module=_net(4)), r"fails on rows of X of shape \(3,\).*in_features=3"),
    (dict(X=lambda X, y: DataLoader(_dataset(X, y))), "not on a Dataset or DataLoader"),
    (dict(X=_dataset), "not on a Dataset or DataLoader"),
    (dict(optimizer_kwargs={"betas2": 0.9}), r"refused the options \['betas2'\]"),
    (dict(weight_decay="a"), "weight_decay must be a number >= 0"),
    (dict(weight_decay=-1.0), "weight_decay must be a number >= 0"),
    (dict(early_stopping="no"), "early_stopping must be True or False"),
    (dict(shuffle="False"), "shuffle must be True or False"),
    (dict(min_delta=float("inf"), early_stopping=True), "min_delta must be a number >= 0"),
    (dict(random_state=-1), "random_state must be a non-negative int"),
    (dict(device="meta"), "device='meta' holds no data"),
    (dict(device="mps"), "device='mps' cannot be used here"),
])
def test_bad_training_inputs_are_value_errors_that_say_what_to_do(xy, change, match):
    if change.get("device") == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    X, y = xy
    kwargs = {"module": _net(), "X": X, "y": y, "max_epochs": 1, **change}
    if callable(kwargs["X"]):
        kwargs["X"] = kwargs["X"](X, y)
    with pytest.raises(ValueError, match=match):
        fit_module(kwargs.pop("module"), kwargs.pop("X"), kwargs.pop("y"), **kwargs)


def test_a_one_dimensional_X_is_told_how_to_reshape_and_predict_names_the_width(xy):
    X, y = xy
    with pytest.raises(DataError, match=r"X is 1-D.*reshape\(-1, 1\)"):
        fit_module(_net(1), X[:, 0], y, max_epochs=1)
    with pytest.raises(DataError, match=r"shape \(2,\).*in_features=2"):  # was torch's RuntimeError
        predict_module(_net(), X[:, :2])


def test_threads_are_restored_when_a_callback_raises(xy):
    class Boom(Callback):
        def on_epoch_end(self, epoch, record, module):
            raise RuntimeError("boom")

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            fit_module(_net(), *xy, max_epochs=3, callbacks=[Boom()], num_threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- plots -------------------------------------------------------------------------------------------
def test_a_pareto_front_with_an_exact_fit_keeps_it_visible():
    front = pd.DataFrame({"complexity": [1, 3], "train_loss": [1.0, 0.0], "val_loss": [1.0, 0.0],
                          "formula": ["x", "x**2 + x"]})
    _, (ax,) = plots.new_figure(1)
    plots.plot_pareto(ax, front, chosen="x**2 + x")
    assert ax.get_yscale() == "linear"  # a log axis dropped the loss-0 point and its "chosen" star
    _, (ax,) = plots.new_figure(1)
    plots.plot_pareto(ax, front.assign(val_loss=[1.0, 0.5]))
    assert ax.get_yscale() == "log"


def test_plot_history_takes_a_training_result_and_plot_response_checks_its_input(xy):
    result = fit_module(_net(), *xy, max_epochs=3, validation_data=xy)
    _, (ax,) = plots.new_figure(1)
    plots.plot_history(ax, {"net": result, "columns": {"valid_loss": [0.3, 0.2]}})
    assert len(ax.lines[0].get_ydata()) == 3
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.3, 0.2])
    with pytest.raises(ValueError, match="mapping label -> formula"):
        plots.plot_response(ax, ["x**2"])
    with pytest.raises(ValueError, match="finite low < high"):
        plots.plot_response(ax, {"g": "x"}, low=1.0, high=-1.0)


# -- demo --------------------------------------------------------------------------------------------
def test_demo_tasks_given_as_one_name_or_none(tmp_path):
    with pytest.raises(ValueError, match=r"unknown demo task\(s\) \['nope'\]"):  # not ['n', 'o', 'p', 'e']
        run_demo(tmp_path / "demo", tasks="nope")
    with pytest.raises(ValueError, match="no demo tasks given"):
        run_demo(tmp_path / "demo", tasks=())
    assert not (tmp_path / "demo").exists()


def test_a_module_error_that_is_not_about_shapes_stays_as_it_is():
    # Only torch's shape refusals become the "build it for inputs of that shape" DataError; a module's
    # own failure keeps its type and message.
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("my module is broken")

    X = np.zeros((8, 2), dtype=np.float32)
    with pytest.raises(RuntimeError, match="my module is broken") as info:
        predict_module(Broken(), X)
    assert not isinstance(info.value, ValueError)
