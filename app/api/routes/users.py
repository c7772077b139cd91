"""Users: who am I, change my password; site administrators create and list users."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy import func, select

from app.api.deps import CurrentUser, PaginationDep, SessionDep, SettingsDep, SuperUser
from app.api.routes.auth import client_address, login_policy
from app.models import User
from app.schemas import Page
from app.schemas_accounts import PasswordChange, UserCreate, UserPublic
from app.services.accounts import change_password, create_user
from app.services.audit import record

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserPublic)
def get_me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_my_password(
    body: PasswordChange,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> None:
    """Set a new password; every browser session of the account ends (log in again). A wrong
    current password is a 403 and counts as a failed login (429 once there are too many)."""
    ended = change_password(
        session=session,
        user=user,
        current=body.current_password,
        new=body.new_password,
        address=client_address(request),
        policy=login_policy(settings),
    )
    record(
        session=session,
        actor=user,
        action="user.password_change",
        target_type="user",
        target_id=user.id,
        details={"sessions_ended": ended},
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
def create_account(body: UserCreate, session: SessionDep, admin: SuperUser) -> UserPublic:
    user = create_user(
        session=session,
        username=body.username,
        password=body.password,
        is_superuser=body.is_superuser,
    )
    record(
        session=session,
        actor=admin,
        action="user.create",
        target_type="user",
        target_id=user.id,
        details={"username": user.username, "is_superuser": user.is_superuser},
    )
    return UserPublic.model_validate(user)


@router.get("", response_model=Page[UserPublic])
def list_accounts(session: SessionDep, _admin: SuperUser, page: PaginationDep) -> Page[UserPublic]:
    count = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(select(User).order_by(User.id).offset(page.offset).limit(page.limit))
    return Page(
        data=[UserPublic.model_validate(u) for u in rows],
        count=count,
        offset=page.offset,
        limit=page.limit,
    )
