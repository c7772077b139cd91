"""Build a storage backend from one URL setting."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from app.errors import InvalidInput
from app.storage.base import Storage
from app.storage.local import LocalStorage
from app.storage.s3 import S3Storage

__all__ = ["create_storage"]

_ACCEPTED = "file:///absolute/path, a plain filesystem path, or s3://bucket[/prefix]"


def create_storage(
    url: str, *, s3_endpoint_url: str | None = None, s3_region: str | None = None
) -> Storage:
    """Return the backend that ``url`` names.

    ``file:///abs/path`` or a plain path gives :class:`LocalStorage` (a relative plain path is
    resolved against the working directory); ``s3://bucket/optional/prefix`` gives
    :class:`S3Storage`, talking to ``s3_endpoint_url`` (AWS when ``None``) in ``s3_region``.
    Anything else raises :class:`InvalidInput` naming the accepted forms.
    """
    if not url or not url.strip():
        raise InvalidInput(f"storage URL is empty; use {_ACCEPTED}")
    if "://" not in url:
        return LocalStorage(Path(url))
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise InvalidInput(f"storage URL {url!r} must not have a query or fragment")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"file storage URL {url!r} names a host; use file:///absolute/path")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise InvalidInput(f"file storage URL {url!r} needs an absolute path")
        return LocalStorage(Path(path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise InvalidInput(f"S3 storage URL {url!r} names no bucket; use s3://bucket[/prefix]")
        return S3Storage(
            parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint_url=s3_endpoint_url,
            region=s3_region,
        )
    raise InvalidInput(f"unsupported storage URL scheme {parts.scheme!r}; use {_ACCEPTED}")
