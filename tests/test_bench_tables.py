"""Table 5 / Table 6 runners on tiny generated datasets: end to end, resume, executors, errors, report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskneurons.bench import (
    STRUCTURES,
    build_report,
    load_results,
    outcome_counts,
    resolve_protocol,
    resolve_structures,
    run_table5,
    run_table6,
    table6_summary,
)
from taskneurons.bench.report import best_structures
from taskneurons.cli import main
from taskneurons.errors import DataError
from taskneurons.formula import Formula

# A protocol small enough for tests: 3 epochs (3 more for the per-input formula stage), a cubic
# grammar, a 10-tree HGB.
TINY = {"name": "tiny", "estimator": {"max_epochs": 3, "batch_size": 32, "patience": 2, "formula_stage_epochs": 3},
        "vsr": {"max_degree": 3}, "boosting": {"HGB": {"max_iter": 10}}}
STRUCTURE = {"T": (6,)}
VOLATILE = ("time", "fit_time", "warnings", "traceback")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_datasets(folder, n=120, seed=0):
    """Two datasets the registry has never seen: a regression and a binary task with a text column."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["y"] = (X ** 2).sum(axis=1) + 0.1 * rng.normal(size=n)
    frame.to_csv(folder / "quad.csv", index=False)
    labels = pd.DataFrame(X, columns=["u", "v", "w"])
    labels["colour"] = rng.choice(["red", "green", "blue"], n)
    labels["label"] = np.where(X[:, 0] + X[:, 1] ** 2 > 1.0, "yes", "no")
    labels.to_csv(folder / "labels.csv.gz", index=False)
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return _write_datasets(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def baseline(data_dir, tmp_path_factory):
    """The tiny grid run in this process (executor local, one job)."""
    out = tmp_path_factory.mktemp("baseline")
    run = run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=TINY, out=out, boosting=["HGB"])
    return run


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _by_key(records):
    keys = [(r["dataset"], r["model"], r["structure"], r["seed"], r["protocol"]) for r in records]
    assert len(keys) == len(set(keys)), "a cell was written twice"
    return {k: {f: v for f, v in r.items() if f not in VOLATILE} for k, r in zip(keys, records, strict=True)}


# -- end to end --------------------------------------------------------------------------------
def test_unseen_datasets_run_end_to_end_with_report(baseline, data_dir):
    records = _lines(baseline.results)
    # 2 datasets x 2 seeds x (VSR, HGB, LN, TN)
    assert baseline.n_cells == len(records) == 16 and baseline.n_computed == 16 and baseline.n_errors == 0
    assert {r["status"] for r in records} == {"ok"}
    tasks = {r["dataset"]: r["task"] for r in records}
    assert tasks == {"quad": "regression", "labels": "binary"}
    for r in records:
        assert r["n_train"] == 96 and r["n_test"] == 24
        if r["model"] in ("LN", "TN"):
            assert r["hidden"] == [6] and r["ln_hidden"] == [6]
            assert r["n_parameters"] <= r["ln_n_parameters"]
        if r["model"] == "LN":
            assert r["n_parameters"] == r["ln_n_parameters"] and r["hidden_used"] == [6]
        if r["metric"] == "accuracy":
            assert 0 <= r["test_value"] <= 1
    # TN takes the formula of its (dataset, seed)'s VSR cell.
    vsr = {(r["dataset"], r["seed"]): r["formula"] for r in records if r["model"] == "VSR"}
    for r in records:
        if r["model"] == "TN":
            assert r["formula"] == vsr[(r["dataset"], r["seed"])]
    # The quadratic target's formula is found (in the scaled inputs).
    assert "x**2" in vsr[("quad", 0)]

    text = baseline.report.read_text()
    assert "## Table 6 — protocol `tiny`" in text and "## Table 5" in text
    assert "win / loss: a two-sided paired t-test" in text  # the tie definition is printed
    assert "| quad | mse | T |" in text and "n/a" in text  # no paper numbers for unseen datasets
    pngs = sorted(baseline.out.glob("*.png"))
    assert [p.name for p in pngs] == ["table6_tiny_datasets.png", "table6_tiny_outcomes.png"]
    import matplotlib.image

    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert matplotlib.image.imread(png).ndim == 3


def test_report_rebuilds_from_jsonl_alone(baseline, tmp_path):
    (tmp_path / "results.jsonl").write_bytes(baseline.results.read_bytes())
    assert main(["bench", "table6", "--report-only", "--out", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "report.md").read_text() == baseline.report.read_text()
    assert (tmp_path / "table6_tiny_outcomes.png").read_bytes()[:8] == PNG_MAGIC


# -- resume ------------------------------------------------------------------------------------
def test_resume_computes_only_missing_cells_and_never_duplicates(baseline, data_dir, tmp_path):
    full = baseline.results.read_bytes().splitlines(keepends=True)
    # An interrupted run: 5 finished cells on disk, then a line torn by the kill.
    (tmp_path / "results.jsonl").write_bytes(b"".join(full[:5]) + full[5][:40])
    run = run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=TINY, out=tmp_path,
                     boosting=["HGB"], report=False)
    assert (run.n_skipped, run.n_computed) == (5, 11)
    lines = (tmp_path / "results.jsonl").read_bytes().splitlines(keepends=True)
    assert lines[:5] == full[:5]  # finished cells kept as they were
    # Recomputed cells have the same numbers: a cell is deterministic given its key.
    assert _by_key([json.loads(x) for x in lines]) == _by_key(_lines(baseline.results))
    again = run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=TINY, out=tmp_path,
                       boosting=["HGB"], report=False)
    assert (again.n_computed, again.n_skipped) == (0, 16)
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 16


def test_growing_the_grid_adds_cells(baseline, data_dir, tmp_path):
    (tmp_path / "results.jsonl").write_bytes(baseline.results.read_bytes())
    run = run_table6(data_dir=data_dir, datasets=["quad"], structures=STRUCTURE, seeds=3, protocol=TINY,
                     out=tmp_path, boosting=["HGB"], report=False)
    assert (run.n_cells, run.n_skipped, run.n_computed) == (12, 8, 4)
    assert len(_by_key(_lines(tmp_path / "results.jsonl"))) == 20


def test_changed_settings_are_refused(baseline, data_dir, tmp_path):
    (tmp_path / "results.jsonl").write_bytes(baseline.results.read_bytes())
    changed = {**TINY, "estimator": {**TINY["estimator"], "learning_rate": 0.1}}
    with pytest.raises(DataError, match="computed with other settings or other data"):
        run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=changed, out=tmp_path,
                   boosting=["HGB"], report=False)
    # The same names in another folder holding other data: refused too.
    (tmp_path / "other").mkdir()
    other = _write_datasets(tmp_path / "other", seed=1)
    with pytest.raises(DataError, match="other data"):
        run_table6(data_dir=other, datasets=["quad"], structures=STRUCTURE, seeds=2, protocol=TINY, out=tmp_path,
                   boosting=["HGB"], report=False)
    assert _by_key(_lines(tmp_path / "results.jsonl")) == _by_key(_lines(baseline.results))  # untouched


# -- executors ---------------------------------------------------------------------------------
def test_process_pool_and_ray_give_identical_results(baseline, data_dir, tmp_path):
    pytest.importorskip("ray")
    expected = _by_key(_lines(baseline.results))  # computed in this process
    # Two pool workers share the cells; Ray gets one CPU (every worker pays ~10 s of imports here).
    for executor, n_jobs in (("local", 2), ("ray", 1)):
        out = tmp_path / executor
        run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=TINY, out=out, boosting=["HGB"],
                   n_jobs=n_jobs, executor=executor, report=False)
        assert _by_key(_lines(out / "results.jsonl")) == expected, executor


# -- errors ------------------------------------------------------------------------------------
def test_failing_cells_are_recorded_and_retried_on_request(data_dir, tmp_path, monkeypatch):
    from taskneurons.bench import cells

    def broken(cell, data, train, test):
        raise ValueError("this cell's computation failed")

    # A table every cell fails on is refused up front, so the networks and VSR fail here by hand
    # (one job: the cells run in this process); HGB still works.
    monkeypatch.setattr(cells, "_run_network", broken)
    monkeypatch.setattr(cells, "_run_vsr", broken)
    folder = tmp_path / "data"
    folder.mkdir()
    frame = pd.read_csv(data_dir / "quad.csv")
    frame.to_csv(folder / "holes.csv", index=False)
    out = tmp_path / "out"
    run = run_table6(data_dir=folder, structures=STRUCTURE, seeds=1, protocol=TINY, out=out, boosting=["HGB"])
    records = {r["model"]: r for r in _lines(out / "results.jsonl")}
    assert run.n_errors == 3 and records["HGB"]["status"] == "ok"
    for model in ("VSR", "LN"):
        assert records[model]["status"] == "error" and "computation failed" in records[model]["error"]
    assert records["TN"]["status"] == "error" and "VSR cell" in records["TN"]["error"]
    report = run.report.read_text()
    assert "## Failed cells" in report and "| holes | LN | T | 0 | tiny |" in report
    assert run_table6(data_dir=folder, structures=STRUCTURE, seeds=1, protocol=TINY, out=out, boosting=["HGB"],
                      report=False).n_computed == 0
    retried = run_table6(data_dir=folder, structures=STRUCTURE, seeds=1, protocol=TINY, out=out, boosting=["HGB"],
                         report=False, retry_errors=True)
    assert (retried.n_computed, retried.n_errors) == (3, 3)
    assert len(_by_key(_lines(out / "results.jsonl"))) == 4
    # The user fixes the file. The finished HGB cell of the old data is still protected (only it
    # is named); the failed cells hold nothing to protect and are recomputed on the new data.
    monkeypatch.undo()
    frame.loc[3, "b"] = 0.0
    frame.to_csv(folder / "holes.csv", index=False)
    with pytest.raises(DataError, match="^1 finished cell"):
        run_table6(data_dir=folder, structures=STRUCTURE, seeds=1, protocol=TINY, out=out, boosting=["HGB"],
                   report=False)
    fixed = run_table6(data_dir=folder, structures=STRUCTURE, seeds=1, protocol=TINY, out=out, boosting=[],
                       report=False)
    assert (fixed.n_computed, fixed.n_errors) == (3, 0)
    assert {r["model"]: r["status"] for r in _lines(out / "results.jsonl")} == dict.fromkeys(
        ("HGB", "VSR", "LN", "TN"), "ok")


def test_a_sidecar_that_changes_the_task_changes_the_data_fingerprint(data_dir, tmp_path):
    from taskneurons.bench.runner import resolve_datasets

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "quad.csv").write_bytes((data_dir / "quad.csv").read_bytes())
    (before,) = resolve_datasets(folder, ["quad"])
    (folder / "quad.json").write_text('{"task": "classification"}')
    (after,) = resolve_datasets(folder, ["quad"])
    assert after.fingerprint != before.fingerprint  # old cells of the other task are not reused


def test_tables_every_cell_would_fail_on_are_refused_before_any_work(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "header.csv").write_text("a,b,y\n")
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, None, 2.0]}).to_csv(folder / "gap.csv", index=False)
    for name, match in (("header", "no data rows"), ("gap", "1 missing value")):
        with pytest.raises(DataError, match=match):
            run_table6(data_dir=folder, datasets=[name], out=tmp_path / name, protocol=TINY)
        assert not (tmp_path / name).exists()


def _table(folder, name, frame):
    folder.mkdir(exist_ok=True)
    frame.to_csv(folder / f"{name}.csv", index=False)


def test_tables_the_networks_refuse_are_refused_before_any_work(tmp_path):
    """NaN or infinite features, a one-class target and too few rows for the split: every network and
    VSR cell would fail, so the run is refused up front (the docstring's promise), naming the table."""
    rng = np.random.default_rng(1)
    base = pd.DataFrame(rng.uniform(-1, 1, (40, 3)), columns=["a", "b", "c"])
    folder = tmp_path / "data"
    nan = base.assign(y=base.sum(axis=1))
    nan.loc[5, "a"] = np.nan
    _table(folder, "nanfeat", nan)
    inf = base.assign(y=base.sum(axis=1))
    inf.loc[3, "b"] = np.inf
    _table(folder, "inffeat", inf)
    _table(folder, "oneclass", base.assign(label="yes"))
    _table(folder, "onerow", base.head(1).assign(y=1.5))
    for name, match in (("nanfeat", r"'nanfeat' .*nanfeat.csv.* column 'a' contains NaN or infinity in 1 row"),
                        ("inffeat", "column 'b' contains NaN or infinity"),
                        ("oneclass", r"target column 'label' holds one class only \('yes'\)"),
                        ("onerow", r"has 1 row\(s\): too few for a train/test split")):
        with pytest.raises(DataError, match=match):
            run_table6(data_dir=folder, datasets=[name], structures=STRUCTURE, seeds=1, out=tmp_path / name,
                       protocol=TINY, boosting=False)
        with pytest.raises(DataError, match=match):
            run_table5(data_dir=folder, datasets=[name], out=tmp_path / name, protocol=TINY)
        assert not (tmp_path / name).exists()


def test_a_huge_seed_count_is_refused_before_it_is_expanded(data_dir, tmp_path):
    from taskneurons.bench.runner import expand_seeds

    assert expand_seeds(3) == [0, 1, 2] and expand_seeds([5, 7]) == [5, 7]
    # list(range(2**32 + 1)) needs ~150 GB, so the range check must come first. The test uses 2**62: were
    # the count expanded first, that fails at once with a MemoryError instead of filling the memory.
    with pytest.raises(DataError, match=r"seeds must be a positive count or seeds in \[0, 2\*\*32\), got 4611"):
        run_table6(data_dir=data_dir, seeds=2**62, protocol=TINY, out=tmp_path / "out")
    with pytest.raises(DataError, match="got 4611686018427387904"):
        expand_seeds(2**62)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["tiny/v2", "my tiny", ".hidden", "-x", "a|b"])
def test_protocol_names_that_cannot_be_file_names_are_refused(data_dir, tmp_path, name):
    with pytest.raises(DataError, match="cannot be part of a file name"):
        run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=1, protocol={**TINY, "name": name},
                   out=tmp_path / "out", boosting=False)
    assert not (tmp_path / "out").exists()
    assert resolve_protocol({**TINY, "name": "tiny_v2.1-b"})["name"] == "tiny_v2.1-b"


def test_a_report_of_results_with_an_unsafe_protocol_name_still_builds(tmp_path):
    """Results written before names were checked: the figure files get a safe name."""
    records = [{"hidden": [4], **_record(m, s, 0.1 + s / 100), "protocol": "tiny/v2"}
               for s in range(2) for m in ("LN", "TN")]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    text = build_report(tmp_path).read_text()
    assert "![table6_tiny_v2_datasets.png](table6_tiny_v2_datasets.png)" in text
    assert (tmp_path / "table6_tiny_v2_outcomes.png").is_file()


def test_an_address_without_the_ray_executor_is_refused(data_dir, tmp_path):
    with pytest.raises(DataError, match="use it with --executor ray"):
        run_table6(data_dir=data_dir, out=tmp_path / "out", protocol=TINY, address="ray://head:10001")


@pytest.mark.parametrize(("kwargs", "match"), [({"n_jobs": 0}, "n_jobs must be a positive integer"),
                                               ({"seeds": [-1]}, "seeds must be"), ({"seeds": 0}, "seeds must be")])
def test_bad_run_options_are_refused_before_the_results_file_exists(data_dir, tmp_path, kwargs, match):
    with pytest.raises(DataError, match=match):
        run_table6(data_dir=data_dir, out=tmp_path / "out", protocol=TINY, **kwargs)
    with pytest.raises(DataError, match=match if "n_jobs" in kwargs else "seeds must be"):
        run_table5(data_dir=data_dir, out=tmp_path / "out", protocol=TINY,
                   **({"n_jobs": 0} if "n_jobs" in kwargs else {"seed": -1}))
    assert not (tmp_path / "out").exists()


# -- Table 5 -----------------------------------------------------------------------------------
def test_table5_shares_the_discovery_cell_with_table6(baseline, data_dir, tmp_path):
    (tmp_path / "results.jsonl").write_bytes(baseline.results.read_bytes())
    run = run_table5(data_dir=data_dir, out=tmp_path, seed=1, protocol=TINY)
    assert (run.n_cells, run.n_computed, run.n_skipped) == (2, 0, 2)
    fresh = run_table5(data_dir=data_dir, datasets=["quad"], out=tmp_path / "t5", seed=0, protocol=TINY)
    assert fresh.n_computed == 1
    record = _lines(tmp_path / "t5" / "results.jsonl")[0]
    assert record["model"] == "VSR" and record["formula_record"]["terms"]
    assert "## Table 5 — formulas found (protocol `tiny`)" in fresh.report.read_text()


# -- TN variants and reuse ---------------------------------------------------------------------
def test_a_tn_variant_copies_the_unchanged_cells_and_computes_only_tn(baseline, data_dir, tmp_path):
    variant = {**TINY, "tn": {"basis": "terms"}}
    run = run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=variant, out=tmp_path,
                     boosting=["HGB"], reuse=baseline.out)
    # VSR, HGB and LN cells (4 each) are the baseline's; the TN cells' settings differ.
    assert (run.n_cells, run.n_reused, run.n_skipped, run.n_computed) == (16, 12, 12, 4)
    new, old = _by_key(_lines(run.results)), _by_key(_lines(baseline.results))
    assert set(new) == set(old)
    for key, record in new.items():
        if key[1] == "TN":
            assert record["settings"]["basis"] == "terms" and record["settings_hash"] != old[key]["settings_hash"]
            assert record["formula"] == new[(key[0], "VSR", "-", key[3], key[4])]["formula"]
            assert record["formula_source"] == "vsr"
        else:
            assert record == old[key]  # copied as they were
    assert "basis='terms'" in run.report.read_text()
    again = run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=variant, out=tmp_path,
                       boosting=["HGB"], reuse=baseline.out, report=False)
    assert (again.n_computed, again.n_reused, again.n_skipped) == (0, 0, 16)
    # Without reuse the variant computes everything, with the same numbers as the copies.
    fresh = run_table6(data_dir=data_dir, datasets=["quad"], structures=STRUCTURE, seeds=1, protocol=variant,
                       out=tmp_path / "fresh", boosting=["HGB"], report=False)
    assert fresh.n_computed == 4 and fresh.n_reused == 0
    assert all(record == new[key] for key, record in _by_key(_lines(fresh.results)).items())


def test_reuse_replaces_failed_cells_and_says_when_nothing_fits(baseline, data_dir, tmp_path):
    from rich.console import Console

    records = _lines(baseline.results)
    failed = dict(next(r for r in records if r["model"] == "LN"))
    failed.update(status="error", error="RuntimeError: simulated")
    (tmp_path / "results.jsonl").write_text(json.dumps(failed) + "\n")
    run = run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=TINY, out=tmp_path,
                     boosting=["HGB"], reuse=baseline.out, report=False)
    assert (run.n_reused, run.n_computed, run.n_errors) == (16, 0, 0)
    assert _by_key(_lines(run.results)) == _by_key(records)
    # Under another protocol name nothing fits: computed, and the console says why nothing was copied.
    console = Console(record=True, width=200)
    run = run_table6(data_dir=data_dir, datasets=["quad"], structures=STRUCTURE, seeds=1,
                     protocol={**TINY, "name": "tiny2"}, out=tmp_path / "other", boosting=["HGB"],
                     reuse=baseline.out, report=False, console=console)
    assert (run.n_reused, run.n_computed) == (0, 4)
    assert "none of its cells fits this grid" in console.export_text()


def test_discovery_runs_in_the_tn_networks_input_space(baseline, data_dir, tmp_path):
    variant = {**TINY, "tn": {"scale_X": "quantile"}}
    run = run_table6(data_dir=data_dir, datasets=["quad"], structures=STRUCTURE, seeds=1, protocol=variant,
                     out=tmp_path, boosting=["HGB"], reuse=baseline.out, report=False)
    # LN and HGB are copied; VSR rediscovers on quantile-scaled inputs, the TN cell uses that formula.
    assert (run.n_reused, run.n_computed) == (2, 2)
    vsr = next(r for r in _lines(run.results) if r["model"] == "VSR")
    assert vsr["settings_hash"] != next(r for r in _lines(baseline.results) if r["model"] == "VSR")["settings_hash"]


def test_a_report_of_mixed_settings_says_so(baseline, data_dir, tmp_path):
    (tmp_path / "results.jsonl").write_bytes(baseline.results.read_bytes())
    run_table6(data_dir=data_dir, datasets=["quad"], structures={"U": (5,)}, seeds=1,
               protocol={**TINY, "tn": {"basis": "terms"}}, out=tmp_path, boosting=["HGB"], report=False)
    text = build_report(tmp_path).read_text()
    assert "Network settings: differ between the cells of this folder (1 LN and 2 TN settings)" in text
    assert "TN settings beyond LN's" not in text


def test_a_fixed_tn_formula_runs_without_discovery(baseline, data_dir, tmp_path):
    variant = {**TINY, "tn_formula": "x + x**2"}
    run = run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol=variant, out=tmp_path,
                     boosting=["HGB"], reuse=baseline.out)
    # No VSR cells; HGB and LN copied, TN computed with the fixed formula.
    assert (run.n_cells, run.n_reused, run.n_computed) == (12, 8, 4)
    records = _lines(run.results)
    assert {r["model"] for r in records} == {"HGB", "LN", "TN"}
    tn = [r for r in records if r["model"] == "TN"]
    assert all(r["layer_terms"] == ["x**2", "x"] and r["formula_source"] == "x**2 + x" for r in tn)
    text = run.report.read_text()
    assert "TN formula: `x**2 + x` on every dataset" in text and "## Table 5" not in text
    # Another fixed formula is another cell: refused in the same folder.
    with pytest.raises(DataError, match="computed with other settings"):
        run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=2, protocol={**TINY, "tn_formula": "x**3"},
                   out=tmp_path, boosting=["HGB"], report=False)


def test_the_papers_formula_per_dataset(tmp_path):
    from taskneurons.bench.runner import DatasetSpec
    from taskneurons.bench.table6 import tn_formulas
    from taskneurons.datasets import paper_table5

    try:
        table = paper_table5()
    except DataError:
        pytest.skip("the paper's tables (../shared/paper) are not available")
    protocol = resolve_protocol({**TINY, "tn_formula": "paper"})
    found = tn_formulas([DatasetSpec("california", "regression", 1)], protocol)
    expected = table.set_index("dataset").loc["california", "formula"]
    assert found["california"] == (Formula(expected).to_dict(), "paper")
    assert tn_formulas([DatasetSpec("quad", "regression", 1)], resolve_protocol(TINY)) == {"quad": None}
    with pytest.raises(DataError, match="has no formula for quad"):
        tn_formulas([DatasetSpec("quad", "regression", 1)], protocol)


@pytest.mark.parametrize(("change", "match"), [
    ({"tn": {"basiss": "terms"}}, r"unknown estimator argument\(s\) \['basiss'\]"),
    ({"tn": {"formula": "x**2"}}, "chosen by tn_formula"),
    ({"estimator": {"random_state": 1}}, "cannot set \\['random_state'\\]"),
    ({"ln": {"formula": "x**2"}}, "LN networks are linear-neuron networks"),
    ({"tn": {"batch_size": 0}}, "TN network settings are invalid: batch_size"),
    ({"tn_formula": "y**2"}, "tn_formula must be 'vsr', 'paper' or a formula"),
    ({"tn_formula": 3}, "tn_formula must be"),
    # checked by the functions fit builds them with (training.make_optimizer, nn.make_activation, resolve_device)
    ({"tn": {"optimizer": "foo"}}, "TN network settings are invalid: unknown optimizer 'foo'"),
    ({"tn": {"activation": "foo"}}, "TN network settings are invalid: unknown activation 'foo'"),
    ({"estimator": {"device": "nodevice"}}, "LN network settings are invalid: device='nodevice' is not a device"),
])
def test_bad_network_settings_are_refused_before_any_work(data_dir, tmp_path, change, match):
    with pytest.raises(DataError, match=match):
        run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=1, protocol={**TINY, **change}, out=tmp_path)
    assert not (tmp_path / "results.jsonl").exists()


def test_reuse_of_a_folder_without_results_is_refused(data_dir, tmp_path):
    with pytest.raises(DataError, match="nothing to reuse"):
        run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=1, protocol=TINY, out=tmp_path / "out",
                   reuse=tmp_path)
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_command_line_tn_settings():
    from taskneurons.cli import _tn_protocol

    assert _tn_protocol("fast", None, "vsr") == "fast"
    variant = _tn_protocol("paper", ["basis=terms", "patience=20", "add_linear_term=false", "input_clip=null",
                                     "early_stopping=True", "weight_decay=None", "activation=tanh"], "x**2")
    assert variant == {"name": "paper", "base": "paper", "tn_formula": "x**2",
                       "tn": {"basis": "terms", "patience": 20, "add_linear_term": False, "input_clip": None,
                              "early_stopping": True, "weight_decay": None, "activation": "tanh"}}
    assert resolve_protocol(variant)["estimator"]["batch_size"] == 10  # the paper protocol underneath
    with pytest.raises(DataError, match="is not KEY=VALUE"):
        _tn_protocol("fast", ["basis"], "vsr")


def test_a_cuda_device_without_cuda_is_refused_before_any_work(data_dir, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DataError, match="TN network settings are invalid: device='cuda' was requested but CUDA"):
        run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=1, protocol={**TINY, "tn": {"device": "cuda"}},
                   out=tmp_path)
    assert not (tmp_path / "results.jsonl").exists()


def test_command_line_tn_errors_exit_2(data_dir, tmp_path, capsys):
    code = main(["bench", "table6", "--data-dir", str(data_dir), "--out", str(tmp_path), "--tn", "basis",
                 "--quiet"])
    assert code == 2 and "--tn 'basis' is not KEY=VALUE" in capsys.readouterr().err
    code = main(["bench", "table6", "--data-dir", str(data_dir), "--out", str(tmp_path), "--tn", "basiss=terms",
                 "--quiet"])
    assert code == 2 and "unknown estimator argument(s) ['basiss']" in capsys.readouterr().err
    assert not (tmp_path / "results.jsonl").exists()


# -- arguments and statistics ------------------------------------------------------------------
def test_protocols_and_structures_resolve():
    fast = resolve_protocol("fast")
    tiny = resolve_protocol(TINY)
    assert tiny["estimator"]["max_epochs"] == 3 and tiny["estimator"]["optimizer"] == fast["estimator"]["optimizer"]
    assert resolve_protocol("paper")["estimator"]["batch_size"] == 10
    # a dict named after a built-in protocol is a variant of it, not of "fast"
    variant = resolve_protocol({"name": "paper", "tn": {"basis": "terms"}})
    assert variant["estimator"] == resolve_protocol("paper")["estimator"] and variant["tn"]["basis"] == "terms"
    assert resolve_structures(["S4", "S1"]) == {"S4": STRUCTURES["S4"], "S1": STRUCTURES["S1"]}
    with pytest.raises(DataError, match="unknown protocol"):
        resolve_protocol("slow")
    with pytest.raises(DataError, match="needs a 'name'"):
        resolve_protocol({"estimator": {}})
    with pytest.raises(DataError, match="unknown structure"):
        resolve_structures(["S9"])


def test_missing_dataset_fails_before_any_work(data_dir, tmp_path):
    with pytest.raises(DataError, match="nosuch"):
        run_table6(data_dir=data_dir, datasets=["nosuch"], out=tmp_path, protocol=TINY)
    assert not (tmp_path / "results.jsonl").exists()


def _record(model, seed, value, structure="S1", metric="mse", dataset="california"):
    return {"dataset": dataset, "model": model, "structure": structure, "seed": seed, "protocol": "fast",
            "status": "ok", "task": "regression" if metric == "mse" else "binary", "metric": metric,
            "test_value": value, "n_parameters": 10 if model == "LN" else 9, "hidden_used": [4]}


def test_win_tie_loss_definitions():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, size=8)
    records = []
    for s in range(8):
        records += [_record("LN", s, 0.5 + noise[s], "S1"), _record("TN", s, 0.4 + noise[s] + 0.001 * s, "S1"),
                    _record("LN", s, 0.5, "S2"), _record("TN", s, 0.5 + noise[s], "S2"),
                    _record("LN", s, 0.4, "S3"), _record("TN", s, 0.41 + abs(noise[s]) / 10, "S3")]
    summary = table6_summary(pd.DataFrame(records))
    outcome = dict(zip(summary["structure"], summary["outcome"], strict=True))
    assert outcome == {"S1": "win", "S2": "tie", "S3": "loss"}
    counts = outcome_counts(summary)
    assert (counts["win"], counts["tie"], counts["loss"], counts["pairs"]) == (1, 1, 1, 3)
    assert counts["tn_ge"] == 1 + int(summary.loc[1, "diff"] >= 0)  # strict: S1, and S2 if TN's mean is lower
    assert summary.loc[0, "ln_params"] == "10" and summary.loc[0, "tn_params"] == "9"
    assert math.isnan(summary.loc[0, "paper_ln_mean"])


def test_rows_with_a_seed_one_model_lacks_describe_the_shared_seeds(tmp_path):
    # TN's seed 4 failed: LN's good seed 4 must not make the shown LN mean disagree with Δ.
    ln, tn = [0.10, 0.11, 0.12, 0.13, 0.01], [0.095, 0.105, 0.115, 0.125]
    records = [_record("LN", s, v) for s, v in enumerate(ln)] + [_record("TN", s, v) for s, v in enumerate(tn)]
    records.append({**_record("TN", 4, None), "status": "error", "error": "VSR cell failed"})
    row = table6_summary(pd.DataFrame(records)).iloc[0]
    assert (row["ln_n"], row["tn_n"], row["n_pairs"]) == (5, 4, 4)
    assert row["ln_mean"] == pytest.approx(np.mean(ln[:4])) and row["tn_mean"] == pytest.approx(np.mean(tn))
    assert row["diff"] == pytest.approx(row["ln_mean"] - row["tn_mean"])
    assert row["rel_diff"] == pytest.approx(row["diff"] / row["ln_mean"]) and row["tn_ge"]
    records = [{"hidden": [4], **r} for r in records]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert ("left out of these rows: california S1 (LN 5, TN 4, both 4; failed cells: see Failed cells)"
            in build_report(tmp_path).read_text())


def test_seeds_merely_missing_are_not_sent_to_failed_cells(tmp_path):
    # A run in progress or interrupted: TN's seed 2 is not computed yet, and nothing failed.
    records = [{"hidden": [4], **_record("LN", s, 0.1 + s / 100)} for s in range(3)]
    records += [{"hidden": [4], **_record("TN", s, 0.09 + s / 100)} for s in range(2)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    text = build_report(tmp_path).read_text()
    assert "california S1 (LN 3, TN 2, both 2; missing: not computed yet)" in text
    assert "see Failed cells" not in text and "## Failed cells" not in text


def test_a_last_record_without_its_newline_is_in_the_report(tmp_path):
    records = [{"hidden": [4], **_record(m, s, 0.1 + s / 100)} for s in range(2) for m in ("LN", "TN")]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in records))  # no final newline
    text = build_report(tmp_path).read_text()
    assert "Built from `results.jsonl`: 4 cells, 0 failed" in text and "left out" not in text


def test_best_structure_against_the_paper():
    records = [_record(m, s, v, st, "accuracy", "phoneme")
               for s in range(4) for st, v in (("S1", 0.84), ("S2", 0.86 + 0.002 * s))
               for m in ("LN", "TN")]
    paper = pd.DataFrame([{"dataset": "phoneme", "structure": "S3", "model": "TN", "mean": 0.8625, "std": 0.01}])
    best = best_structures(table6_summary(pd.DataFrame(records), paper), paper)
    row = best.iloc[0]
    assert row["structure"] == "S2" and row["paper_structure"] == "S3"
    assert row["tn_mean"] == pytest.approx(0.863) and row["outcome"] == "beats"
    paper.loc[0, "mean"] = 0.8635  # below by less than one standard error (0.0013)
    assert best_structures(table6_summary(pd.DataFrame(records), paper), paper).iloc[0]["outcome"] == "matches"


def test_load_results_of_an_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no results"):
        load_results(tmp_path)
    with pytest.raises(DataError, match="no results"):
        build_report(tmp_path)
    with pytest.raises(DataError, match="run `taskneurons bench table5 --out"):
        build_report(tmp_path, command="table5")


def test_a_report_of_the_results_file_goes_into_its_folder(tmp_path):
    records = [{"hidden": [4], **_record(m, s, 0.1 + s / 100)} for s in range(2) for m in ("LN", "TN")]
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert build_report(results) == tmp_path / "report.md"
    assert (tmp_path / "table6_fast_datasets.png").read_bytes().startswith(PNG_MAGIC)
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    with pytest.raises(DataError, match="notes.txt is a file; pass the folder"):
        build_report(other)


def test_an_out_that_is_a_file_is_refused_before_any_work(data_dir, tmp_path):
    afile = tmp_path / "afile.txt"
    afile.write_text("hi")
    with pytest.raises(DataError, match="afile.txt is a file; pass a folder"):
        run_table6(data_dir=data_dir, structures=STRUCTURE, seeds=1, protocol=TINY, out=afile)
    with pytest.raises(DataError, match="afile.txt is a file; pass a folder"):
        run_table5(data_dir=data_dir, protocol=TINY, out=afile)
    assert afile.read_text() == "hi"


# -- the committed run -------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
PAPER_DATA = ROOT.parent / "shared" / "datasets" / "paper"
COMMITTED = ROOT / "docs" / "results" / "table6" / "results.jsonl"


@pytest.mark.skipif(not PAPER_DATA.is_dir(), reason="../shared/datasets/paper missing")
def test_the_committed_table6_run_is_this_codes_grid():
    """Every committed cell has the settings hash this code gives it, so `taskneurons bench table6`
    into docs/results/table6 resumes (computes nothing) instead of refusing stale settings."""
    from taskneurons.bench.runner import resolve_datasets
    from taskneurons.bench.table6 import available_boosting, table6_cells, tn_formulas

    protocol = resolve_protocol("fast")
    specs = resolve_datasets(str(PAPER_DATA.resolve()), None)
    models = available_boosting(True, protocol)  # XGBoost / LightGBM cells only where installed
    first, second = table6_cells(specs, resolve_structures(None), range(10), protocol, models,
                                 str(PAPER_DATA.resolve()), tn_formulas(specs, protocol))
    expected = {cell.key: cell.settings_hash for cell in (*first, *second)}
    stored = {(r["dataset"], r["model"], r["structure"], r["seed"], r["protocol"]): r["settings_hash"]
              for r in _lines(COMMITTED)}
    assert len(stored) == 1960
    assert {key: stored.get(key) for key in expected} == expected
    assert {key[1] for key in stored.keys() - expected.keys()} <= {"XGBoost", "LightGBM"} - set(models)
