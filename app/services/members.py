"""Project membership: who may do what in which project."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models import Membership, Project, Role, User


def role_in(*, session: Session, user: User, project_id: int) -> Role | None:
    return session.scalar(
        select(Membership.role).where(
            Membership.project_id == project_id, Membership.user_id == user.id
        )
    )


def effective_role(*, session: Session, user: User, project_id: int) -> Role | None:
    """What ``user`` may do in the project: a site administrator acts as its admin."""
    if user.is_superuser:
        return Role.ADMIN
    return role_in(session=session, user=user, project_id=project_id)


def roles_of(*, session: Session, user: User) -> dict[int, Role]:
    """Project id -> the user's role, for every project the user is a member of."""
    rows = session.execute(
        select(Membership.project_id, Membership.role).where(Membership.user_id == user.id)
    )
    return {project_id: role for project_id, role in rows}


def set_role(*, session: Session, project: Project, user: User, role: Role) -> Membership:
    member = session.scalar(
        select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id)
    )
    if member is None:
        member = Membership(project_id=project.id, user_id=user.id, role=role)
        session.add(member)
    else:
        _keep_an_admin(session, project, member, role)
        member.role = role
    session.flush()
    return member


def remove_member(*, session: Session, project: Project, user: User) -> None:
    member = session.scalar(
        select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id)
    )
    if member is None:
        raise NotFound(f"{user.username} is not a member of project {project.id}")
    _keep_an_admin(session, project, member, None)
    session.delete(member)
    session.flush()


def _keep_an_admin(
    session: Session, project: Project, member: Membership, new_role: Role | None
) -> None:
    """A project never loses its last admin (nobody could manage it any more)."""
    if member.role is not Role.ADMIN or new_role is Role.ADMIN:
        return
    admins = session.scalars(
        select(Membership.id).where(
            Membership.project_id == project.id, Membership.role == Role.ADMIN
        )
    ).all()
    if len(admins) <= 1:
        raise Conflict("a project needs at least one admin; name another admin first")


def list_members(*, session: Session, project: Project) -> list[tuple[Membership, User]]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project.id)
        .order_by(User.username)
    )
    return [(member, user) for member, user in rows]


def member_project_ids(*, session: Session, user: User) -> list[int]:
    return list(session.scalars(select(Membership.project_id).where(Membership.user_id == user.id)))
