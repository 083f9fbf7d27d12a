"""Review 4: a command-line user's own CSV files, and VSR's scoring checks.

Each test writes a small table the way users' files come (no header, thousands separators, "?" markers,
ids, infinity, other separators, other encodings) and checks the command refuses it with one line that
says what is wrong and what to do -- never a silent wrong answer, never a library's parameter name.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from taskneurons import VSR
from taskneurons.errors import DataError


def run_cli(capfd, *args):
    from taskneurons.cli import main

    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def assert_refused(result, *fragments):
    """Bad input: exit code 2 and one line on stderr holding every fragment."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("taskneurons: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (120, 3))
    y = 1.5 * (X**3).sum(1) - 2 * (X**2).sum(1) + rng.normal(0, 0.05, 120)
    return pd.DataFrame(X, columns=["a", "b", "c"]).assign(price=y)


def discover_json(capfd, path, *args):
    result = run_cli(capfd, "discover", path, "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_table_without_a_header_row_is_refused_not_read_one_row_short(tmp_path, frame, capfd):
    path = tmp_path / "noheader.csv"
    frame.to_csv(path, index=False, header=False)
    assert_refused(run_cli(capfd, "discover", path), "no header row", "add a first line")
    # a header of whole numbers (pandas' default column names) is a header
    numbered = tmp_path / "numbered.csv"
    frame.set_axis(["0", "1", "2", "3"], axis=1).to_csv(numbered, index=False)
    assert discover_json(capfd, numbered)["n_samples"] == len(frame)


@pytest.mark.parametrize("write", [lambda v: f"{v * 1000 + 5000:,.1f}", lambda v: f"${v * 100 + 200:.2f}",
                                   lambda v: f"{v * 100:.1f}%"], ids=["thousands", "currency", "percent"])
def test_numbers_written_as_text_are_refused_not_one_hot_encoded(tmp_path, frame, capfd, write):
    path = tmp_path / "text_numbers.csv"
    frame.assign(a=[write(v) for v in frame.a]).to_csv(path, index=False)  # was: 120 one-hot features
    assert_refused(run_cli(capfd, "discover", path), "column 'a'", "numbers written as text", "plain numbers")
    target = tmp_path / "text_target.csv"
    frame.assign(price=[write(v) for v in frame.price]).to_csv(target, index=False)
    assert_refused(run_cli(capfd, "discover", target), "column 'price'", "numbers written as text")


def test_an_identifier_column_is_refused_and_a_category_column_is_kept(tmp_path, frame, capfd):
    dates = tmp_path / "dates.csv"
    frame.assign(day=pd.date_range("2020-01-01", periods=len(frame)).astype(str)).to_csv(dates, index=False)
    assert_refused(run_cli(capfd, "discover", dates, "--target", "price"), "column 'day'", "'2020-01-01'",
                   "remove the column")
    colors = tmp_path / "colors.csv"
    frame.assign(color=np.resize(["red", "green", "blue"], len(frame))).to_csv(colors, index=False)
    assert discover_json(capfd, colors, "--target", "price")["n_features"] == 6  # 3 numbers + 3 one-hot


def test_missing_value_markers_missing_cells_and_infinity_name_their_row_and_column(tmp_path, frame, capfd):
    marked = frame.astype({"b": object})
    marked.loc[[3, 7], "b"] = "?"
    path = tmp_path / "marked.csv"
    marked.to_csv(path, index=False)
    assert_refused(run_cli(capfd, "discover", path), "column 'b'", "'?'", "row 3", "--dropna")
    holed = frame.copy()
    holed.loc[5, "c"] = np.nan
    holed.to_csv(path, index=False)
    assert_refused(run_cli(capfd, "discover", path), "row 5", "column 'c'", "--dropna")
    holed.drop(columns="price").to_csv(features := tmp_path / "features.csv", index=False)
    frame.to_csv(clean := tmp_path / "clean.csv", index=False)
    model = tmp_path / "m.tn"
    assert run_cli(capfd, "fit", clean, "--formula", "x", "--hidden", "2", "--max-epochs", "1", "-q",
                   "--out", model).returncode == 0
    assert_refused(run_cli(capfd, "predict", model, features), "row 5", "column 'c'", "--dropna")
    infinite = frame.copy()
    infinite.loc[2, "a"] = np.inf
    infinite.to_csv(path, index=False)
    for command in ("discover", "fit"):  # fit was: "Input X contains infinity or a value too large ..."
        assert_refused(run_cli(capfd, command, path), "infinite", "row 2", "column 'a'")


def test_target_by_position_and_helpful_unknown_target_messages(tmp_path, frame, capfd):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    by_name = discover_json(capfd, path, "--target", "price")
    for position in ("-1", "3"):
        by_position = discover_json(capfd, path, "--target", position)
        assert by_position["target"] == "price" and by_position["formula"] == by_name["formula"]
    assert discover_json(capfd, path, "--target", "0")["target"] == "a"
    assert_refused(run_cli(capfd, "discover", path, "--target", "4"), "positions run from 0 to 3")
    assert_refused(run_cli(capfd, "discover", path, "--target", "Price"), "did you mean 'price'")
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("a, b, price\n" + "".join(f"{i}, {i % 3}, {i * 2}\n" for i in range(30)))
    assert_refused(run_cli(capfd, "discover", spaced, "--target", "price"), "' price'")  # the space shows
    wide = tmp_path / "wide.csv"
    pd.DataFrame(np.ones((3, 1000)), columns=[f"f{i}" for i in range(1000)]).to_csv(wide, index=False)
    line = assert_refused(run_cli(capfd, "discover", wide, "--target", "nope"), "(1000 in all)")
    assert len(line) < 600


def test_a_text_target_with_a_value_per_row_says_the_command_option(tmp_path, frame, capfd):
    path = tmp_path / "ids.csv"
    frame.assign(price=[f"id{i}" for i in range(len(frame))]).to_csv(path, index=False)
    for command in ("discover", "fit"):
        line = assert_refused(run_cli(capfd, command, path), "120 different values", "--task regression")
        assert "task='regression'" not in line and "TaskNeuronRegressor" not in line


def test_fit_refuses_seeds_and_splits_in_the_commands_words(tmp_path, frame, capfd):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    for seed in ("-1", str(2**32)):  # fit was: "The 'random_state' parameter of train_test_split must be ..."
        for command in ("fit", "discover"):
            assert_refused(run_cli(capfd, command, path, "--seed", seed), "--seed", "[0, 2**32)")
    frame.iloc[:3].to_csv(three := tmp_path / "three.csv", index=False)  # was: "VSR needs at least 3 samples"
    assert_refused(run_cli(capfd, "fit", three), "3 usable row(s)", "--test-size")
    frame.iloc[:1].to_csv(one := tmp_path / "one.csv", index=False)  # was: "... and train_size=None ..."
    assert_refused(run_cli(capfd, "fit", one), "leaves 0 to train on")
    assert_refused(run_cli(capfd, "discover", path, "--max-degree", "0"), "--max-degree")
    assert_refused(run_cli(capfd, "discover", path, "--time-budget", "-1"), "--time-budget")


def test_discover_json_says_whether_the_time_budget_stopped_the_search(tmp_path, frame, capfd):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    assert discover_json(capfd, path, "--bases", "all", "--time-budget", "0")["stopped_early"] == "time_budget"
    assert discover_json(capfd, path)["stopped_early"] is None


def test_other_separators_and_encodings_say_how_to_save_the_file(tmp_path, frame, capfd):
    semicolons = tmp_path / "semi.csv"
    frame.to_csv(semicolons, index=False, sep=";")
    assert_refused(run_cli(capfd, "discover", semicolons), "separated by ';'")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(frame.rename(columns={"price": "pr\xe9ce"}).to_csv(index=False).encode("latin-1"))
    assert_refused(run_cli(capfd, "discover", latin1), "not UTF-8", "save it as UTF-8")
    # what pandas reads as is stays accepted
    bom_crlf = tmp_path / "bom.csv"
    bom_crlf.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False, lineterminator="\r\n").encode() + b"\r\n\r\n")
    reference = tmp_path / "plain.csv"
    frame.to_csv(reference, index=False)
    assert discover_json(capfd, bom_crlf)["formula"] == discover_json(capfd, reference)["formula"]


def test_vsr_score_refuses_y_of_another_shape_or_with_nan():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (60, 3))
    y = (X**2).sum(1)
    model = VSR(random_state=0).fit(X, y)
    assert model.score(X, y[:, None]) == pytest.approx(model.score(X, y))
    with pytest.raises(DataError, match=r"y has shape \(60, 2\).*1 output"):  # was: "operands could not be broadcast"
        model.score(X, np.c_[y, y])
    with pytest.raises(DataError, match=r"y has shape \(10,\)"):
        model.score(X, y[:10])
    with pytest.raises(DataError, match="NaN"):  # was scikit-learn's "Input contains NaN."
        model.score(X, np.where(y > 1, np.nan, y))
    two = VSR(random_state=0).fit(X, np.c_[y, -y])
    with pytest.raises(DataError, match=r"pass y of shape \(60, 2\)"):
        two.score(X, y)
