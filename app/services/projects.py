"""Projects: the unit that owns images, labels, rounds and image-level knowledge."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.models import Membership, Project, User
from app.schemas import ClassKnowledgeSchema, ProjectCreate, ProjectUpdate
from app.services.model_settings import check_client_model_settings
from app.services.proposal_settings import check_client_proposal_settings
from app.settings import Settings


def create_project(*, session: Session, settings: Settings, data: ProjectCreate) -> Project:
    """A new project; InvalidInput (422) for model or proposal settings that a round could
    not run with on this server, Conflict (409) for a name in use, whatever its case."""
    check_client_model_settings(data.model_settings, class_count=len(data.class_names))
    check_client_proposal_settings(settings, data.proposal_settings)
    taken = name_in_use(session=session, name=data.name)
    if taken is not None:
        raise Conflict(f"a project named {taken!r} already exists")
    knowledge = {
        name: data.knowledge.get(name, ClassKnowledgeSchema()).model_dump()
        for name in data.class_names
    }
    project = Project(
        name=data.name,
        description=data.description,
        class_names=list(data.class_names),
        knowledge=knowledge,
        proposal_settings=dict(data.proposal_settings),
        model_settings=dict(data.model_settings),
        auto_accept_threshold=data.auto_accept_threshold,
    )
    session.add(project)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a project named {data.name!r} already exists") from exc
    return project


def update_project(
    *, session: Session, settings: Settings, project: Project, data: ProjectUpdate
) -> dict[str, dict[str, Any]]:
    """Change what ``data`` sends; returns ``{field: {"from": old, "to": new}}`` for what
    changed. All is checked before anything changes: settings a round could not run with
    (422), a name in use (409), other class names or knowledge of an unknown class (422).
    A round already running keeps the settings it started with."""
    sent = data.model_fields_set
    if "class_names" in sent and data.class_names != project.class_names:
        raise InvalidInput(
            f"class names are fixed once a project exists (labels store class indices): "
            f"{project.class_names}"
        )
    if data.knowledge is not None:
        unknown = sorted(set(data.knowledge) - set(project.class_names))
        if unknown:
            raise InvalidInput(f"knowledge names unknown classes: {unknown}")
    if data.model_settings is not None:
        check_client_model_settings(data.model_settings, class_count=len(project.class_names))
    if data.proposal_settings is not None:
        check_client_proposal_settings(settings, data.proposal_settings)
    if data.name is not None and data.name.strip().casefold() != project.name.casefold():
        taken = name_in_use(session=session, name=data.name)
        if taken is not None:
            raise Conflict(f"a project named {taken!r} already exists")
    wanted: dict[str, Any] = {}
    for field in ("name", "description", "proposal_settings", "model_settings"):
        if getattr(data, field) is not None:
            wanted[field] = getattr(data, field)
    if "auto_accept_threshold" in sent:
        wanted["auto_accept_threshold"] = data.auto_accept_threshold
    if data.knowledge is not None:
        given = {name: value.model_dump() for name, value in data.knowledge.items()}
        wanted["knowledge"] = {**project.knowledge, **given}
    changes = {
        field: {"from": getattr(project, field), "to": value}
        for field, value in wanted.items()
        if getattr(project, field) != value
    }
    for field, change in changes.items():
        setattr(project, field, change["to"])
    try:
        session.flush()
    except IntegrityError as exc:  # the same name, taken at the same moment
        raise Conflict(f"a project named {data.name!r} already exists") from exc
    return changes


def name_in_use(*, session: Session, name: str) -> str | None:
    """The name of the project called ``name`` but for case and surrounding spaces: "Polyps "
    and "polyps" would be two projects no one could tell apart in a list. Compared here, not
    by the database, whose ``lower`` folds only ASCII on SQLite; projects are few."""
    wanted = name.strip().casefold()
    names = session.scalars(select(Project.name))
    return next((taken for taken in names if taken.strip().casefold() == wanted), None)


def get_project(*, session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist")
    return project


def list_projects(
    *, session: Session, user: User, offset: int, limit: int
) -> tuple[list[Project], int]:
    """Projects visible to ``user``: those it is a member of, or all for a superuser."""
    visible = select(Project)
    if not user.is_superuser:
        visible = visible.join(Membership, Membership.project_id == Project.id).where(
            Membership.user_id == user.id
        )
    count = session.scalar(select(func.count()).select_from(visible.subquery())) or 0
    rows = session.scalars(visible.order_by(Project.id).offset(offset).limit(limit))
    return list(rows), count
