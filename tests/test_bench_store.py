"""Result store (resume, torn lines, locking) and executors (local, pool, Ray) give the same cells."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

from taskneurons.bench.executors import run_cells, single_threaded
from taskneurons.bench.store import ResultStore, cell_key
from taskneurons.errors import DataError, TaskNeuronsError, WorkerError


def _record(i, **extra):
    return {"dataset": "d", "model": "TN", "structure": "S1", "seed": i, "protocol": "fast", **extra}


def test_add_skip_and_reload(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultStore(path) as store:
        assert store.add(_record(0, metric=0.5))
        assert not store.add(_record(0, metric=0.9))  # same key: never written twice
        assert store.add(_record(1, metric=float("nan")))  # NaN stored as null, line stays JSON
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["metric"] is None
    with ResultStore(path) as store:
        assert len(store) == 2
        assert cell_key(_record(0)) in store
        assert store.get(cell_key(_record(0)))["metric"] == 0.5
        assert store.missing([cell_key(_record(i)) for i in range(3)]) == [cell_key(_record(2))]


def test_torn_last_line_is_dropped_and_appends_stay_clean(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultStore(path) as store:
        store.add(_record(0))
        store.add(_record(1))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"dataset": "d", "model": "TN", "struc')  # killed mid-write
    with ResultStore(path) as store:
        assert store.dropped_torn_line
        assert len(store) == 2
        store.add(_record(2))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["seed"] for r in records] == [0, 1, 2]


def test_complete_but_garbled_last_line_is_dropped(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_record(0)) + "\n" + '{"broken": \n')
    with pytest.warns(UserWarning, match="skipping a damaged line"), ResultStore(path) as store:
        assert len(store) == 1
        store.add(_record(1))
    with pytest.warns(UserWarning, match="skipping 1 damaged line"):
        assert len(ResultStore.read(path)) == 2


def test_a_complete_last_record_without_its_newline_is_kept(tmp_path):
    """An editor that strips the final newline leaves a whole record: it is read (report, --reuse) and
    kept by the next run, which only ends its line; a torn line is never a whole JSON record."""
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_record(0)) + "\n" + json.dumps(_record(1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is skipped, so nothing to warn about
        assert [r["seed"] for r in ResultStore.read(path)] == [0, 1]
        with ResultStore(path) as store:
            assert not store.dropped_torn_line
            assert len(store) == 2
            store.add(_record(2))
    assert [json.loads(line)["seed"] for line in path.read_text().splitlines()] == [0, 1, 2]


def test_reading_warns_about_the_lines_it_skips(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_record(0)) + "\n" + "{oops\n" + json.dumps(_record(1)) + "\n" + '{"dataset": "d", "mo')
    with pytest.warns(UserWarning) as caught:
        records = ResultStore.read(path)
    assert [r["seed"] for r in records] == [0, 1]
    messages = [str(w.message) for w in caught]
    assert any("skipping 1 damaged line(s)" in m for m in messages)
    assert any("skipping an unfinished last line" in m for m in messages)


def test_lines_that_are_not_result_objects_are_skipped_as_damaged(tmp_path):
    path = tmp_path / "results.jsonl"
    good = json.dumps(_record(0)) + "\n"
    path.write_text("[1, 2]\n" + good + "{}\n" + '"text"\n' + json.dumps(_record(1)) + "\n")
    with pytest.warns(UserWarning, match="skipping 3 damaged line"):
        assert len(ResultStore.read(path)) == 2
    with pytest.warns(UserWarning, match="skipping a damaged line"):
        with ResultStore(path) as store:
            assert len(store) == 2


def test_duplicate_lines_read_once(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_record(0, metric=1)) + "\n" + json.dumps(_record(0, metric=2)) + "\n")
    assert [r["metric"] for r in ResultStore.read(path)] == [1]


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultStore(path):
        with pytest.raises(DataError, match="another run is writing"):
            ResultStore(path).open()


def test_record_without_key_fields_is_refused(tmp_path):
    with ResultStore(tmp_path / "r.jsonl") as store:
        with pytest.raises(DataError, match="lacks the key field 'seed'"):
            store.add({"dataset": "d", "model": "m", "structure": "s", "protocol": "p"})


def test_killed_writer_keeps_every_finished_line(tmp_path):
    path = tmp_path / "results.jsonl"
    script = textwrap.dedent(f"""
        import os, signal
        from taskneurons.bench.store import ResultStore
        with ResultStore({str(path)!r}) as store:
            for i in range(5):
                store.add({{"dataset": "d", "model": "TN", "structure": "S1", "seed": i, "protocol": "fast"}})
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -9
    with ResultStore(path) as store:  # the lock died with the process
        assert sorted(r["seed"] for r in store) == [0, 1, 2, 3, 4]


def _square(payload):
    with single_threaded():
        return {"i": payload, "value": payload * payload, "pid": os.getpid()}


@pytest.mark.parametrize(("executor", "n_jobs"), [("local", 1), ("local", 2)])
def test_local_executors_give_the_same_results(executor, n_jobs):
    results = []
    run_cells(list(range(6)), _square, on_result=results.append, executor=executor, n_jobs=n_jobs)
    assert sorted((r["i"], r["value"]) for r in results) == [(i, i * i) for i in range(6)]
    if n_jobs > 1:
        assert all(r["pid"] != os.getpid() for r in results)


def test_ray_executor_matches_local():
    pytest.importorskip("ray")
    local, remote = [], []
    # Ray workers import the function by module name: use one any worker can import.
    run_cells(list(range(8)), math.factorial, on_result=local.append)
    run_cells(list(range(8)), math.factorial, on_result=remote.append, executor="ray", n_jobs=2)
    assert sorted(local) == sorted(remote) == sorted(math.factorial(i) for i in range(8))


def test_a_worker_that_dies_is_reported_with_what_to_do():
    from taskneurons.errors import WorkerError

    # os._exit ends the worker process at once, as the out-of-memory killer would.
    with pytest.raises(WorkerError, match="worker process died.*run the same command again to resume"):
        run_cells([3, 3], os._exit, on_result=print, n_jobs=2)


def _state_and_parent(pid):
    """``(state, parent pid)`` of a process from /proc, or None when it no longer exists."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state, ppid = fh.read().rsplit(")", 1)[1].split()[:2]
    except OSError:
        return None
    return state, int(ppid)


def _alive(pid):
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z"  # a zombie has ended


def _live_pool_workers(parent_pid):
    """PIDs of the live process-pool workers (spawned by multiprocessing) whose parent is ``parent_pid``."""
    workers = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        found = _state_and_parent(entry)
        if found is None or found[1] != parent_pid or found[0] == "Z":
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if b"spawn_main" in fh.read():
                    workers.append(int(entry))
        except OSError:  # ended while we looked
            continue
    return workers


def _watching(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task")) >= 2
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_pool_workers_end_when_the_coordinator_is_killed():
    # Each cell would sleep 10 minutes: only the parent watch can end the workers within the test.
    script = ("import time\nfrom taskneurons.bench.executors import run_cells\n"
              "run_cells([600, 600, 600], time.sleep, on_result=print, n_jobs=2)\n")
    coordinator = subprocess.Popen([sys.executable, "-c", script])
    workers = []
    try:
        deadline = time.monotonic() + 120
        # Wait until both workers run their watch thread (2 threads each), so that the kill below
        # tests the watch rather than a worker still starting up.
        while time.monotonic() < deadline and (len(workers) < 2 or not all(map(_watching, workers))):
            assert coordinator.poll() is None, "the coordinator ended before it could be killed"
            time.sleep(0.2)
            workers = _live_pool_workers(coordinator.pid)
        assert len(workers) == 2 and all(map(_watching, workers)), \
            "the pool's two workers did not start, each with its parent-watch thread"
        coordinator.kill()
        coordinator.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "pool workers outlived their killed coordinator"
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, 9)


def test_bad_executor_arguments():
    with pytest.raises(TaskNeuronsError, match="unknown executor 'dask'"):
        run_cells([1], _square, on_result=print, executor="dask")
    with pytest.raises(TaskNeuronsError, match="n_jobs must be a positive integer"):
        run_cells([1], _square, on_result=print, n_jobs=0)


def test_an_unreachable_ray_address_is_refused_in_seconds():
    pytest.importorskip("ray")
    import socket

    from taskneurons.bench.executors import ray_session

    with socket.socket() as probe:  # a port nobody listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(DataError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        with ray_session(1, f"127.0.0.1:{port}"):
            pass
    assert time.perf_counter() - start < 15  # Ray itself retried without end


def test_a_crashed_ray_worker_is_a_worker_error():
    pytest.importorskip("ray")
    with pytest.raises(WorkerError, match="Ray worker or node died"):
        run_cells([0], os._exit, on_result=lambda _: None, executor="ray", n_jobs=1)
