"""Test databases: a migrated template per backend, copied for every test (per-test isolation
without re-running migrations). PostgreSQL is used when it answers; under CI=true it must."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.cli import migrate
from app.settings import Settings

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
IN_CI = os.environ.get("CI", "").lower() == "true"


def postgres_admin_url() -> str:
    return os.environ.get("SAMDSK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_unavailable_reason() -> str | None:
    """None when PostgreSQL answers, else why not (a failure in CI, a skip elsewhere)."""
    try:
        with _admin_connection():
            return None
    except Exception as exc:  # any connection error
        return f"PostgreSQL at {make_url(postgres_admin_url()).render_as_string()}: {exc}"


@contextmanager
def _admin_connection() -> Iterator[psycopg.Connection]:
    url = make_url(postgres_admin_url())
    conn = psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
        connect_timeout=3,
    )
    try:
        yield conn
    finally:
        conn.close()


def require_postgres() -> None:
    reason = postgres_unavailable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unreachable: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def postgres_url_for(database: str) -> str:
    return (
        make_url(postgres_admin_url()).set(database=database).render_as_string(hide_password=False)
    )


def create_postgres_database(name: str, template: str | None = None) -> str:
    with _admin_connection() as conn:
        suffix = f" TEMPLATE {template}" if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    return postgres_url_for(name)


def drop_postgres_database(name: str) -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TemplateDatabases:
    """Migrated templates, built once per test session and copied per test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sqlite_template: Path | None = None
        self.postgres_template: str | None = None

    def sqlite_copy(self, target: Path) -> str:
        if self.sqlite_template is None:
            self.sqlite_template = self.root / "template.db"
            migrate(_settings_for(f"sqlite:///{self.sqlite_template}", self.root / "tpl"))
        shutil.copyfile(self.sqlite_template, target)
        return f"sqlite:///{target}"

    def postgres_copy(self) -> tuple[str, str]:
        if self.postgres_template is None:
            name = f"samdsk_tpl_{uuid.uuid4().hex[:10]}"
            url = create_postgres_database(name)
            migrate(_settings_for(url, self.root / "tpl"))
            self.postgres_template = name
        name = f"samdsk_t_{uuid.uuid4().hex[:12]}"
        return name, create_postgres_database(name, template=self.postgres_template)

    def close(self) -> None:
        if self.postgres_template is not None:
            drop_postgres_database(self.postgres_template)


def _settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(environment="test", secret_key="t" * 40, data_dir=data_dir, database_url=url)
