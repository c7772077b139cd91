"""Storage backends: every behaviour test runs against the local filesystem and against S3.

The S3 side talks HTTP to a local moto server (see ``s3_server.py``). Where that server cannot
start, only the S3 cases are skipped, and in CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.errors import InvalidInput, NotFound, ServiceUnavailable
from app.storage import (
    LocalStorage,
    S3Storage,
    Storage,
    StorageError,
    StorageKeyNotFound,
    create_storage,
)

# tests/ is a flat directory, not a package: pytest puts it on sys.path for its modules.
from tests.s3_server import REGION, S3Server, S3ServerUnavailable, start_s3_server

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@dataclass
class Backend:
    name: str
    storage: Storage
    make_broken: Callable[[], Storage]  # same backend, pointed at something unusable


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server | str]:
    """The running server, or the reason it could not be started."""
    try:
        server = start_s3_server()
    except S3ServerUnavailable as exc:
        yield str(exc)
        return
    yield server
    server.stop()


@pytest.fixture
def s3_client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    server = request.getfixturevalue("s3_server")
    if isinstance(server, str):
        reason = f"S3 backend tests skipped: could not start a local S3 (moto) server: {server}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    # Clients that the code under test builds itself read these; keep ~/.aws out of it.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return server.client()


def _fresh_bucket(client: Any) -> str:
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        root = tmp_path / "store"

        def broken_local() -> Storage:
            # Tests run as root, so permission bits prove nothing: a file where the root
            # directory should be makes every write fail.
            storage = LocalStorage(tmp_path / "gone")
            shutil.rmtree(storage.root)
            storage.root.write_bytes(b"not a directory")
            return storage

        return Backend("local", LocalStorage(root), broken_local)
    client = request.getfixturevalue("s3_client")

    def broken_s3() -> Storage:
        return S3Storage(f"missing-{uuid.uuid4().hex[:16]}", client=client)

    return Backend("s3", S3Storage(_fresh_bucket(client), client=client), broken_s3)


def test_round_trip(backend: Backend) -> None:
    backend.storage.put_at("masks/1.png", PNG)
    assert backend.storage.get("masks/1.png") == PNG
    assert backend.storage.exists("masks/1.png")
    assert backend.storage.size("masks/1.png") == len(PNG)


def test_content_addressing_stores_identical_bytes_once(backend: Backend) -> None:
    store = backend.storage
    key = store.put_content(PNG, suffix=".png")
    assert key.startswith("blobs/") and key.endswith(".png")
    assert key.split("/")[1] == key.split("/")[2][:2]
    assert store.put_content(PNG, suffix=".png") == key
    assert store.put_content(b"other") != key
    assert store.list_keys("blobs/") == sorted([key, store.put_content(b"other")])
    assert store.get(key) == PNG


def test_put_content_rejects_odd_suffix(backend: Backend) -> None:
    with pytest.raises(InvalidInput):
        backend.storage.put_content(PNG, suffix="/../x")


def test_put_at_overwrites(backend: Backend) -> None:
    backend.storage.put_at("thumbnails/7.png", b"old thumbnail")
    backend.storage.put_at("thumbnails/7.png", b"new")
    assert backend.storage.get("thumbnails/7.png") == b"new"
    assert backend.storage.size("thumbnails/7.png") == 3
    assert backend.storage.list_keys("thumbnails/") == ["thumbnails/7.png"]


def test_missing_key_is_not_found(backend: Backend) -> None:
    store = backend.storage
    store.put_at("a/b.bin", b"x")
    for key in ("nope.bin", "a", "a/b.bin/c"):
        with pytest.raises(StorageKeyNotFound) as info:
            store.get(key)
        assert info.value.key == key
        assert isinstance(info.value, NotFound) and info.value.status_code == 404
        with pytest.raises(StorageKeyNotFound):
            store.size(key)
        assert not store.exists(key)


def test_list_keys_filters_by_prefix_and_sorts(backend: Backend) -> None:
    store = backend.storage
    for key in ("thumbnails/2.png", "thumbnails/10.png", "masks/1.png", "thumb.txt"):
        store.put_at(key, b"x")
    assert store.list_keys("thumbnails/") == ["thumbnails/10.png", "thumbnails/2.png"]
    assert store.list_keys("thumb") == ["thumb.txt", "thumbnails/10.png", "thumbnails/2.png"]
    assert store.list_keys("thumbnails/1") == ["thumbnails/10.png"]
    assert store.list_keys("nothing/here/") == []
    assert store.list_keys() == [
        "masks/1.png",
        "thumb.txt",
        "thumbnails/10.png",
        "thumbnails/2.png",
    ]


def test_delete_removes_and_tolerates_absent(backend: Backend) -> None:
    store = backend.storage
    store.put_at("masks/1.png", b"x")
    store.put_at("masks/2.png", b"y")
    store.delete("masks/1.png")
    assert not store.exists("masks/1.png")
    assert store.list_keys() == ["masks/2.png"]
    store.delete("masks/1.png")
    store.delete("never/existed")
    store.delete("masks")  # a prefix of other keys is not itself an object
    assert store.get("masks/2.png") == b"y"


def test_ping_ok(backend: Backend) -> None:
    backend.storage.ping()
    assert backend.storage.describe().startswith("local:" if backend.name == "local" else "s3://")


def test_unusable_store_raises_storage_error(backend: Backend) -> None:
    broken = backend.make_broken()
    with pytest.raises(StorageError) as info:
        broken.ping()
    assert isinstance(info.value, ServiceUnavailable) and info.value.status_code == 503
    with pytest.raises(StorageError):
        broken.put_content(PNG)
    with pytest.raises(StorageError):
        broken.list_keys()


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "/abs", "a//b", "a\\b", "", "a/", "./a", "a/./b", "a\x00b"]
)
def test_keys_that_could_escape_are_rejected(backend: Backend, key: str) -> None:
    store = backend.storage
    with pytest.raises(InvalidInput):
        store.put_at(key, b"x")
    for read in (store.get, store.exists, store.delete, store.size):
        with pytest.raises(InvalidInput):
            read(key)


def test_concurrent_writers_of_same_content_leave_one_object(backend: Backend) -> None:
    store = backend.storage
    data = os.urandom(64 * 1024)
    keys: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write() -> None:
        try:
            start.wait()
            keys.append(store.put_content(data, suffix=".bin"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(keys) == 8 and len(set(keys)) == 1
    assert store.list_keys() == [keys[0]]
    assert store.get(keys[0]) == data


def test_local_failed_write_leaves_no_partial_or_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStorage(tmp_path)
    store.put_at("thumbnails/1.png", b"previous")

    def fail_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("app.storage.local.os.replace", fail_replace)
    with pytest.raises(StorageError, match="No space left"):
        store.put_at("thumbnails/1.png", b"half-written")
    with pytest.raises(StorageError):
        store.put_content(b"never stored")
    monkeypatch.undo()

    assert store.get("thumbnails/1.png") == b"previous"
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["thumbnails/1.png"]
    assert store.list_keys("blobs/") == []


def test_local_keys_stay_under_root(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    store.put_at("a/b/c.txt", b"x")
    assert (tmp_path / "root" / "a" / "b" / "c.txt").read_bytes() == b"x"
    assert store.describe() == f"local:{(tmp_path / 'root').resolve()}"
    assert sorted(os.listdir(tmp_path)) == ["root"]


def test_s3_prefixes_isolate_stores_in_one_bucket(s3_client: Any) -> None:
    bucket = _fresh_bucket(s3_client)
    one = S3Storage(bucket, prefix="one/", client=s3_client)
    two = S3Storage(bucket, prefix="two", client=s3_client)
    one.put_at("x.bin", b"1")
    two.put_at("x.bin", b"2")
    assert one.list_keys() == ["x.bin"] and one.get("x.bin") == b"1"
    assert two.get("x.bin") == b"2"
    listed = s3_client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(obj["Key"] for obj in listed) == ["one/x.bin", "two/x.bin"]
    assert one.describe().startswith(f"s3://{bucket}/one (endpoint http://127.0.0.1:")


def test_s3_create_bucket_on_request(s3_client: Any) -> None:
    bucket = f"new-{uuid.uuid4().hex[:16]}"
    with pytest.raises(StorageError):
        S3Storage(bucket, client=s3_client).ping()
    S3Storage(bucket, client=s3_client, create_bucket=True).ping()
    S3Storage(bucket, client=s3_client, create_bucket=True).ping()  # already there: fine


def test_create_storage_builds_local_backends(tmp_path: Path) -> None:
    from_url = create_storage(f"file://{tmp_path}/a")
    from_path = create_storage(str(tmp_path / "b"))
    assert isinstance(from_url, LocalStorage) and from_url.root == (tmp_path / "a").resolve()
    assert isinstance(from_path, LocalStorage) and from_path.root == (tmp_path / "b").resolve()


def test_create_storage_builds_s3_backend(s3_client: Any) -> None:
    bucket = _fresh_bucket(s3_client)
    endpoint = s3_client.meta.endpoint_url
    store = create_storage(f"s3://{bucket}/data/v1", s3_endpoint_url=endpoint, s3_region=REGION)
    assert isinstance(store, S3Storage) and store.prefix == "data/v1"
    store.put_at("k.txt", b"v")
    assert s3_client.get_object(Bucket=bucket, Key="data/v1/k.txt")["Body"].read() == b"v"


@pytest.mark.parametrize(
    "url",
    ["", "ftp://host/x", "http://bucket", "s3://", "file://host/x", "file://rel", "s3://b?x=1"],
)
def test_create_storage_rejects_other_urls(url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        create_storage(url)
    if url.startswith(("ftp", "http")):
        assert "file://" in info.value.message and "s3://" in info.value.message
