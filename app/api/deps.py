"""Named dependency aliases: short handler signatures and one override point in tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.api.params import IdPath, OffsetQuery
from app.db import session_scope
from app.errors import Forbidden, NotFound, Unauthorized
from app.models import Project, Role, User
from app.queue import TaskQueue
from app.runtime import Runtime
from app.services.accounts import authenticate_token, record_token_use
from app.services.members import role_in
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


# scope="function": the session commits before the response is sent (FastAPI's default ends
# a yield dependency after it), so a client that reads right after a write, as the browser
# does after logging in, sees the write, and a failed commit is an error answer, not a 200.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
StorageDep = Annotated[Storage, Depends(get_storage)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
QueueDep = Annotated[TaskQueue, Depends(get_queue)]


BEARER = HTTPBearer(auto_error=False, description="A session token from login, or an API token")


def get_current_user(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("log in or send an API token: Authorization: Bearer <token>")
    user, token = authenticate_token(session=session, token=credentials.credentials)
    # In a short transaction of its own: written in the request's session, it would hold
    # SQLite's write lock from here to the end of the request, reads included.
    with session_scope(runtime.session_factory) as own:
        record_token_use(session=own, token=token)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise Forbidden("only a site administrator may do this")
    return user


SuperUser = Annotated[User, Depends(get_superuser)]


def project_with_role(minimum: Role) -> Callable[..., Project]:
    """A dependency that loads the project if the caller holds at least ``minimum`` in it.

    Non-members get 404, exactly as for a project that does not exist, so ids cannot be
    probed; members with too small a role get 403."""

    def dependency(project_id: IdPath, session: SessionDep, user: CurrentUser) -> Project:
        role = (
            None
            if user.is_superuser
            else role_in(session=session, user=user, project_id=project_id)
        )
        if not user.is_superuser and role is None:
            raise NotFound(f"project {project_id} does not exist")
        project = get_project(session=session, project_id=project_id)
        if role is not None and role.rank < minimum.rank:
            raise Forbidden(
                f"this needs the {minimum.value} role in project {project_id}; you are {role.value}"
            )
        return project

    return dependency


ProjectViewer = Annotated[Project, Depends(project_with_role(Role.VIEWER))]
ProjectAnnotator = Annotated[Project, Depends(project_with_role(Role.ANNOTATOR))]
ProjectReviewer = Annotated[Project, Depends(project_with_role(Role.REVIEWER))]
ProjectAdmin = Annotated[Project, Depends(project_with_role(Role.ADMIN))]


class Pagination:
    def __init__(
        self,
        offset: OffsetQuery = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> None:
        self.offset = offset
        self.limit = limit


PaginationDep = Annotated[Pagination, Depends()]
