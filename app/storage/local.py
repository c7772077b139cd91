"""Storage on a local (or mounted) filesystem: one file per key under a root directory."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from app.storage.base import Storage, StorageError, StorageKeyNotFound, validate_key

__all__ = ["LocalStorage"]

# Temporary files are written beside their target so that os.replace stays a same-filesystem
# rename; the name marks them so listings never report a half-written object.
_TMP_PREFIX = ".samdsk-tmp-"


class LocalStorage(Storage):
    """Keys map to files under ``root``; writes are atomic (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create storage directory {self.root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        # validate_key rules out '..', absolute keys and empty parts, so the path stays
        # under root.
        return self.root.joinpath(*validate_key(key).split("/"))

    def put_at(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX)
        except OSError as exc:
            raise StorageError(f"cannot write {key!r} under {self.root}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as tmp:
                # mkstemp creates 0600; stored objects are ordinary readable files.
                os.fchmod(tmp.fileno(), 0o644)
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write {key!r} under {self.root}: {exc}") from exc
            raise
        _fsync_dir(path.parent)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise StorageKeyNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key!r} under {self.root}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            # Absent (or only a directory of other keys): nothing stored under this key.
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r} under {self.root}: {exc}") from exc

    def list_keys(self, prefix: str = "") -> list[str]:
        # Walk only the directory that the prefix's complete parts name.
        base = prefix.rpartition("/")[0]
        start = self._path(base) if base else self.root
        if not self.root.is_dir():
            raise StorageError(f"local storage root {self.root} is not a directory")
        keys: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            if not path.is_file():
                raise StorageKeyNotFound(key)
            return path.stat().st_size
        except FileNotFoundError as exc:
            raise StorageKeyNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"cannot stat {key!r} under {self.root}: {exc}") from exc

    def ping(self) -> None:
        # Creating a file is the check that matters: a read-only mount or a missing root
        # would otherwise surface only at the first upload.
        try:
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=_TMP_PREFIX)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StorageError(f"local storage at {self.root} is not writable: {exc}") from exc

    def describe(self) -> str:
        return f"local:{self.root}"


def _fsync_dir(directory: Path) -> None:
    """Persist a rename in ``directory`` (POSIX); best effort where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
