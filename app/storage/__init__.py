"""Blob storage for images, masks and derived files: local filesystem or S3.

Build one from settings with :func:`create_storage`; code against :class:`Storage`.
"""

from app.storage.base import Storage, StorageError, StorageKeyNotFound, content_key, validate_key
from app.storage.factory import create_storage
from app.storage.local import LocalStorage
from app.storage.s3 import S3Storage

__all__ = [
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageKeyNotFound",
    "content_key",
    "create_storage",
    "validate_key",
]
