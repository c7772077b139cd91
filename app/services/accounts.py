"""Users, login with rate limiting, and bearer tokens (browser sessions and API tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized
from app.models import ApiToken, LoginAttempt, TokenKind, User, utcnow
from app.security import (
    check_password_strength,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)

# How precisely a token's last use is kept (shown to its owner in the token list).
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class LoginPolicy:
    """Failed password checks allowed within ``window_seconds``: per account from one
    address, per account from all addresses, and per address for all accounts."""

    window_seconds: int
    max_failures_per_account: int
    max_failures_per_account_everywhere: int
    max_failures_per_address: int


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    row: ApiToken


def create_user(
    *, session: Session, username: str, password: str, is_superuser: bool = False
) -> User:
    problem = check_password_strength(password)
    if problem:
        raise InvalidInput(problem)
    # Names differing only in case would be told apart by nobody reading a member list or an
    # audit trail (usernames are ASCII, so the database's lower() folds them on both backends).
    taken = session.scalar(
        select(User.username).where(func.lower(User.username) == username.lower())
    )
    if taken is not None:
        raise Conflict(f"user {taken!r} already exists")
    user = User(username=username, password_hash=hash_password(password), is_superuser=is_superuser)
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"user {username!r} already exists") from exc
    return user


def find_user(*, session: Session, username: str) -> User | None:
    """The user named ``username``, whatever its case: names are unique ignoring case, except
    pairs made before that rule, which only their exact spelling tells apart."""
    user = session.scalar(select(User).where(User.username == username))
    if user is not None:
        return user
    matches = session.scalars(
        select(User).where(func.lower(User.username) == username.lower()).limit(2)
    ).all()
    return matches[0] if len(matches) == 1 else None


def get_user_by_name(*, session: Session, username: str) -> User:
    user = find_user(session=session, username=username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    return user


def count_users(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def _recent_failures(session: Session, since: datetime, *conditions: ColumnElement[bool]) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.at >= since, LoginAttempt.succeeded.is_(False), *conditions)
        )
        or 0
    )


def _check_rate(session: Session, username: str, address: str, policy: LoginPolicy) -> None:
    """Refuse (429) a password check once too many have failed within the window.

    Guesses at an account count per address: a stranger guessing from elsewhere pauses only
    their own address for it, never its owner's login. Far more failures from all addresses
    together (a spread-out attack) pause the account everywhere, and a success or a site
    administrator's unlock starts its count again."""
    now = utcnow()
    since = now - timedelta(seconds=policy.window_seconds)
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username, LoginAttempt.succeeded.is_(True)
        )
    )
    cleared = session.scalar(
        select(func.max(User.login_failures_cleared_at)).where(
            func.lower(User.username) == username
        )
    )
    account_since = max(moment for moment in (since, last_success, cleared) if moment)
    account = LoginAttempt.username == username
    if (
        _recent_failures(session, account_since, account, LoginAttempt.address == address)
        >= policy.max_failures_per_account
        or _recent_failures(session, account_since, account)
        >= policy.max_failures_per_account_everywhere
        or _recent_failures(session, since, LoginAttempt.address == address)
        >= policy.max_failures_per_address
    ):
        raise TooManyRequests(
            "too many failed logins; wait and try again", retry_after=policy.window_seconds
        )


def login(
    *,
    session: Session,
    username: str,
    password: str,
    address: str,
    policy: LoginPolicy,
    session_hours: float,
) -> IssuedToken:
    """Check the password (rate-limited per account and address) and open a session."""
    # Attempts count per name ignoring case, as names are looked up: "Alice" and "ALICE" must
    # not each get their own allowance of guesses at one account.
    account = username.lower()
    _check_rate(session, account, address, policy)
    user = find_user(session=session, username=username)
    ok = user is not None and user.is_active and verify_password(password, user.password_hash)
    session.add(LoginAttempt(username=account, address=address, succeeded=ok))
    session.flush()
    if not ok or user is None:
        session.commit()  # the failure must count even though the request fails
        raise Unauthorized("wrong username or password")
    expires = utcnow() + timedelta(hours=session_hours)
    return issue_token(
        session=session, user=user, kind=TokenKind.SESSION, name="login", expires_at=expires
    )


def issue_token(
    *, session: Session, user: User, kind: TokenKind, name: str, expires_at: datetime | None
) -> IssuedToken:
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expires_at must be in the future")
    token = new_token()
    row = ApiToken(
        user_id=user.id,
        kind=kind,
        name=name,
        token_hash=token_digest(token),
        prefix=token[:10],
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return IssuedToken(token=token, row=row)


def authenticate_token(*, session: Session, token: str) -> tuple[User, ApiToken]:
    """The user behind a bearer token; Unauthorized if unknown, expired, revoked or inactive."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("invalid or revoked token")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("token expired")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("account disabled")
    return user, row


def record_token_use(*, session: Session, token: ApiToken) -> None:
    """Set the token's last use to now, at most once per ``TOKEN_USE_RESOLUTION``: a write per
    request would serialise every request of a busy client behind the database's write lock."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < TOKEN_USE_RESOLUTION:
        return
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token.id)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def revoke_token(*, session: Session, user: User, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"token {token_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def list_tokens(*, session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.kind == TokenKind.API)
            .order_by(ApiToken.id)
        )
    )


def change_password(
    *, session: Session, user: User, current: str, new: str, address: str, policy: LoginPolicy
) -> int:
    """Set a new password and end every browser session of the user; returns how many.

    A wrong current password is a 403, not a 401: the caller's token is fine, and a client
    that logs out on a 401 must not. Wrong guesses count as failed logins of the account, so
    a stolen session cannot try passwords faster than the login screen allows."""
    account = user.username.lower()
    _check_rate(session, account, address, policy)
    if not verify_password(current, user.password_hash):
        session.add(LoginAttempt(username=account, address=address, succeeded=False))
        session.commit()  # the failure must count even though the request fails
        raise Forbidden("current password is wrong")
    problem = check_password_strength(new)
    if problem:
        raise InvalidInput(problem)
    return _set_password(session, user, new)


def _set_password(session: Session, user: User, new: str) -> int:
    """Store ``new`` and end the user's browser sessions; returns how many ended."""
    now = utcnow()
    user.password_hash = hash_password(new)
    user.password_changed_at = now
    result = session.execute(
        update(ApiToken)
        .where(
            ApiToken.user_id == user.id,
            ApiToken.kind == TokenKind.SESSION,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def update_user(
    *,
    session: Session,
    user: User,
    is_active: bool | None,
    is_superuser: bool | None,
    password: str | None,
    unlock: bool = False,
) -> dict[str, object]:
    """A site administrator's change of an account: disable or enable it (a disabled account's
    tokens and sessions are refused until it is enabled again), make it a site administrator
    or not, set a new password (its browser sessions end), or unlock it (its failed logins so
    far stop counting). Returns what changed, for the audit trail (never the password). 409
    where no enabled site administrator would be left."""
    if password is not None:
        problem = check_password_strength(password)
        if problem:
            raise InvalidInput(problem)
    active = user.is_active if is_active is None else is_active
    superuser = user.is_superuser if is_superuser is None else is_superuser
    if user.is_active and user.is_superuser and not (active and superuser):
        others = session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.id != user.id, User.is_active.is_(True), User.is_superuser.is_(True))
        )
        if not others:
            raise Conflict(
                f"{user.username} is the only enabled site administrator; make another first"
            )
    changes: dict[str, object] = {}
    if active != user.is_active:
        user.is_active = changes["is_active"] = active
    if superuser != user.is_superuser:
        user.is_superuser = changes["is_superuser"] = superuser
    if password is not None:
        changes["password_set"] = True
        changes["sessions_ended"] = _set_password(session, user, password)
    if unlock:
        user.login_failures_cleared_at = utcnow()
        changes["unlocked"] = True
    return changes
