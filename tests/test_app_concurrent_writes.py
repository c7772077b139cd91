"""Concurrent writers on one database: parallel uploads and reads with one token all succeed.

SQLite in WAL mode refuses at once (no busy wait) a transaction that read an older snapshot
and then tries to write, so each request's transaction must take the write lock before its
first read, and reads must not write."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fastapi.testclient import TestClient

from app.runtime import Runtime
from tests.image_fixtures import array_file
from tests.uploads import create_project, state_snapshot

WRITERS = 8


def _distinct_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return array_file(pixels)


def test_parallel_uploads_and_reads_with_one_token_all_succeed(
    client: TestClient, runtime: Runtime
) -> None:
    project = create_project(client)
    base = f"/api/v1/projects/{project['id']}"
    files = [_distinct_png(seed) for seed in range(WRITERS)]

    def upload(index: int) -> int:
        response = client.post(f"{base}/images", files={"file": (f"{index}.png", files[index])})
        return response.status_code

    def read(_: int) -> int:
        return client.get(f"{base}/images").status_code

    for _ in range(3):  # a race: several tries make a pass meaningful
        with ThreadPoolExecutor(max_workers=2 * WRITERS) as pool:
            uploads = pool.map(upload, range(WRITERS))
            reads = pool.map(read, range(WRITERS))
            codes = list(uploads), list(reads)
        assert all(code in (200, 201) for code in codes[0]), codes
        assert all(code == 200 for code in codes[1]), codes
    listed = client.get(f"{base}/images", params={"limit": 100}).json()
    assert listed["count"] == WRITERS
    assert state_snapshot(runtime)  # the database still answers
