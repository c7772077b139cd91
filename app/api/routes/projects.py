"""Projects: create, list, get."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import PaginationDep, ProjectDep, SessionDep
from app.schemas import Page, ProjectCreate, ProjectPublic
from app.services import projects as service

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectPublic)
def create_project(body: ProjectCreate, session: SessionDep) -> ProjectPublic:
    project = service.create_project(session=session, data=body)
    return ProjectPublic.model_validate(project)


@router.get("", response_model=Page[ProjectPublic])
def list_projects(session: SessionDep, page: PaginationDep) -> Page[ProjectPublic]:
    rows, count = service.list_projects(session=session, offset=page.offset, limit=page.limit)
    return Page(
        data=[ProjectPublic.model_validate(p) for p in rows],
        count=count,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/{project_id}", response_model=ProjectPublic)
def get_project(project: ProjectDep) -> ProjectPublic:
    return ProjectPublic.model_validate(project)
