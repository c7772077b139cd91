"""API schemas of accounts, tokens, memberships and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.models import Role, TokenKind
from app.schemas import STRICT_INPUT

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{2,100}$"


class LoginRequest(BaseModel):
    model_config = STRICT_INPUT

    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)


class LoginPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime | None


class UserCreate(BaseModel):
    model_config = STRICT_INPUT

    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(max_length=1000)
    is_superuser: bool = False


class UserUpdate(BaseModel):
    """A site administrator's change of an account; only the fields sent change."""

    model_config = STRICT_INPUT

    is_active: bool | None = Field(
        None, description="false: its logins, sessions and API tokens are refused"
    )
    is_superuser: bool | None = None
    password: str | None = Field(
        None, max_length=1000, description="A new password; the account's browser sessions end"
    )
    unlock: bool = Field(
        False,
        description="Let the account log in again at once: its failed logins so far stop "
        "counting (those from an address still count for that address)",
    )


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    is_superuser: bool
    is_active: bool
    created_at: datetime


class PasswordChange(BaseModel):
    model_config = STRICT_INPUT

    current_password: str = Field(max_length=1000)
    new_password: str = Field(max_length=1000)


class TokenCreate(BaseModel):
    model_config = STRICT_INPUT

    name: str = Field(min_length=1, max_length=100)
    expires_at: AwareDatetime | None = Field(
        None,
        description="Optional expiry, ISO 8601 with a time zone (2030-01-01T00:00:00Z): "
        "a time without one is ambiguous and refused",
    )


class TokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: TokenKind
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The token itself; shown only in this response")


class MemberUpdate(BaseModel):
    model_config = STRICT_INPUT

    role: Role


class MemberPublic(BaseModel):
    user_id: int
    username: str
    role: Role
    created_at: datetime


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: int | None
    actor: str
    action: str
    project_id: int | None
    target_type: str
    target_id: int | None
    details: dict[str, Any]
