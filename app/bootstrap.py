"""The first superuser: from settings, from `samdsk create-admin`, or generated in development."""

from __future__ import annotations

import os
from pathlib import Path

from app.db import make_engine, make_session_factory, session_scope
from app.security import generate_password
from app.services.accounts import count_users, create_user
from app.services.audit import record
from app.settings import Environment, Settings

PASSWORD_FILE = "initial-admin-password.txt"


def password_file(settings: Settings) -> Path:
    return settings.data_dir / PASSWORD_FILE


def create_admin(settings: Settings, username: str, password: str) -> None:
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = create_user(
                session=session, username=username, password=password, is_superuser=True
            )
            record(
                session=session,
                actor=None,
                action="user.create",
                target_type="user",
                target_id=user.id,
                details={"username": username, "is_superuser": True},
            )
    finally:
        engine.dispose()


def ensure_initial_admin(settings: Settings) -> str:
    """Create the first superuser if there are no users; returns how to log in, in words."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            has_users = count_users(session=session) > 0
    finally:
        engine.dispose()
    username = settings.admin_username
    if has_users:
        saved = password_file(settings)
        if saved.is_file():
            return f"log in as {username!r}; its first password is in {saved.resolve()}"
        return "log in with your account (create one with `samdsk create-admin`)"
    if settings.admin_password:
        create_admin(settings, username, settings.admin_password)
        return f"created superuser {username!r} with the password from SAMDSK_ADMIN_PASSWORD"
    if settings.environment is not Environment.DEVELOPMENT:
        return "no users yet: create the first superuser with `samdsk create-admin`"
    password = generate_password()
    create_admin(settings, username, password)
    saved = password_file(settings)
    saved.write_text(password + "\n")
    os.chmod(saved, 0o600)
    return (
        f"created superuser {username!r} with password {password} "
        f"(also saved in {saved.resolve()}; change it after logging in)"
    )
