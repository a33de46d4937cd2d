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
