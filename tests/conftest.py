"""Shared fixtures: real databases (SQLite always, PostgreSQL when it answers), real local
storage, and the real Celery client on a filesystem broker under the test's folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.runtime import Runtime, build_runtime
from app.settings import Settings
from tests.accounts import bearer, make_user
from tests.databases import TemplateDatabases, drop_postgres_database, require_postgres
from tests.shared_data import REPO_ROOT, SHARED_DATA, shared_data

__all__ = ["REPO_ROOT", "SHARED_DATA", "TEST_SECRET", "shared_data"]
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Torch on one intra-op thread for the test. Tiny models gain nothing from a second
    thread, and on shared CI cores a second busy thread makes every parallel region wait for a
    descheduled peer. It also makes repeated predictions bit-identical: otherwise each
    prediction takes the cores free at that moment, and another thread count sums in another
    order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def template_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemplateDatabases]:
    templates = TemplateDatabases(tmp_path_factory.mktemp("db-templates"))
    yield templates
    templates.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(
    request: pytest.FixtureRequest, template_databases: TemplateDatabases, tmp_path: Path
) -> Iterator[str]:
    """A freshly migrated, empty database of each backend, private to the test."""
    if request.param == "sqlite":
        yield template_databases.sqlite_copy(tmp_path / "test.db")
        return
    require_postgres()
    name, url = template_databases.postgres_copy()
    yield url
    drop_postgres_database(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        data_dir=tmp_path / "data",
        database_url=database_url,
        job_lease_seconds=30,
        job_sweep_seconds=1,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def anon_client(runtime: Runtime) -> Iterator[TestClient]:
    """A client without credentials."""
    with TestClient(create_app(runtime=runtime)) as test_client:
        yield test_client


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """A client logged in as a site administrator (superuser)."""
    _, token = make_user(runtime, "root", superuser=True)
    with TestClient(create_app(runtime=runtime), headers=bearer(token)) as test_client:
        yield test_client
