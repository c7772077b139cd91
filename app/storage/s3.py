"""Storage in an S3 bucket (AWS, MinIO, or any S3-compatible endpoint) through boto3."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.storage.base import Storage, StorageError, StorageKeyNotFound, validate_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Storage"]

# Error codes S3 (and compatible servers) use for a missing object; HEAD responses have no
# body, so there the code is the bare status.
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Fail fast on an unreachable endpoint: a health check must answer within seconds.
_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Storage(Storage):
    """Keys live under ``<prefix>/`` in ``bucket``. S3 PUTs are atomic, so no temp objects."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any | None = None,
        create_bucket: bool = False,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_key(self.prefix)
        self._client: S3Client = client or boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=_CLIENT_CONFIG
        )
        if create_bucket:
            self._ensure_bucket()

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _translate(self, action: str, key: str | None = None) -> Iterator[None]:
        """Turn botocore failures into StorageKeyNotFound / StorageError at this boundary."""
        try:
            yield
        except ClientError as exc:
            if key is not None and _error_code(exc) in _MISSING_KEY_CODES:
                raise StorageKeyNotFound(key) from exc
            raise StorageError(f"S3 {action} failed on {self.describe()}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {action} failed on {self.describe()}: {exc}") from exc

    def _ensure_bucket(self) -> None:
        with self._translate("create bucket"):
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
            region = self._client.meta.region_name
            try:
                if region and region != "us-east-1":
                    self._client.create_bucket(
                        Bucket=self.bucket,
                        CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                    )
                else:
                    self._client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                # Another process created it between our HEAD and CREATE.
                if _error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise

    def put_at(self, key: str, data: bytes) -> None:
        full = self._full(key)
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        with self._translate("put", key=None):
            self._client.put_object(
                Bucket=self.bucket, Key=full, Body=data, ContentType=content_type
            )

    def get(self, key: str) -> bytes:
        full = self._full(key)
        with self._translate("get", key=key):
            response = self._client.get_object(Bucket=self.bucket, Key=full)
            return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except StorageKeyNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        full = self._full(key)
        # DeleteObject succeeds for absent keys, which is the contract we want.
        with self._translate("delete"):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def list_keys(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with self._translate("list"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                keys.extend(obj["Key"][len(base) :] for obj in page.get("Contents", []))
        return sorted(keys)

    def size(self, key: str) -> int:
        full = self._full(key)
        with self._translate("head", key=key):
            return self._client.head_object(Bucket=self.bucket, Key=full)["ContentLength"]

    def ping(self) -> None:
        # HEAD on the bucket proves the endpoint, the credentials and the bucket; a probe
        # write on every health check would cost a PUT each time and clutter versioned buckets.
        with self._translate("head bucket"):
            self._client.head_bucket(Bucket=self.bucket)

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} (endpoint {self._client.meta.endpoint_url})"
