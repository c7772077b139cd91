"""Named dependency aliases: short handler signatures and one override point in tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from app.models import Project
from app.queue import TaskQueue
from app.runtime import Runtime
from app.services.projects import get_project
from app.settings import Settings
from app.storage import Storage


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One session per request: committed when the handler returns, rolled back on error."""
    session = runtime.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_storage(runtime: RuntimeDep) -> Storage:
    return runtime.storage


def get_settings_dep(runtime: RuntimeDep) -> Settings:
    return runtime.settings


def get_queue(runtime: RuntimeDep) -> TaskQueue:
    return runtime.queue


SessionDep = Annotated[Session, Depends(get_session)]
StorageDep = Annotated[Storage, Depends(get_storage)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
QueueDep = Annotated[TaskQueue, Depends(get_queue)]


def get_project_dep(project_id: int, session: SessionDep) -> Project:
    return get_project(session=session, project_id=project_id)


ProjectDep = Annotated[Project, Depends(get_project_dep)]


class Pagination:
    def __init__(
        self,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> None:
        self.offset = offset
        self.limit = limit


PaginationDep = Annotated[Pagination, Depends()]
