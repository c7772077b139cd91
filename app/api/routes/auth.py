"""Login and logout for browsers: a session token with a limited lifetime."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from app.api.deps import BEARER, CurrentUser, SessionDep, SettingsDep
from app.schemas_accounts import LoginPublic, LoginRequest
from app.services.accounts import LoginPolicy, authenticate_token, login, revoke_token
from app.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])


def login_policy(settings: Settings) -> LoginPolicy:
    """How many failed password checks the login and a password change allow, and when."""
    return LoginPolicy(
        window_seconds=settings.login_window_seconds,
        max_failures_per_account=settings.login_max_failures_per_account,
        max_failures_per_account_everywhere=settings.login_max_failures_per_account_everywhere,
        max_failures_per_address=settings.login_max_failures_per_address,
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=LoginPublic)
def log_in(
    body: LoginRequest, request: Request, session: SessionDep, settings: SettingsDep
) -> LoginPublic:
    """Exchange a username and password for a session token (rate-limited)."""
    issued = login(
        session=session,
        username=body.username,
        password=body.password,
        address=client_address(request),
        policy=login_policy(settings),
        session_hours=settings.session_hours,
    )
    return LoginPublic(access_token=issued.token, expires_at=issued.row.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def log_out(
    session: SessionDep,
    user: CurrentUser,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> None:
    """End the session whose token made this request."""
    assert credentials is not None  # CurrentUser already required it
    _, token = authenticate_token(session=session, token=credentials.credentials)
    revoke_token(session=session, user=user, token_id=token.id)
