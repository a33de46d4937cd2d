"""Sealed staging files (#14.1): what a crash leaves of an upload is unreadable ciphertext."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.pipeline import sealed
from market.pipeline.sealed import SealedFile, SealedFileError, SealedReader, SealedWriter, new_key

PII = "张伟,110101199003077777,13912345678\n".encode()


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(sealed, "CHUNK", 64)


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 1000])
def test_round_trip_and_random_access(tmp_path, small_chunks, size):
    data = (PII * (size // len(PII) + 1))[:size]
    key = new_key()
    with SealedWriter(tmp_path / "f", key) as w:
        for i in range(0, size, 7):
            w.write(data[i:i + 7])
    assert SealedFile(tmp_path / "f", key).size == size
    with SealedFile(tmp_path / "f", key).open() as r:
        assert r.read() == data
        for pos in (0, size // 2, max(0, size - 3)):
            r.seek(pos)
            assert r.read(5) == data[pos:pos + 5]
        if size:
            assert r.seek(-1, io.SEEK_END) == size - 1 and r.read() == data[-1:]


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=400))
def test_round_trip_property(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("sealed") / "f"
    key = new_key()
    old, sealed.CHUNK = sealed.CHUNK, 32
    try:
        with SealedWriter(path, key) as w:
            w.write(data)
        with SealedFile(path, key).open() as r:
            assert r.read() == data
    finally:
        sealed.CHUNK = old


def test_the_file_on_disk_holds_no_plaintext(tmp_path):
    key = new_key()
    with SealedWriter(tmp_path / "f", key) as w:
        w.write(PII * 5000)
    raw = (tmp_path / "f").read_bytes()
    assert b"110101199003077777" not in raw and "张伟".encode() not in raw


def test_a_wrong_key_truncation_or_reordering_is_refused(tmp_path, small_chunks):
    key = new_key()
    path = tmp_path / "f"
    with SealedWriter(path, key) as w:
        w.write(PII * 10)
    with pytest.raises(SealedFileError), SealedFile(path, new_key()).open() as r:
        r.read()
    whole = path.read_bytes()
    path.write_bytes(whole[: sealed.HEADER + 2 * (64 + sealed.TAG)])  # the last chunks dropped
    with pytest.raises(SealedFileError), SealedFile(path, key).open() as r:
        r.read()
    header, body = whole[: sealed.HEADER], whole[sealed.HEADER:]
    first, second = body[: 64 + sealed.TAG], body[64 + sealed.TAG: 2 * (64 + sealed.TAG)]
    path.write_bytes(header + second + first + body[2 * (64 + sealed.TAG):])
    with pytest.raises(SealedFileError), SealedReader(path, key) as r:
        r.read()


def test_werkzeug_style_seek_zero_completes_the_file(tmp_path):
    key = new_key()
    w = SealedWriter(tmp_path / "f", key)
    w.write(PII)
    assert w.seek(0) == 0
    with pytest.raises(ValueError):
        w.write(b"more")
    w.close()
    with SealedFile(tmp_path / "f", key).open() as r:
        assert r.read() == PII
