"""Users: who am I, change my password; site administrators create, list and change users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from sqlalchemy import func, select

from app.api.deps import CurrentUser, PaginationDep, SessionDep, SettingsDep, SuperUser
from app.api.routes.auth import client_address, login_policy
from app.errors import NotFound
from app.models import User
from app.schemas import Page
from app.schemas_accounts import (
    USERNAME_PATTERN,
    PasswordChange,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from app.services.accounts import change_password, create_user, find_user, update_user
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


@router.patch("/{username}", response_model=UserPublic)
def update_account(
    username: Annotated[str, Path(pattern=USERNAME_PATTERN)],
    body: UserUpdate,
    session: SessionDep,
    admin: SuperUser,
) -> UserPublic:
    """Disable or enable an account, make it a site administrator or not, set its password
    (its browser sessions end), or unlock it after too many failed logins. 409 where no
    enabled site administrator would be left."""
    user = find_user(session=session, username=username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    changes = update_user(
        session=session,
        user=user,
        is_active=body.is_active,
        is_superuser=body.is_superuser,
        password=body.password,
        unlock=body.unlock,
    )
    if changes:
        record(
            session=session,
            actor=admin,
            action="user.update",
            target_type="user",
            target_id=user.id,
            details={"username": user.username, **changes},
        )
    return UserPublic.model_validate(user)
