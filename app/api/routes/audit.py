"""The audit trail, newest first: per project for its admins, site-wide for site admins."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import PaginationDep, ProjectAdmin, SessionDep, SuperUser
from app.schemas import Page
from app.schemas_accounts import AuditEventPublic
from app.services.audit import list_events

router = APIRouter(tags=["audit"])


def _page(
    session: SessionDep, project_id: int | None, page: PaginationDep
) -> Page[AuditEventPublic]:
    rows, count = list_events(
        session=session, project_id=project_id, offset=page.offset, limit=page.limit
    )
    return Page(
        data=[AuditEventPublic.model_validate(e) for e in rows],
        count=count,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/projects/{project_id}/audit", response_model=Page[AuditEventPublic])
def list_project_audit(
    project: ProjectAdmin, session: SessionDep, page: PaginationDep
) -> Page[AuditEventPublic]:
    return _page(session, project.id, page)


@router.get("/audit", response_model=Page[AuditEventPublic])
def list_site_audit(
    _admin: SuperUser, session: SessionDep, page: PaginationDep
) -> Page[AuditEventPublic]:
    return _page(session, None, page)
