"""Issue 14, item 2: a background job hands the memory it freed back to the system when it
ends, whether it succeeded or failed (bench/upload_rss.py measures the effect)."""

from __future__ import annotations

import pytest


def _ok() -> str:
    return "done"


def _fails() -> None:
    raise RuntimeError("the job failed")


@pytest.mark.parametrize(("job", "fails"), [("_ok", False), ("_fails", True)])
def test_a_job_releases_memory_when_it_ends(app, monkeypatch, job, fails):
    from market import jobs

    calls = []
    monkeypatch.setattr(jobs, "release_memory", lambda: calls.append("released"))
    runner = jobs.ThreadRunner(app, workers=1)
    future = runner.submit(f"{__name__}.{job}")
    if fails:
        with pytest.raises(RuntimeError):
            future.result(timeout=30)
    else:
        assert future.result(timeout=30) is None
    runner.pool.shutdown(wait=True)
    assert calls == ["released"]


def test_release_memory_never_raises():
    from market.jobs import release_memory

    release_memory()  # pyarrow's pool and glibc's malloc_trim, both best effort


# -------------------------------------------------- recycling waits for running jobs


#: Events a test job waits on (the job is resolved by its dotted name, like a real one).
EVENTS: dict = {}


def _wait_for(event_name: str) -> None:
    EVENTS[event_name].wait(timeout=30)


def test_running_jobs_counts_queued_and_running_jobs(app):
    import threading

    from market import jobs

    EVENTS["go"] = threading.Event()
    runner = jobs.ThreadRunner(app, workers=1)
    before = jobs.running_jobs()
    first = runner.submit(f"{__name__}._wait_for", "go")
    second = runner.submit(f"{__name__}._wait_for", "go")  # queued behind the first
    assert jobs.running_jobs() == before + 2
    EVENTS["go"].set()
    first.result(timeout=30)
    second.result(timeout=30)
    runner.pool.shutdown(wait=True)
    assert jobs.running_jobs() == before


def _load_gunicorn_conf():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("market_gunicorn_conf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Worker:
    def __init__(self, nr: int, max_requests: int):
        self.nr, self.max_requests = nr, max_requests


@pytest.mark.parametrize(
    ("nr", "jobs_running", "expected_nr"),
    [
        (5, 1, 5),  # not due: untouched
        (9, 0, 9),  # due, no job: gunicorn recycles it after this request
        (9, 1, 8),  # due, a job runs: kept (after gunicorn's += 1, still below the limit)
        (12, 2, 8),
    ],
)
def test_a_worker_due_for_recycling_is_kept_while_a_job_runs(
    monkeypatch, nr, jobs_running, expected_nr
):
    from market import jobs

    conf = _load_gunicorn_conf()
    monkeypatch.setattr(jobs, "running_jobs", lambda: jobs_running)
    worker = _Worker(nr, max_requests=10)
    conf.pre_request(worker, None)
    assert worker.nr == expected_nr
    assert (worker.nr + 1 >= worker.max_requests) is (jobs_running == 0 and nr + 1 >= 10)
