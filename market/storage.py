"""Where desensitized Parquet files live.

One small interface, so that object storage (S3-compatible) can replace the local folder
without touching the pipeline or the sandbox. Keys are relative POSIX paths such as
``datasets/7/v2.parquet``; they never come from user input.
"""

from __future__ import annotations

import datetime as dt
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

    def purge(self, key: str) -> int:
        """Delete ``key``, its temp files and its folder if left empty; returns files deleted."""

    def sweep_staging(self, *, protected: set[str], older_than: dt.datetime) -> int:
        """Delete staging files not in ``protected`` last written before ``older_than``."""


#: Folders whose emptiness means nothing is left of a dataset: ``datasets/<id>/``.
_PRUNABLE = "datasets"


class LocalStorage:
    """Files under ``MARKET_DATA_DIR``. Staging files start with ``.partial-``; the pipeline's
    own temp files next to a staging output are ``.<staging name>.<random>.part``."""

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
        self._prune(staging.parent)

    def _prune(self, folder: Path) -> None:
        """Remove ``datasets/<id>/`` if it is empty (a failed upload leaves nothing behind).

        A concurrent job of the same dataset re-creates it (``mkdir`` before each write)."""
        try:
            folder = folder.resolve()
            if folder.parent == self.root / _PRUNABLE and folder.is_dir():
                folder.rmdir()
        except OSError:
            pass  # not empty, or already gone

    def local_path(self, key: str) -> Path:
        return self._resolve(key)

    def delete(self, key: str) -> None:
        path = self._resolve(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def purge(self, key: str) -> int:
        path = self._resolve(key)
        victims = [path]
        if path.parent.is_dir():
            victims += list(path.parent.glob(f".{path.name}.*.part"))
        deleted = 0
        for victim in victims:
            try:
                victim.unlink()
                deleted += 1
            except FileNotFoundError:
                pass
        self._prune(path.parent)
        return deleted

    def sweep_staging(self, *, protected: set[str], older_than: dt.datetime) -> int:
        keep = {self._resolve(k) for k in protected}
        cutoff = older_than.timestamp()
        deleted = 0
        folders = [self.root / "uploads"]
        datasets = self.root / _PRUNABLE
        if datasets.is_dir():
            folders += [d for d in datasets.iterdir() if d.is_dir()]
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if not path.name.startswith((".partial-", "..partial-")):
                    continue
                owner = path
                if path.name.startswith("..partial-"):  # .<staging name>.<random>.part
                    owner = path.with_name(path.name[1:].removesuffix(".part").rsplit(".", 1)[0])
                if path in keep or owner in keep:
                    continue
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        deleted += 1
                except FileNotFoundError:
                    continue
            # A folder made a moment ago may be about to receive a job's output: only old ones.
            try:
                stale = folder.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue
            if folder != self.root / "uploads" and stale:
                self._prune(folder)
        return deleted

    def exists(self, key: str) -> bool:
        return self._resolve(key).exists()


def storage() -> Storage:
    """The app's storage (``MARKET_STORAGE=local`` is the only backend today)."""
    ext = current_app.extensions
    if "market.storage" not in ext:
        ext["market.storage"] = LocalStorage(current_app.config["MARKET_DATA_DIR"])
    return ext["market.storage"]
