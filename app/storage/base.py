"""The storage interface: a flat namespace of ``/``-separated keys mapping to bytes.

Two kinds of key live side by side:

- content keys, ``blobs/<sha[:2]>/<sha><suffix>``, written once by :meth:`Storage.put_content`
  and never changed (uploads, masks as received);
- derived keys such as ``thumbnails/<image_id>.png``, written and overwritten by
  :meth:`Storage.put_at` (outputs that a rerun regenerates).

Every backend validates keys with :func:`validate_key`, so a key that one backend accepts is
accepted by all of them, and no key can reach outside the store.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod

from app.errors import InvalidInput, NotFound, ServiceUnavailable

__all__ = [
    "Storage",
    "StorageError",
    "StorageKeyNotFound",
    "content_key",
    "validate_key",
]

# S3's limit on key length (in UTF-8 bytes); the local backend keeps the same rule.
MAX_KEY_BYTES = 1024
# One or more short extensions: ".png", ".nii.gz".
_SUFFIX_RE = re.compile(r"(\.[A-Za-z0-9_-]{1,16}){0,3}")


class StorageError(ServiceUnavailable):
    """The storage backend failed: unreachable, unwritable, or it answered with an error."""

    code = "storage_unavailable"


class StorageKeyNotFound(NotFound):
    """No object is stored under the requested key."""

    code = "storage_key_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under key {key!r}")
        self.key = key


def validate_key(key: object) -> str:
    """Return ``key`` unchanged if it is a safe relative key, else raise :class:`InvalidInput`.

    A key is a non-empty ``/``-separated sequence of non-empty parts, none of them ``.`` or
    ``..``; it has no leading ``/``, no backslash, no NUL or other control character, and is
    at most 1024 bytes in UTF-8.
    """
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"storage key must be a non-empty string, got {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidInput(f"storage key is longer than {MAX_KEY_BYTES} bytes: {key[:64]!r}...")
    if key.startswith("/"):
        raise InvalidInput(f"storage key must be relative, got {key!r}")
    if "\\" in key:
        raise InvalidInput(f"storage key must not contain a backslash, got {key!r}")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in key):
        raise InvalidInput(f"storage key must not contain control characters, got {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InvalidInput(f"storage key has an empty, '.' or '..' part: {key!r}")
    return key


def content_key(data: bytes, suffix: str = "") -> str:
    """Return the content address of ``data``: ``blobs/<sha[:2]>/<sha><suffix>`` (SHA-256 hex)."""
    if not _SUFFIX_RE.fullmatch(suffix):
        raise InvalidInput(f"storage suffix must look like '.png' or '.nii.gz', got {suffix!r}")
    sha = hashlib.sha256(data).hexdigest()
    return f"blobs/{sha[:2]}/{sha}{suffix}"


class Storage(ABC):
    """A key -> bytes store. Backend failures raise :class:`StorageError`."""

    def put_content(self, data: bytes, *, suffix: str = "") -> str:
        """Store ``data`` under its content address and return that key.

        Storing the same bytes again is a no-op that returns the same key; concurrent writers
        of the same bytes all succeed and leave one object.
        """
        key = content_key(data, suffix)
        if not self.exists(key):
            self.put_at(key, data)
        return key

    @abstractmethod
    def put_at(self, key: str, data: bytes) -> None:
        """Write or overwrite ``key``; readers see the old bytes or the new, never a mix."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Return the bytes under ``key``; :class:`StorageKeyNotFound` if there are none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing an absent key is not an error."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """All keys starting with ``prefix`` (a plain string prefix), sorted."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes of the object under ``key``; :class:`StorageKeyNotFound` if absent."""

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StorageError` if the store cannot currently be used."""

    @abstractmethod
    def describe(self) -> str:
        """A one-line human description, e.g. ``local:/var/samdsk`` or ``s3://bucket/prefix``."""
