"""The `taskneurons` command, run as a subprocess on small data: results, files, exit codes, errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from taskneurons import Formula


def run(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "taskneurons", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def assert_clean_error(result, *fragments):
    """Bad input: non-zero exit, exactly one line on stderr, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("taskneurons: error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def regression_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(300, 4))
    y = Formula("2*x**2 - x").predict(X) + rng.normal(0, 0.05, 300)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(kind=rng.choice(["u", "v"], 300), target=y)
    path = tmp_path_factory.mktemp("data") / "reg.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def classification_csv(tmp_path_factory):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(300, 3))
    label = np.where((X**2).sum(1) > 1.0, "outer", "inner")
    path = tmp_path_factory.mktemp("data") / "clf.csv.gz"
    pd.DataFrame(X, columns=["p", "q", "r"]).assign(label=label).to_csv(path, index=False)
    return path


def test_version_and_help():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("taskneurons ")
    for command in ([], ["--help"], ["discover", "--help"], ["fit", "--help"], ["predict", "--help"],
                    ["demo", "--help"], ["bench", "--help"], ["bench", "table6", "--help"]):
        result = run(*command)
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


def test_discover_prints_formula_and_writes_json(regression_csv, tmp_path):
    out = tmp_path / "formula.json"
    result = run("discover", regression_csv, "--target", "target", "--scale", "none", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "formula (raw units)" in result.stdout and "complexity / error front" in result.stdout
    record = json.loads(out.read_text())
    assert Formula(record["formula_record"]).same_terms("x**2 + x")
    assert record["n_features"] == 6  # a, b, c, d and the one-hot columns kind=u, kind=v
    as_json = run("discover", regression_csv, "--scale", "none", "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["target"] == "target"  # default target: the last column


def test_fit_predict_round_trip(classification_csv, tmp_path):
    model = tmp_path / "model.tn"
    result = run("fit", classification_csv, "--hidden", "8", "--max-epochs", "40", "--out", model, "--json",
                 "--compare")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["task"] == "classification"
    assert set(payload["results"]) == {"TN", "LN"}
    assert payload["results"]["TN"]["accuracy"] > 0.7
    predictions = tmp_path / "predictions.csv"
    result = run("predict", model, classification_csv, "--out", predictions, "--proba")
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(predictions)
    assert list(frame.columns) == ["row", "prediction", "proba_inner", "proba_outer"]
    assert len(frame) == 300 and set(frame["prediction"]) <= {"inner", "outer"}
    to_stdout = run("predict", model, classification_csv)
    assert to_stdout.returncode == 0 and to_stdout.stdout.startswith("row,prediction")


def test_fit_regression_table(regression_csv, capfd):
    result = InProcess(capfd)("fit", regression_csv, "--target", "target", "--hidden", "8", "--max-epochs", "30",
                 "--formula", "x**2 + x", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "neuron formula: x**2 + x" in result.stdout and "r2" in result.stdout


def test_fit_with_term_weights_per_input_saves_a_factored_network(regression_csv, tmp_path, capfd):
    model_path = tmp_path / "m.tn"
    result = InProcess(capfd)("fit", regression_csv, "--target", "target", "--hidden", "8", "--max-epochs", "5",
                              "--formula", "x**2 + x", "--term-weights", "per_input", "--out", model_path, "--quiet")
    assert result.returncode == 0, result.stderr
    from taskneurons import load
    from taskneurons.nn import FactoredTaskLinear

    assert isinstance(load(model_path).network_[0], FactoredTaskLinear)
    bad = InProcess(capfd)("fit", regression_csv, "--term-weights", "shared")
    assert bad.returncode == 2 and "per_input" in bad.stderr


def test_bad_input_in_a_subprocess_gives_one_line_and_no_traceback(tmp_path):
    assert_clean_error(run("discover", tmp_path / "missing.csv"), "no such file")
    usage = run("fit", tmp_path / "missing.csv", "--bogus")
    assert_clean_error(usage, "--bogus")
    assert usage.returncode == 2


class InProcess:
    """Run ``main(argv)`` in this process (fast) and capture what it prints."""

    def __init__(self, capfd):
        self.capfd = capfd

    def __call__(self, *args):
        from taskneurons.cli import main

        code = main([str(a) for a in args])
        out, err = self.capfd.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)


def test_every_bad_input_is_refused_cleanly(tmp_path, regression_csv, capfd):
    run_here = InProcess(capfd)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_clean_error(run_here("fit", empty), "empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,y\n")
    assert_clean_error(run_here("discover", header_only), "no data rows")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"\x00\x01 not parquet at all")
    assert_clean_error(run_here("discover", garbage))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    assert_clean_error(run_here("discover", binary))
    assert_clean_error(run_here("discover", tmp_path), "is not a file")
    assert_clean_error(run_here("discover", regression_csv, "--target", "nope"), "no column 'nope'", "target")
    assert_clean_error(run_here("fit", regression_csv, "--target", "kind", "--task", "regression"), "not numeric")
    with_nan = tmp_path / "nan.csv"
    frame = pd.read_csv(regression_csv)
    frame.loc[[3, 7], "a"] = np.nan
    frame.to_csv(with_nan, index=False)
    assert_clean_error(run_here("discover", with_nan), "2 of 300 rows", "--dropna")
    assert run_here("discover", with_nan, "--dropna", "--quiet").returncode == 0
    foreign = tmp_path / "foreign.tn"
    foreign.write_bytes(pickle.dumps({"not": "a model"}))
    assert_clean_error(run_here("predict", foreign, regression_csv), "not a taskneurons model")
    assert_clean_error(run_here("predict", tmp_path / "none.tn", regression_csv), "no model file")
    assert_clean_error(run_here("fit", regression_csv, "--hidden", "8,x"), "--hidden")
    assert_clean_error(run_here("fit", regression_csv, "--formula", "x +"), "ends too early")
    assert_clean_error(run_here("fit", regression_csv, "--test-size", "1.5"), "--test-size")
    assert_clean_error(run_here("discover", regression_csv, "--bases", "poly,magic"))
    for command in (("discover", regression_csv), ("fit", regression_csv)):
        assert_clean_error(run_here(*command, "--out", tmp_path / "nowhere" / "x.json"), "does not exist")
    assert_clean_error(run_here("bench", "table6", "--report-only", "--out", tmp_path / "nowhere" / "run"),
                       f"--out {tmp_path / 'nowhere' / 'run'}` first")
    usage = run_here("fit", regression_csv, "--bogus")
    assert_clean_error(usage, "--bogus")
    assert usage.returncode == 2


def test_predict_needs_the_model_columns(tmp_path, regression_csv, capfd):
    run_here = InProcess(capfd)
    model = tmp_path / "m.tn"
    assert run_here("fit", regression_csv, "--hidden", "4", "--max-epochs", "5", "--formula", "x", "--out", model,
                    "--quiet").returncode == 0
    partial = tmp_path / "partial.csv"
    pd.read_csv(regression_csv).drop(columns=["b"]).to_csv(partial, index=False)
    assert_clean_error(run_here("predict", model, partial), "lacks the model's feature columns", "'b'")


def test_demo_writes_a_report_with_images(tmp_path):
    result = run("demo", "--out", tmp_path / "report", "--quiet", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "task-based (TN) vs linear (LN) neurons" in result.stdout
    report = (tmp_path / "report" / "report.md").read_text()
    pngs = sorted((tmp_path / "report").glob("*.png"))
    assert len(pngs) == 4
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = plt.imread(png)  # decodes: a real, non-blank picture
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0.01
        assert f"]({png.name})" in report
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert [s["task"] for s in summary] == ["synthetic", "diabetes", "breast_cancer"]


def test_ctrl_c_exits_130_with_a_message(monkeypatch, capfd, tmp_path):
    # click returns (not raises) its Abort code when not standalone: main must pass 130 on, or
    # `taskneurons bench ... && next_step` would carry on after a Ctrl-C.
    import taskneurons.bench
    from taskneurons.cli import main

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(taskneurons.bench, "run_table6", interrupted)
    assert main(["bench", "table6", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 130
    assert "taskneurons: interrupted" in capfd.readouterr().err


def test_demo_refuses_unknown_tasks_before_any_work(tmp_path):
    from taskneurons.demo import run_demo

    with pytest.raises(ValueError, match="unknown demo task"):
        run_demo(tmp_path / "out", tasks=("iris",))  # was run on breast_cancer's data under this name
    assert not (tmp_path / "out").exists()


def test_plots_refuse_mismatched_series_and_label_the_curve_they_draw():
    from taskneurons.plots import plot_comparison, plot_history

    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="series 'LN' has 1 values for 3 labels"):
        plot_comparison(ax, ["a", "b", "c"], {"LN": [0.5]})  # matplotlib would broadcast it
    plot_history(ax, {"net": pd.DataFrame({"train_loss": [0.5, 0.3]})})  # no validation: train loss
    assert ax.get_ylabel() == "train loss"
    plt.close(fig)


def test_fit_with_the_linear_first_schedule(regression_csv, tmp_path, capfd):
    model_path = tmp_path / "m.tn"
    result = InProcess(capfd)("fit", regression_csv, "--target", "target", "--hidden", "8", "--max-epochs", "400",
                              "--formula", "x**2 + x", "--term-weights", "per_input", "--term-schedule",
                              "linear_first", "--formula-stage-epochs", "50", "--out", model_path, "--quiet")
    assert result.returncode == 0, result.stderr
    from taskneurons import load

    model = load(model_path)
    assert model.term_schedule == "linear_first" and set(model.history_["stage"]) == {"linear", "formula"}
    assert model.formula_stage_epochs == 50 and (model.history_["stage"] == "formula").sum() <= 50
    bad = InProcess(capfd)("fit", regression_csv, "--target", "target", "--term-schedule", "linear_first")
    assert bad.returncode != 0 and "per_input" in bad.stderr
