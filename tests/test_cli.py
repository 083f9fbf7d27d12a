"""The `taskneurons` command, run as a subprocess on small data: results, files, exit codes, errors."""

from __future__ import annotations

import io
import json
import os
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


def test_discover_on_classes_names_the_class_of_each_formula(classification_csv, tmp_path):
    result = run("discover", classification_csv, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "formula for class 'outer'" in result.stdout  # two classes: the positive (second) class' output
    assert "'inner'" not in result.stdout.split("complexity")[0]
    record = json.loads(run("discover", classification_csv, "--json").stdout)
    assert record["classes"] == ["inner", "outer"]
    assert [row["class"] for row in record["class_formulas"]] == ["outer"]
    assert record["class_formulas"][0]["formula"] == record["formula"]
    three = tmp_path / "three.csv"
    frame = pd.read_csv(classification_csv)
    frame.assign(label=np.where(frame["p"] > 0.5, "edge", frame["label"])).to_csv(three, index=False)
    record = json.loads(run("discover", three, "--json").stdout)
    assert [row["class"] for row in record["class_formulas"]] == ["edge", "inner", "outer"]


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


def test_damaged_gzip_data_is_bad_input_not_an_interruption(tmp_path, capfd):
    # Typer turns an EOFError (a truncated .csv.gz) into Abort: it used to print "interrupted", exit 130.
    import gzip

    run_here = InProcess(capfd)
    packed = gzip.compress(b"a,b,y\n" + b"".join(b"%d,%d,%d\n" % (i, i * 2, i % 3) for i in range(400)))
    cases = {"truncated": packed[: len(packed) // 2], "plain": b"a,y\n1,2\n"}
    for name, content in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.csv.gz").write_bytes(content)
        result = run_here("bench", "table6", "--data-dir", folder, "--structures", "S1", "--seeds", "1",
                          "--no-boosting", "--out", tmp_path / f"out_{name}", "-q")
        assert result.returncode == 2
        assert_clean_error(result, f"{folder / name}.csv.gz", "is damaged")
        assert "interrupted" not in result.stderr and not (tmp_path / f"out_{name}").exists()
        discovered = run_here("discover", folder / f"{name}.csv.gz")
        assert discovered.returncode == 2 and "interrupted" not in discovered.stderr


def test_an_eof_error_is_not_reported_as_an_interruption(monkeypatch, capfd, tmp_path):
    import taskneurons.bench
    from taskneurons.cli import main

    def ended_early(**kwargs):
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    monkeypatch.setattr(taskneurons.bench, "run_table6", ended_early)
    assert main(["bench", "table6", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err
    assert "interrupted" not in err and "taskneurons: error: Compressed file ended" in err


def test_an_out_that_is_a_file_is_refused_with_what_to_pass(tmp_path, capfd):
    run_here = InProcess(capfd)
    afile = tmp_path / "afile.txt"
    afile.write_text("hi")
    assert_clean_error(run_here("bench", "table6", "--data-dir", tmp_path, "--out", afile, "-q"),
                       f"--out {afile} is a file; pass a folder")
    assert_clean_error(run_here("bench", "table6", "--report-only", "--out", afile),
                       f"--out {afile} is a file; pass the folder")
    assert_clean_error(run_here("demo", "--out", afile, "-q"), f"--out {afile} is a file; pass a folder")
    assert afile.read_text() == "hi"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(run_here("bench", "table5", "--report-only", "--out", empty),
                       f"run `taskneurons bench table5 --out {empty}` first")
    assert_clean_error(run_here("bench", "table6", "--report-only", "--out", empty),
                       f"run `taskneurons bench table6 --out {empty}` first")


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_demo_refuses_a_seed_out_of_range_before_any_work(tmp_path, capfd, seed):
    result = InProcess(capfd)("demo", "--out", tmp_path / "out", "--seed", seed, "-q")
    assert result.returncode == 2
    assert_clean_error(result, "--seed", "[0, 2**32)", f"got {seed}")
    assert not (tmp_path / "out").exists()


def test_a_dataset_shape_warning_is_one_clean_line(tmp_path, capfd, monkeypatch):
    """A registered name with data of another shape warns, as one line like the errors (no source line)."""
    import taskneurons.bench.table6 as table6
    from taskneurons.datasets import DatasetShapeWarning

    rng = np.random.default_rng(0)
    pd.DataFrame(rng.uniform(-1, 1, (60, 3)), columns=list("abc")).assign(q=rng.normal(size=60)).to_csv(
        tmp_path / "wine.csv", index=False)
    resolve = table6.resolve_datasets

    def resolve_then_stop(*args, **kwargs):
        resolve(*args, **kwargs)
        raise KeyboardInterrupt  # stop before any cell runs

    monkeypatch.setattr(table6, "resolve_datasets", resolve_then_stop)
    result = InProcess(capfd)("bench", "table6", "--data-dir", tmp_path, "--structures", "S1", "--seeds", "1",
                              "--no-boosting", "--out", tmp_path / "out", "-q")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 130 and len(lines) == 2, result.stderr
    assert lines[0].startswith("taskneurons: warning: Dataset 'wine_quality' from ") and "60 x 3" in lines[0]
    assert "DatasetShapeWarning" not in result.stderr and "load(name" not in result.stderr
    with pytest.warns(DatasetShapeWarning):  # outside main() warnings show as usual again
        from taskneurons.datasets import load

        load("wine", tmp_path)


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


def assert_strict_json(text):
    """Parse as strict JSON: NaN and Infinity are not JSON, and JSON.parse or jq refuse them."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    """Five rows: fit holds out one test row (R² undefined), discover has no validation rows."""
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    pd.DataFrame(rng.uniform(-1, 1, (5, 3)), columns=["a", "b", "y"]).to_csv(path, index=False)
    return path


def test_json_output_is_strict_json_with_null_for_undefined_metrics(tiny_csv, tmp_path, capfd):
    run_here = InProcess(capfd)
    result = run_here("fit", tiny_csv, "--hidden", "4", "--max-epochs", "3", "--formula", "x", "--json", "-q")
    assert result.returncode == 0, result.stderr
    payload = assert_strict_json(result.stdout)
    assert payload["n_test"] == 1 and payload["results"]["LN"]["r2"] is None  # was NaN
    assert result.stderr == ""  # no UndefinedMetricWarning from sklearn
    table = run_here("fit", tiny_csv, "--hidden", "4", "--max-epochs", "3", "--formula", "x", "-q")
    assert table.returncode == 0 and "n/a" in table.stdout
    out = tmp_path / "front.json"
    result = run_here("discover", tiny_csv, "--json", "-q", "--out", out)
    assert result.returncode == 0, result.stderr
    for text in (result.stdout, out.read_text()):
        pareto = assert_strict_json(text)["pareto"]
        assert pareto and all(row["val_loss"] is None for row in pareto)


def test_jsonable_turns_numpy_values_and_non_finite_numbers_into_json():
    from taskneurons.cli import _to_json

    payload = {"a": np.float32("inf"), "b": [np.nan, -np.inf, 1.5], "c": np.array([np.nan, 2.0]),
               "d": (np.int64(3), np.bool_(True)), "e": {"f": float("nan")}, "g": Formula("x")}
    assert assert_strict_json(_to_json(payload)) == {"a": None, "b": [None, None, 1.5], "c": [None, 2.0],
                                                     "d": [3, True], "e": {"f": None}, "g": "x"}


def test_an_out_path_that_cannot_be_written_is_refused_before_any_work(tmp_path, regression_csv, capfd,
                                                                       monkeypatch):
    import taskneurons.estimators
    import taskneurons.vsr

    def no_training(*args, **kwargs):
        raise AssertionError("the --out path must be checked before the work")

    monkeypatch.setattr(taskneurons.estimators.TaskNeuronRegressor, "fit", no_training)
    monkeypatch.setattr(taskneurons.vsr.VSR, "fit", no_training)
    run_here = InProcess(capfd)
    folder = tmp_path / "a_folder"
    folder.mkdir()
    fit = run_here("fit", regression_csv, "--formula", "x", "--out", folder)
    assert_clean_error(fit, f"--out {folder} is a folder", str(folder / "model.tn"))
    assert fit.returncode == 2 and not (tmp_path / "a_folder.tmp").exists()
    assert_clean_error(run_here("discover", regression_csv, "--out", folder), "is a folder", "formula.json")
    assert_clean_error(run_here("predict", tmp_path / "none.tn", regression_csv, "--out", folder), "is a folder")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_an_out_path_in_a_read_only_folder_is_refused(tmp_path, regression_csv, capfd):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = InProcess(capfd)("fit", regression_csv, "--out", locked / "m.tn")
        assert_clean_error(result, "is not writable")
        assert result.returncode == 2
    finally:
        locked.chmod(0o700)


def test_predict_takes_a_features_only_table_for_a_one_feature_model(tmp_path, capfd):
    run_here = InProcess(capfd)
    rng = np.random.default_rng(4)
    both = tmp_path / "a_y.csv"
    frame = pd.DataFrame({"a": rng.uniform(-1, 1, 60)}).assign(y=lambda f: 2 * f.a)
    frame.to_csv(both, index=False)
    frame[["a"]].to_csv(features_only := tmp_path / "a.csv", index=False)
    model = tmp_path / "a.tn"
    assert run_here("fit", both, "--hidden", "4", "--max-epochs", "3", "--formula", "x", "-q",
                    "--out", model).returncode == 0
    result = run_here("predict", model, features_only)
    assert result.returncode == 0, result.stderr  # was: "needs at least one feature column and the target"
    assert result.stdout == run_here("predict", model, both).stdout
    assert_clean_error(run_here("fit", features_only), "has 1 column(s)", "the target")  # fit needs both


def _saved(model, path, X, y):
    model.fit(X, y).save(path)
    return model


def test_predict_with_a_model_fitted_without_column_names(tmp_path, capfd):
    from taskneurons import TaskNeuronRegressor

    run_here = InProcess(capfd)
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (60, 2))
    y = X.sum(1)
    settings = {"hidden_layer_sizes": (4,), "formula": "x", "max_epochs": 2, "random_state": 0}
    on_array = _saved(TaskNeuronRegressor(**settings), tmp_path / "array.tn", X, y)
    numbered = _saved(TaskNeuronRegressor(**settings), tmp_path / "numbered.tn", pd.DataFrame(X), y)
    data = tmp_path / "new.csv"
    pd.DataFrame(X, columns=["a", "b"]).to_csv(data, index=False)
    for model, path in ((on_array, "array.tn"), (numbered, "numbered.tn")):
        result = run_here("predict", tmp_path / path, data)
        assert result.returncode == 0, result.stderr  # was: "at least one array or dtype is required"
        assert result.stderr == ""
        np.testing.assert_allclose(pd.read_csv(io.StringIO(result.stdout))["prediction"], model.predict(X))
    extra = tmp_path / "extra.csv"
    pd.DataFrame(X, columns=["a", "b"]).assign(y=y).to_csv(extra, index=False)
    assert_clean_error(run_here("predict", tmp_path / "array.tn", extra), "fitted without column names",
                       "2 feature(s) by position", "has 3 columns")
    text = tmp_path / "text.csv"
    pd.DataFrame({"a": X[:, 0], "s": "u"}).to_csv(text, index=False)
    assert_clean_error(run_here("predict", tmp_path / "array.tn", text), "column 's'", "holds text")


def test_predict_matches_number_named_columns_by_their_header(tmp_path, capfd):
    from taskneurons import TaskNeuronRegressor

    rng = np.random.default_rng(6)
    X = pd.DataFrame({0: rng.uniform(-1, 1, 60), 1: rng.choice(["u", "v"], 60)})
    y = X[0] + (X[1] == "u")
    model = _saved(TaskNeuronRegressor((4,), formula="x", max_epochs=2, random_state=0), tmp_path / "m.tn", X, y)
    data = tmp_path / "new.csv"
    X[[1, 0]].assign(other=1.0).to_csv(data, index=False)  # other order and an extra column: matched by name
    result = InProcess(capfd)("predict", tmp_path / "m.tn", data)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no sklearn warning about feature names
    np.testing.assert_allclose(pd.read_csv(io.StringIO(result.stdout))["prediction"], model.predict(X))


def test_a_bool_column_with_a_missing_value_stays_bool_after_dropna(tmp_path, capfd):
    run_here = InProcess(capfd)
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"a": rng.uniform(-1, 1, 80), "flag": rng.integers(0, 2, 80).astype(bool)})
    frame["y"] = frame.a + frame.flag
    clean, holed = tmp_path / "clean.csv", tmp_path / "holed.csv"
    frame.to_csv(clean, index=False)
    with_hole = frame.astype({"flag": object})
    with_hole.loc[2, "flag"] = np.nan  # pandas now reads the column as object (True, False, NaN)
    with_hole.to_csv(holed, index=False)
    model = tmp_path / "m.tn"
    assert run_here("fit", clean, "--hidden", "4", "--max-epochs", "3", "--formula", "x", "-q",
                    "--out", model).returncode == 0
    result = run_here("predict", model, holed, "--dropna")
    assert result.returncode == 0, result.stderr  # was: "X has text or categorical columns, but ..."
    expected = pd.read_csv(io.StringIO(run_here("predict", model, clean).stdout)).drop(index=2)
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(result.stdout)), expected.reset_index(drop=True))
    # fit --dropna reads the same column as bool too, so the model takes the complete file afterwards
    assert run_here("fit", holed, "--dropna", "--hidden", "4", "--max-epochs", "3", "--formula", "x", "-q",
                    "--out", model).returncode == 0
    assert run_here("predict", model, clean).returncode == 0
