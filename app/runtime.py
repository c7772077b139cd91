"""Long-lived objects of one process, built from settings (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from app.queue import CeleryTaskQueue, TaskQueue
from app.settings import Settings
from app.storage import Storage, create_storage


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    storage: Storage
    queue: TaskQueue

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(
    settings: Settings, *, storage: Storage | None = None, queue: TaskQueue | None = None
) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        storage=storage
        or create_storage(
            settings.resolved_storage_url,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
        ),
        queue=queue or CeleryTaskQueue(settings),
    )
