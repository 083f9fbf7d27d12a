"""Every command and example in README.md runs as written (a README that lies is a bug).

* ``>>>`` examples are checked by :mod:`doctest` (output included);
* each ```` ```python ```` block runs as a script in a fresh interpreter;
* each ``taskneurons ...`` line of the "Command line" section runs as a subprocess in a folder
  laid out like the README assumes (``data.csv``, ``new.csv``, ``../shared/datasets/paper``),
  with small generated data; the benchmark grid is cut to one seed and one structure;
* the set-up commands are the ones ``.ci/run`` runs.
"""

from __future__ import annotations

import doctest
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Extra arguments that keep the benchmark grid of the README's bench line test-sized.
SMALL_GRID = ["--seeds", "1", "--structures", "S1", "--no-boosting"]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def readme_commands() -> list[list[str]]:
    """The ``taskneurons`` lines of the README's bash blocks, comments stripped, as argv lists."""
    commands = []
    for block in code_blocks("bash"):
        for line in block.splitlines():
            if line.startswith("taskneurons "):
                commands.append(shlex.split(line, comments=True))
    return commands


def test_readme_doctest_examples():
    result = doctest.testfile(str(README), module_relative=False, verbose=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, "README.md has no >>> examples"
    assert result.failed == 0


@pytest.mark.parametrize("index", range(len(code_blocks("python"))))
def test_readme_python_block_runs(index, tmp_path):
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(code_blocks("python")[index])
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr


def test_readme_set_up_commands_are_what_ci_runs():
    setups = [b.strip() for b in code_blocks("bash") if b.strip().startswith("python3 -m venv")]
    assert len(setups) == 2
    for command in setups:  # torch's CPU wheel first, then the package
        assert command.index("pip install torch==2.13.0") < command.index("pip install -e")
    assert setups[0].endswith("taskneurons demo")
    test_command = setups[1].rsplit("&&", 1)[1].strip()
    assert test_command == "python -m pytest -q"
    assert test_command in (ROOT / ".ci" / "run").read_text()


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory):
    """``work/`` with data.csv and new.csv, next to ``shared/datasets/paper`` with two small tables."""
    base = tmp_path_factory.mktemp("readme")
    work = base / "work"
    work.mkdir()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(300, 3))
    frame = pd.DataFrame(X, columns=["rooms", "age", "area"])
    frame["price"] = 2 * (X**2).sum(axis=1) - X.sum(axis=1) + rng.normal(0, 0.05, 300)
    frame.to_csv(work / "data.csv", index=False)
    frame.drop(columns="price").head(20).to_csv(work / "new.csv", index=False)
    paper = base / "shared" / "datasets" / "paper"
    paper.mkdir(parents=True)
    frame.head(150).to_csv(paper / "houses.csv", index=False)
    labels = pd.DataFrame(X[:150], columns=["p", "q", "r"]).assign(y=(X[:150, 0] > 0).astype(int))
    labels.to_csv(paper / "halves.csv", index=False)
    return work


def test_readme_cli_commands_run(readme_folder):
    commands = readme_commands()
    assert len(commands) >= 6
    for argv in commands:
        if argv[1:2] == ["demo"]:
            continue  # ~25 s: run, with its report checked, by test_cli.py::test_demo_writes_a_report_with_images
        if argv[1:3] == ["bench", "table6"]:
            argv = argv + SMALL_GRID
        result = subprocess.run([sys.executable, "-m", "taskneurons", *argv[1:]], cwd=readme_folder,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{shlex.join(argv)}\n{result.stderr}"
    assert (readme_folder / "model.tn").is_file()
    assert len(pd.read_csv(readme_folder / "predictions.csv")) == 20
    assert (readme_folder / "runs" / "table6" / "report.md").is_file()
    # The TN variant computed its TN cells only, and copied the LN cells of runs/table6.
    variant = pd.read_json(readme_folder / "runs" / "x2" / "results.jsonl", lines=True)
    base = pd.read_json(readme_folder / "runs" / "table6" / "results.jsonl", lines=True)
    assert set(variant["model"]) == {"LN", "TN"} and (variant.loc[variant["model"] == "TN", "formula_source"] == "x**2").all()
    ln = [frame[frame["model"] == "LN"].sort_values("dataset")["test_value"].tolist() for frame in (variant, base)]
    assert ln[0] == ln[1]
