"""Project members and their roles: every member sees who else works on the project (as in
CVAT); only project admins change them."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import CurrentUser, ProjectAdmin, ProjectViewer, SessionDep
from app.schemas_accounts import MemberPublic, MemberUpdate
from app.services.accounts import get_user_by_name
from app.services.audit import record
from app.services.members import list_members, remove_member, set_role

router = APIRouter(prefix="/projects/{project_id}/members", tags=["members"])


@router.get("", response_model=list[MemberPublic])
def list_project_members(project: ProjectViewer, session: SessionDep) -> list[MemberPublic]:
    """Who is in the project, with their roles (any member may look)."""
    return [
        MemberPublic(user_id=u.id, username=u.username, role=m.role, created_at=m.created_at)
        for m, u in list_members(session=session, project=project)
    ]


@router.put("/{username}", response_model=MemberPublic)
def set_member_role(
    username: str,
    body: MemberUpdate,
    project: ProjectAdmin,
    session: SessionDep,
    actor: CurrentUser,
) -> MemberPublic:
    """Add a user to the project or change their role."""
    user = get_user_by_name(session=session, username=username)
    member = set_role(session=session, project=project, user=user, role=body.role)
    record(
        session=session,
        actor=actor,
        action="member.set",
        target_type="user",
        target_id=user.id,
        project_id=project.id,
        details={"username": user.username, "role": body.role.value},
    )
    return MemberPublic(
        user_id=user.id, username=user.username, role=member.role, created_at=member.created_at
    )


@router.delete("/{username}", status_code=status.HTTP_204_NO_CONTENT)
def remove_project_member(
    username: str, project: ProjectAdmin, session: SessionDep, actor: CurrentUser
) -> None:
    user = get_user_by_name(session=session, username=username)
    remove_member(session=session, project=project, user=user)
    record(
        session=session,
        actor=actor,
        action="member.remove",
        target_type="user",
        target_id=user.id,
        project_id=project.id,
        details={"username": user.username},
    )
