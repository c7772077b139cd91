"""The audit trail: label decisions, rounds, membership changes and token creation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User


def record(
    *,
    session: Session,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: int | None = None,
    project_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor=actor.username if actor else "system",
        action=action,
        project_id=project_id,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
    )
    session.add(event)
    return event


def list_events(
    *, session: Session, project_id: int | None, offset: int, limit: int
) -> tuple[list[AuditEvent], int]:
    """Newest first; ``project_id`` None lists the whole site."""
    query = select(AuditEvent)
    counter = select(func.count()).select_from(AuditEvent)
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
        counter = counter.where(AuditEvent.project_id == project_id)
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).offset(offset).limit(limit))
    return list(rows), session.scalar(counter) or 0
