"""Staging files whose plaintext never touches the disk: chunked AES-256-GCM.

A raw upload is written to its staging file encrypted with a fresh random key that lives only
in the memory of the process that received it. If that process dies (``kill -9``, power cut),
the key dies with it and what is left on disk is unreadable ciphertext, which the lease sweeper
then deletes.

Layout: a 16-byte header (``MAGIC`` + 8-byte random nonce prefix), then chunks of ``CHUNK``
plaintext bytes, each sealed separately (``CHUNK + 16`` bytes on disk, the last one shorter).
The nonce of chunk *i* is the prefix followed by *i* (4 bytes, big-endian); the associated data
is the header, *i* and whether the chunk is the last, so that chunks cannot be reordered,
dropped or truncated unnoticed. Fixed-size chunks give random access: readers seek, which
XLSX (zip) and Parquet need.

Pure: no Flask, no database.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"MKSEAL01"
HEADER = len(MAGIC) + 8
CHUNK = 1 << 20
TAG = 16
_MAX_CHUNKS = 2**32 - 1


class SealedFileError(Exception):
    """The staging file is not a complete sealed file for this key (truncated, tampered)."""


def new_key() -> bytes:
    """A fresh 256-bit key (kept in memory only)."""
    return AESGCM.generate_key(bit_length=256)


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">I?", index, final)


class SealedWriter(io.RawIOBase):
    """Write-only file object that seals ``CHUNK``-sized pieces as they fill up.

    ``close()`` (or ``seek(0)``, which Werkzeug calls when a file part is complete) seals the
    last piece, marked final. Writing after that raises ValueError.
    """

    def __init__(self, path: str | os.PathLike[str], key: bytes):
        super().__init__()
        self.name = str(path)
        self._aes = AESGCM(key)
        self._header = MAGIC + os.urandom(8)
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(self._header)
        self._buffer = bytearray()
        self._index = 0
        self._final = False
        self.size = 0

    def writable(self) -> bool:
        return True

    def _seal(self, data: bytes, final: bool) -> None:
        if self._index >= _MAX_CHUNKS:
            raise ValueError("the sealed file is too large")
        nonce = self._header[len(MAGIC):] + struct.pack(">I", self._index)
        self._file.write(self._aes.encrypt(nonce, data, _aad(self._header, self._index, final)))
        self._index += 1

    def write(self, data) -> int:  # noqa: ANN001 - bytes-like
        if self._final:
            raise ValueError("the sealed file is already complete")
        view = memoryview(data).cast("B")
        self._buffer += view
        self.size += len(view)
        # Keep at least one byte (or an empty final chunk) for finish(): the last chunk is
        # the one marked final.
        while len(self._buffer) > CHUNK:
            self._seal(bytes(self._buffer[:CHUNK]), final=False)
            del self._buffer[:CHUNK]
        return len(view)

    def finish(self) -> None:
        """Seal what is buffered as the final chunk (idempotent)."""
        if self._final:
            return
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()
        self._final = True
        self._file.flush()

    def flush(self) -> None:  # nothing partial can be flushed: chunks have a fixed size
        if not self.closed and not self._file.closed:
            self._file.flush()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if offset == 0 and whence == io.SEEK_SET:
            self.finish()
            return 0
        raise io.UnsupportedOperation("a sealed writer only seeks to 0 (to finish)")

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.finish()
        finally:
            self._file.close()
            super().close()


class SealedReader(io.RawIOBase):
    """Seekable read-only view of the plaintext of a sealed file (one chunk decrypted at a
    time). Raises SealedFileError on a wrong key, tampering or truncation."""

    def __init__(self, path: str | os.PathLike[str], key: bytes):
        super().__init__()
        self.name = str(path)
        self._aes = AESGCM(key)
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            self._header = self._file.read(HEADER)
            if len(self._header) != HEADER or not self._header.startswith(MAGIC):
                raise SealedFileError("not a sealed staging file")
            body = os.fstat(self._file.fileno()).st_size - HEADER
            self._chunks = max(1, -(-body // (CHUNK + TAG)))
            self.size = body - self._chunks * TAG
            if self.size < 0:
                raise SealedFileError("the sealed staging file is truncated")
        except BaseException:
            self._file.close()
            raise
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def _chunk(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        self._file.seek(HEADER + index * (CHUNK + TAG))
        sealed = self._file.read(CHUNK + TAG)
        nonce = self._header[len(MAGIC):] + struct.pack(">I", index)
        final = index == self._chunks - 1
        try:
            plain = self._aes.decrypt(nonce, sealed, _aad(self._header, index, final))
        except InvalidTag:
            raise SealedFileError("the sealed staging file is damaged or incomplete") from None
        self._cached = (index, plain)
        return plain

    def readinto(self, buffer) -> int:  # noqa: ANN001 - writable buffer
        out = memoryview(buffer).cast("B")
        if self._pos >= self.size or len(out) == 0:
            return 0
        index, start = divmod(self._pos, CHUNK)
        plain = self._chunk(index)
        n = min(len(out), len(plain) - start)
        out[:n] = plain[start:start + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self._cached = None
            super().close()


@dataclass(frozen=True)
class SealedFile:
    """A sealed staging file and its in-memory key: what readers open instead of a path."""

    path: Path
    key: bytes = field(repr=False)

    def open(self) -> BinaryIO:
        return io.BufferedReader(SealedReader(self.path, self.key), buffer_size=1 << 16)

    @property
    def size(self) -> int:
        with SealedReader(self.path, self.key) as reader:
            return reader.size


#: What the readers accept: a plain path (already desensitized or test data) or a sealed file.
InputFile = str | os.PathLike[str] | SealedFile


def open_input(source: InputFile) -> BinaryIO:
    """A binary, seekable file object on ``source``'s plaintext."""
    if isinstance(source, SealedFile):
        return source.open()
    return open(source, "rb")  # noqa: SIM115 - the caller closes it


def input_size(source: InputFile) -> int:
    """Plaintext size in bytes."""
    if isinstance(source, SealedFile):
        return source.size
    return Path(source).stat().st_size
