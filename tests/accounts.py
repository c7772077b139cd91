"""Users and tokens for tests, made through the real data layer (one argon2 hash per run)."""

from __future__ import annotations

from functools import lru_cache

from app.db import session_scope
from app.models import Project, Role, TokenKind, User
from app.runtime import Runtime
from app.security import hash_password
from app.services.accounts import issue_token
from app.services.members import set_role

PASSWORD = "correct horse battery staple"


@lru_cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def make_user(
    runtime: Runtime,
    username: str,
    *,
    superuser: bool = False,
    roles: dict[int, Role] | None = None,
) -> tuple[int, str]:
    """Create a user (password PASSWORD) with project roles; returns (user id, API token)."""
    with session_scope(runtime.session_factory) as session:
        user = User(username=username, password_hash=password_hash(), is_superuser=superuser)
        session.add(user)
        session.flush()
        for project_id, role in (roles or {}).items():
            project = session.get(Project, project_id)
            assert project is not None
            set_role(session=session, project=project, user=user, role=role)
        token = issue_token(
            session=session, user=user, kind=TokenKind.API, name="tests", expires_at=None
        ).token
        return user.id, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
