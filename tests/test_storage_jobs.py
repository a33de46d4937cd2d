import pytest

from market.storage import LocalStorage


def test_local_storage_stages_commits_and_refuses_escapes(tmp_path):
    st = LocalStorage(tmp_path)
    staging = st.staging_path("datasets/1/v1.parquet")
    assert staging.name.startswith(".partial-") and staging.parent == tmp_path / "datasets" / "1"
    staging.write_bytes(b"PAR1")
    final = st.commit(staging, "datasets/1/v1.parquet")
    assert final.read_bytes() == b"PAR1" and not staging.exists() and st.exists("datasets/1/v1.parquet")
    other = st.staging_path("datasets/1/v2.parquet")
    other.write_bytes(b"x")
    st.discard(other)
    assert not other.exists()
    st.delete("datasets/1/v1.parquet")
    assert not st.exists("datasets/1/v1.parquet")
    with pytest.raises(ValueError):
        st.local_path("../../etc/passwd")


calls = []


def record_call(x):
    calls.append(x)


def test_thread_runner_runs_in_its_own_app_context(app):
    from market.jobs import ThreadRunner

    runner = ThreadRunner(app, workers=1)
    runner.submit("tests.test_storage_jobs.record_call", 42).result(timeout=10)
    assert calls[-1] == 42
