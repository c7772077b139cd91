"""Projects: create, list, get, change."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.api.deps import (
    CurrentUser,
    PaginationDep,
    ProjectAdmin,
    ProjectViewer,
    RuntimeDep,
    SessionDep,
)
from app.models import Project, Role
from app.schemas import Page, ProjectCreate, ProjectPublic, ProjectUpdate
from app.services import projects as service
from app.services.audit import record
from app.services.members import effective_role, roles_of, set_role

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectPublic)
def create_project(
    body: ProjectCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    runtime: RuntimeDep,
) -> ProjectPublic:
    """Create a project; its creator becomes its first admin. 409 for a name in use, ignoring
    case and surrounding spaces. ``Location`` names the new project."""
    project = service.create_project(session=session, settings=runtime.settings, data=body)
    response.headers["Location"] = str(request.url_for("get_project", project_id=project.id))
    set_role(session=session, project=project, user=user, role=Role.ADMIN)
    record(
        session=session,
        actor=user,
        action="project.create",
        target_type="project",
        target_id=project.id,
        project_id=project.id,
        details={"name": project.name},
    )
    return _public(project, Role.ADMIN)


@router.get("", response_model=Page[ProjectPublic])
def list_projects(
    session: SessionDep, page: PaginationDep, user: CurrentUser
) -> Page[ProjectPublic]:
    """The projects the caller is a member of (every project for a site administrator)."""
    rows, count = service.list_projects(
        session=session, user=user, offset=page.offset, limit=page.limit
    )
    roles = roles_of(session=session, user=user)
    return Page(
        data=[_public(p, Role.ADMIN if user.is_superuser else roles.get(p.id)) for p in rows],
        count=count,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/{project_id}", response_model=ProjectPublic)
def get_project(project: ProjectViewer, session: SessionDep, user: CurrentUser) -> ProjectPublic:
    return _public(project, effective_role(session=session, user=user, project_id=project.id))


@router.patch("/{project_id}", response_model=ProjectPublic)
def update_project(
    body: ProjectUpdate,
    project: ProjectAdmin,
    session: SessionDep,
    user: CurrentUser,
    runtime: RuntimeDep,
) -> ProjectPublic:
    """Change a project's name, description, image-level knowledge (per class: the classes
    sent), proposal or model settings, or auto-accept threshold (null: review everything).
    Only what is sent changes, and the audit trail records each change with its old value.
    Class names are fixed (422 for others); rounds that start later use the new values."""
    changes = service.update_project(
        session=session, settings=runtime.settings, project=project, data=body
    )
    if changes:
        record(
            session=session,
            actor=user,
            action="project.update",
            target_type="project",
            target_id=project.id,
            project_id=project.id,
            details=changes,
        )
    return _public(project, effective_role(session=session, user=user, project_id=project.id))


def _public(project: Project, role: Role | None) -> ProjectPublic:
    return ProjectPublic.model_validate(project).model_copy(update={"my_role": role})
