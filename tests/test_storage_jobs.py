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


def test_discarding_the_last_file_removes_the_empty_dataset_folder(tmp_path):
    """#14.9: a failed upload leaves no empty datasets/<id>/ behind."""
    st = LocalStorage(tmp_path)
    staging = st.staging_path("datasets/7/v1.parquet")
    staging.write_bytes(b"partial")
    st.discard(staging)
    assert not (tmp_path / "datasets" / "7").exists()
    kept = st.staging_path("datasets/8/v1.parquet")
    kept.write_bytes(b"PAR1")
    st.commit(kept, "datasets/8/v1.parquet")
    other = st.staging_path("datasets/8/v2.parquet")
    st.discard(other)
    assert st.exists("datasets/8/v1.parquet")  # a folder with a version in it stays
    uploads = st.staging_path("uploads/upload.csv")
    st.discard(uploads)
    assert (tmp_path / "uploads").is_dir()  # only dataset folders are pruned


def test_purge_deletes_a_partial_output_and_the_pipeline_temp_files(tmp_path):
    st = LocalStorage(tmp_path)
    staging = st.staging_path("datasets/3/v2.parquet")
    staging.write_bytes(b"partial")
    temp = staging.parent / f".{staging.name}.x1y2z3.part"
    temp.write_bytes(b"partial temp")
    key = staging.relative_to(tmp_path).as_posix()
    assert st.purge(key) == 2
    assert not staging.exists() and not temp.exists() and not staging.parent.exists()
    assert st.purge(key) == 0  # idempotent


def test_sweep_staging_spares_protected_and_recent_files(tmp_path):
    import datetime as dt
    import os
    import time

    st = LocalStorage(tmp_path)
    old_upload = st.staging_path("uploads/upload.csv")
    protected = st.staging_path("uploads/upload.csv")
    recent = st.staging_path("uploads/upload.csv")
    out = st.staging_path("datasets/5/v1.parquet")
    out_temp = out.parent / f".{out.name}.abc.part"
    final = st.staging_path("datasets/5/v0.parquet")
    for p in (old_upload, protected, recent, out, out_temp, final):
        p.write_bytes(b"x")
    st.commit(final, "datasets/5/v0.parquet")
    old = time.time() - 3600
    for p in (old_upload, protected, out, out_temp, tmp_path / "datasets/5/v0.parquet"):
        os.utime(p, (old, old))
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    keep = {out.relative_to(tmp_path).as_posix(), protected.relative_to(tmp_path).as_posix()}
    assert st.sweep_staging(protected=keep, older_than=cutoff) == 1
    assert not old_upload.exists()
    assert protected.exists() and recent.exists() and out.exists() and out_temp.exists()
    assert st.exists("datasets/5/v0.parquet")  # a published file is never touched
    assert st.sweep_staging(protected=set(), older_than=cutoff) == 3
