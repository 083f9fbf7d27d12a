"""Issue 7, interrupted runs: SIGKILL `taskneurons bench table6` mid-grid, re-run it, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

N_DATASETS, N_SEEDS = 2, 4
GRID = N_DATASETS * N_SEEDS * 3  # VSR, LN and TN cells per (dataset, seed); one structure, no boosting


def _command(data_dir, out):
    return [sys.executable, "-m", "taskneurons", "bench", "table6", "--data-dir", str(data_dir), "--out", str(out),
            "--structures", "S1", "--seeds", str(N_SEEDS), "--no-boosting", "--n-jobs", "1", "--quiet"]


def _keys(lines):
    return [tuple(json.loads(line)[k] for k in ("dataset", "model", "structure", "seed", "protocol"))
            for line in lines]


@pytest.mark.slow  # ~20 s: two CLI processes, each paying the torch/sklearn import
def test_sigkill_mid_grid_then_rerun_keeps_every_cell_once(tmp_path):
    rng = np.random.default_rng(1)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(N_DATASETS):
        X = rng.uniform(-1, 1, size=(200, 3))
        frame = pd.DataFrame(X, columns=["a", "b", "c"])
        frame["y"] = X[:, 0] ** 3 + X[:, 1] + 0.05 * rng.normal(size=200)
        frame.to_csv(data / f"set{i}.csv", index=False)
    out = tmp_path / "out"
    results = out / "results.jsonl"
    env = {**os.environ, "TASKNEURONS_OFFLINE": "1"}
    process = subprocess.Popen(_command(data, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= 4:
                break
            time.sleep(0.01)
        assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()!r}"
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    before = results.read_bytes()
    finished = before[: before.rfind(b"\n") + 1].splitlines(keepends=True)
    assert 4 <= len(finished) < GRID  # killed mid-grid
    # A write torn by the kill (made certain here) must be dropped, not parsed nor kept.
    results.write_bytes(before + b'{"dataset": "set0", "model": "TN", "str')

    rerun = subprocess.run(_command(data, out), env=env, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    lines = results.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") for line in lines)
    records = [json.loads(line) for line in lines]  # every line parses
    keys = _keys(lines)
    assert len(keys) == len(set(keys)) == GRID  # each cell exactly once, the whole grid
    assert lines[: len(finished)] == finished  # the cells finished before the kill, kept as written
    assert all(r["status"] == "ok" for r in records)
    assert (out / "report.md").exists()
