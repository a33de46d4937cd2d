"""Where desensitized Parquet files live.

One small interface, so that object storage (S3-compatible) can replace the local folder
without touching the pipeline or the sandbox. Keys are relative POSIX paths such as
``datasets/7/v2.parquet``; they never come from user input.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Protocol

from flask import current_app


class Storage(Protocol):
    def staging_path(self, key: str) -> Path:
        """A fresh temporary file next to ``key``'s final place (same file system)."""

    def commit(self, staging: Path, key: str) -> Path:
        """Atomically move a finished staging file to ``key``; returns its local path."""

    def discard(self, staging: Path) -> None:
        """Remove a staging file after a failure (no error if it is gone)."""

    def local_path(self, key: str) -> Path:
        """A local path the sandbox engine can read."""

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


class LocalStorage:
    """Files under ``MARKET_DATA_DIR``. Staging files start with ``.partial-``."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _resolve(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError("storage key escapes the data folder")
        return path

    def staging_path(self, key: str) -> Path:
        final = self._resolve(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.parent / f".partial-{uuid.uuid4().hex}-{final.name}"

    def commit(self, staging: Path, key: str) -> Path:
        final = self._resolve(key)
        os.replace(staging, final)
        return final

    def discard(self, staging: Path) -> None:
        staging.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path:
        return self._resolve(key)

    def delete(self, key: str) -> None:
        self._resolve(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._resolve(key).exists()


def storage() -> Storage:
    """The app's storage (``MARKET_STORAGE=local`` is the only backend today)."""
    ext = current_app.extensions
    if "market.storage" not in ext:
        ext["market.storage"] = LocalStorage(current_app.config["MARKET_DATA_DIR"])
    return ext["market.storage"]
