"""Accounts: login, rate limiting, token expiry and revocation, password change, audit."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.main import create_app
from app.models import ApiToken, Role, utcnow
from app.runtime import Runtime
from app.security import token_digest
from app.settings import Settings
from tests.accounts import PASSWORD, bearer, make_user
from tests.uploads import create_project


def _login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_login_opens_a_session_and_logout_ends_it(
    anon_client: TestClient, runtime: Runtime
) -> None:
    make_user(runtime, "dr.lee")
    token = _login(anon_client, "dr.lee")
    me = anon_client.get("/api/v1/users/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["username"] == "dr.lee"
    assert anon_client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    gone = anon_client.get("/api/v1/users/me", headers=bearer(token))
    assert gone.status_code == 401 and gone.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_password_and_unknown_user_look_the_same(
    anon_client: TestClient, runtime: Runtime
) -> None:
    make_user(runtime, "dr.lee")
    wrong = anon_client.post("/api/v1/auth/login", json={"username": "dr.lee", "password": "x"})
    nobody = anon_client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_login_rate_limited_per_account(anon_client: TestClient, runtime: Runtime) -> None:
    make_user(runtime, "dr.lee")
    limit = runtime.settings.login_max_failures_per_account
    for _ in range(limit):
        bad = anon_client.post("/api/v1/auth/login", json={"username": "dr.lee", "password": "no"})
        assert bad.status_code == 401
    blocked = anon_client.post(
        "/api/v1/auth/login", json={"username": "dr.lee", "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) == runtime.settings.login_window_seconds
    make_user(runtime, "dr.kim")  # other accounts are not locked out by it
    assert _login(anon_client, "dr.kim")


def test_guesses_from_elsewhere_never_lock_the_owner_out(runtime: Runtime) -> None:
    """A stranger's wrong guesses pause the account only for the stranger's address; the
    owner, from their own address, logs in as ever."""
    make_user(runtime, "dr.lee")
    limit = runtime.settings.login_max_failures_per_account
    guess = {"username": "dr.lee", "password": "a guess"}
    with (
        TestClient(create_app(runtime=runtime), client=("203.0.113.7", 4000)) as stranger,
        TestClient(create_app(runtime=runtime), client=("198.51.100.2", 4000)) as owner,
    ):
        for _ in range(limit):
            assert stranger.post("/api/v1/auth/login", json=guess).status_code == 401
        assert stranger.post("/api/v1/auth/login", json=guess).status_code == 429
        assert _login(owner, "dr.lee")
        # The owner's own mistakes count apart from the stranger's.
        assert owner.post("/api/v1/auth/login", json=guess).status_code == 401
        assert _login(owner, "dr.lee")


def test_guessing_spread_over_many_addresses_pauses_the_account(runtime: Runtime) -> None:
    make_user(runtime, "dr.lee")
    runtime.settings.login_max_failures_per_account_everywhere = 6
    guess = {"username": "dr.lee", "password": "a guess"}
    for number in range(6):
        with TestClient(create_app(runtime=runtime), client=(f"192.0.2.{number}", 1)) as one:
            assert one.post("/api/v1/auth/login", json=guess).status_code == 401
    with TestClient(create_app(runtime=runtime), client=("198.51.100.2", 1)) as owner:
        right = {"username": "dr.lee", "password": PASSWORD}
        assert owner.post("/api/v1/auth/login", json=right).status_code == 429


def test_names_are_found_whatever_their_case(
    anon_client: TestClient, client: TestClient, runtime: Runtime
) -> None:
    make_user(runtime, "alice")
    assert _login(anon_client, "ALICE")
    project = create_project(client)
    added = client.put(f"/api/v1/projects/{project['id']}/members/Alice", json={"role": "viewer"})
    assert added.status_code in (200, 201), added.text
    assert added.json()["username"] == "alice"


def test_login_guesses_count_per_account_whatever_the_case(
    anon_client: TestClient, runtime: Runtime
) -> None:
    make_user(runtime, "dr.ray")
    limit = runtime.settings.login_max_failures_per_account
    for attempt in range(limit):
        name = "dr.ray".upper() if attempt % 2 else "dr.ray"
        bad = anon_client.post("/api/v1/auth/login", json={"username": name, "password": "no"})
        assert bad.status_code == 401
    blocked = anon_client.post(
        "/api/v1/auth/login", json={"username": "Dr.Ray", "password": PASSWORD}
    )
    assert blocked.status_code == 429


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_login_rate_limited_per_address(anon_client: TestClient, runtime: Runtime) -> None:
    runtime.settings.login_max_failures_per_address = 3
    make_user(runtime, "dr.lee")
    for name in ("a1", "a2", "a3"):
        anon_client.post("/api/v1/auth/login", json={"username": name, "password": "no"})
    blocked = anon_client.post(
        "/api/v1/auth/login", json={"username": "dr.lee", "password": PASSWORD}
    )
    assert blocked.status_code == 429


def test_api_token_shown_once_listed_hashed_and_revocable(
    anon_client: TestClient, runtime: Runtime
) -> None:
    _, token = make_user(runtime, "pacs-bridge")
    created = anon_client.post("/api/v1/tokens", json={"name": "router"}, headers=bearer(token))
    assert created.status_code == 201
    secret = created.json()["token"]
    listed = anon_client.get("/api/v1/tokens", headers=bearer(secret)).json()
    assert all("token" not in row for row in listed)
    with runtime.session_factory() as session:
        hashes = set(session.scalars(select(ApiToken.token_hash)))
    assert token_digest(secret) in hashes and secret not in hashes
    revoked = anon_client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=bearer(token))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert anon_client.get("/api/v1/users/me", headers=bearer(secret)).status_code == 401
    assert anon_client.get("/api/v1/users/me", headers=bearer(token)).status_code == 200


def test_expired_token_is_refused(anon_client: TestClient, runtime: Runtime) -> None:
    _, token = make_user(runtime, "temp")
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    created = anon_client.post(
        "/api/v1/tokens", json={"name": "short", "expires_at": soon}, headers=bearer(token)
    ).json()
    assert anon_client.get("/api/v1/users/me", headers=bearer(created["token"])).status_code == 200
    with runtime.session_factory() as session:
        row = session.get(ApiToken, created["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    expired = anon_client.get("/api/v1/users/me", headers=bearer(created["token"]))
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    past = (utcnow() - timedelta(hours=1)).isoformat()
    refused = anon_client.post(
        "/api/v1/tokens", json={"name": "past", "expires_at": past}, headers=bearer(token)
    )
    assert refused.status_code == 422


def test_usernames_differing_only_in_case_are_one_name(client: TestClient) -> None:
    created = client.post("/api/v1/users", json={"username": "viewer1", "password": PASSWORD})
    assert created.status_code == 201, created.text
    before = client.get("/api/v1/users").json()
    again = client.post("/api/v1/users", json={"username": "VIEWER1", "password": PASSWORD})
    assert again.status_code == 409 and "'viewer1' already exists" in again.text
    assert client.get("/api/v1/users").json() == before


def test_token_expiry_without_a_time_zone_is_refused(
    anon_client: TestClient, runtime: Runtime
) -> None:
    _, token = make_user(runtime, "naive")
    naive = (utcnow() + timedelta(days=30)).replace(tzinfo=None).isoformat()
    refused = anon_client.post(
        "/api/v1/tokens", json={"name": "naive", "expires_at": naive}, headers=bearer(token)
    )
    assert refused.status_code == 422 and "timezone" in refused.json()["error"]["message"]
    listed = anon_client.get("/api/v1/tokens", headers=bearer(token)).json()
    assert "naive" not in [row["name"] for row in listed]


def test_token_use_is_recorded_at_most_once_a_minute(
    anon_client: TestClient, runtime: Runtime
) -> None:
    _, token = make_user(runtime, "tracked")
    secret = anon_client.post(
        "/api/v1/tokens", json={"name": "tool"}, headers=bearer(token)
    ).json()["token"]

    def last_used() -> object:
        with runtime.session_factory() as session:
            return session.scalar(
                select(ApiToken.last_used_at).where(ApiToken.token_hash == token_digest(secret))
            )

    assert last_used() is None
    anon_client.get("/api/v1/users/me", headers=bearer(secret))  # a read records it too
    first = last_used()
    assert first is not None
    anon_client.get("/api/v1/users/me", headers=bearer(secret))
    assert last_used() == first


def test_password_change_ends_sessions_but_not_api_tokens(
    anon_client: TestClient, runtime: Runtime
) -> None:
    _, api_token = make_user(runtime, "dr.lee")
    first, second = _login(anon_client, "dr.lee"), _login(anon_client, "dr.lee")
    new = "a brand new passphrase"
    wrong = anon_client.post(
        "/api/v1/users/me/password",
        json={"current_password": "nope", "new_password": new},
        headers=bearer(first),
    )
    assert wrong.status_code == 403 and "WWW-Authenticate" not in wrong.headers  # still logged in
    weak = anon_client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(first),
    )
    assert weak.status_code == 422
    changed = anon_client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers=bearer(first),
    )
    assert changed.status_code == 204
    for session_token in (first, second):
        assert anon_client.get("/api/v1/users/me", headers=bearer(session_token)).status_code == 401
    assert anon_client.get("/api/v1/users/me", headers=bearer(api_token)).status_code == 200
    assert _login(anon_client, "dr.lee", new)
    old = anon_client.post("/api/v1/auth/login", json={"username": "dr.lee", "password": PASSWORD})
    assert old.status_code == 401


def test_projects_listing_shows_only_memberships(client: TestClient, runtime: Runtime) -> None:
    mine = create_project(client, name="mine")
    create_project(client, name="theirs")
    _, token = make_user(runtime, "viewer", roles={int(mine["id"]): Role.VIEWER})  # type: ignore[call-overload]
    listed = client.get("/api/v1/projects", headers=bearer(token)).json()
    assert [p["name"] for p in listed["data"]] == ["mine"] and listed["count"] == 1


def test_projects_tell_the_caller_its_role(client: TestClient, runtime: Runtime) -> None:
    project = create_project(client)
    assert project["my_role"] == "admin"  # its creator
    path = f"/api/v1/projects/{project['id']}"
    assert client.get(path).json()["my_role"] == "admin"  # a site administrator, not a member
    for role in (Role.VIEWER, Role.REVIEWER):
        _, token = make_user(runtime, f"dr.{role.value}", roles={int(project["id"]): role})  # type: ignore[call-overload]
        assert client.get(path, headers=bearer(token)).json()["my_role"] == role.value
        listed = client.get("/api/v1/projects", headers=bearer(token)).json()["data"]
        assert [p["my_role"] for p in listed] == [role.value]


def test_project_keeps_its_last_admin(client: TestClient, runtime: Runtime) -> None:
    project = create_project(client)
    _, token = make_user(runtime, "boss", roles={int(project["id"]): Role.ADMIN})  # type: ignore[call-overload]
    members = f"/api/v1/projects/{project['id']}/members"
    assert client.delete(f"{members}/root").status_code == 204
    demote = client.put(f"{members}/boss", json={"role": "viewer"}, headers=bearer(token))
    assert demote.status_code == 409
    assert client.delete(f"{members}/boss", headers=bearer(token)).status_code == 409


def test_audit_records_who_did_what(client: TestClient, runtime: Runtime) -> None:
    project = create_project(client)
    make_user(runtime, "dr.kim")
    base = f"/api/v1/projects/{project['id']}"
    client.put(f"{base}/members/dr.kim", json={"role": "reviewer"})
    client.post("/api/v1/tokens", json={"name": "script"})
    events = client.get(f"{base}/audit").json()["data"]
    assert [e["action"] for e in events] == ["member.set", "project.create"]
    assert events[0]["actor"] == "root" and events[0]["details"]["role"] == "reviewer"
    site = client.get("/api/v1/audit").json()["data"]
    assert site[0]["action"] == "token.create" and site[0]["details"]["name"] == "script"


def test_create_admin_command(settings: Settings, runtime: Runtime, tmp_path: Path) -> None:
    env = {
        "SAMDSK_ENVIRONMENT": "test",
        "SAMDSK_SECRET_KEY": settings.secret_key,
        "SAMDSK_DATA_DIR": str(settings.data_dir),
        "SAMDSK_DATABASE_URL": settings.resolved_database_url,
        "PATH": "/usr/bin:/bin",
    }
    command = [
        sys.executable,
        "-m",
        "app.entry",
        "create-admin",
        "--username",
        "chief",
        "--password-stdin",
    ]
    done = subprocess.run(command, input=PASSWORD + "\n", capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    again = subprocess.run(command, input=PASSWORD + "\n", capture_output=True, text=True, env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    weak = subprocess.run(
        [*command[:-2], "weakling", "--password-stdin"],
        input="123\n",
        capture_output=True,
        text=True,
        env=env,
    )
    assert weak.returncode == 2 and "at least" in weak.stderr
    with TestClient(
        __import__("app.main", fromlist=["create_app"]).create_app(runtime=runtime)
    ) as client:
        token = _login(client, "chief")
        assert client.get("/api/v1/users/me", headers=bearer(token)).json()["is_superuser"] is True


def test_wrong_current_passwords_count_as_failed_logins(
    anon_client: TestClient, runtime: Runtime
) -> None:
    """A stolen session cannot guess the password faster than the login screen allows."""
    make_user(runtime, "dr.lee")
    token = _login(anon_client, "dr.lee")
    limit = runtime.settings.login_max_failures_per_account
    guess = {"current_password": "a guess", "new_password": "a brand new passphrase"}
    url = "/api/v1/users/me/password"
    codes = [
        anon_client.post(url, json=guess, headers=bearer(token)).status_code for _ in range(limit)
    ]
    assert codes == [403] * limit
    right = {**guess, "current_password": PASSWORD}
    blocked = anon_client.post(url, json=right, headers=bearer(token))
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    login = {"username": "dr.lee", "password": PASSWORD}
    assert anon_client.post("/api/v1/auth/login", json=login).status_code == 429


def test_a_site_administrator_disables_promotes_and_resets_accounts(
    client: TestClient, anon_client: TestClient, runtime: Runtime
) -> None:
    _, api_token = make_user(runtime, "dr.lee")
    session_token = _login(anon_client, "dr.lee")
    url = "/api/v1/users/DR.LEE"  # found whatever the case, as at login
    disabled = client.patch(url, json={"is_active": False})
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    for token in (api_token, session_token):
        refused = anon_client.get("/api/v1/users/me", headers=bearer(token))
        assert refused.status_code == 401 and "disabled" in refused.json()["error"]["message"]
    login = {"username": "dr.lee", "password": PASSWORD}
    assert anon_client.post("/api/v1/auth/login", json=login).status_code == 401
    assert client.patch(url, json={"is_active": True}).json()["is_active"] is True
    assert anon_client.get("/api/v1/users/me", headers=bearer(api_token)).status_code == 200

    new = "set by the administrator"
    reset = client.patch(url, json={"password": new})
    assert reset.status_code == 200
    assert anon_client.get("/api/v1/users/me", headers=bearer(session_token)).status_code == 401
    assert _login(anon_client, "dr.lee", new)
    assert client.patch(url, json={"password": "short"}).status_code == 422
    assert client.patch(url, json={"is_superuser": True}).json()["is_superuser"] is True
    events = [e for e in client.get("/api/v1/audit").json()["data"] if e["action"] == "user.update"]
    assert len(events) == 4 and all(new not in str(e["details"]) for e in events)
    assert client.patch("/api/v1/users/nobody", json={"is_active": False}).status_code == 404
    assert client.patch(url, json={"is_admin": True}).status_code == 422


def test_the_last_site_administrator_stays(client: TestClient, runtime: Runtime) -> None:
    """Disabling or demoting the only enabled site administrator would lock everyone out of
    user management."""
    before = client.get("/api/v1/users").json()
    for change in ({"is_active": False}, {"is_superuser": False}):
        refused = client.patch("/api/v1/users/root", json=change)
        assert refused.status_code == 409 and "only enabled site administrator" in refused.text
    assert client.get("/api/v1/users").json() == before
    make_user(runtime, "second", superuser=True)
    assert client.patch("/api/v1/users/second", json={"is_active": False}).status_code == 200
    assert client.patch("/api/v1/users/root", json={"is_superuser": False}).status_code == 409


def test_a_site_administrator_unlocks_a_paused_account(
    anon_client: TestClient, client: TestClient, runtime: Runtime
) -> None:
    """Wrong guesses paused the account for this address; after the unlock its owner logs in
    from it at once, and new failures count from there."""
    make_user(runtime, "dr.lee")
    limit = runtime.settings.login_max_failures_per_account
    guess = {"username": "dr.lee", "password": "a guess"}
    for _ in range(limit):
        assert anon_client.post("/api/v1/auth/login", json=guess).status_code == 401
    assert anon_client.post("/api/v1/auth/login", json=guess).status_code == 429
    unlocked = client.patch("/api/v1/users/dr.lee", json={"unlock": True})
    assert unlocked.status_code == 200, unlocked.text
    assert _login(anon_client, "dr.lee")
    events = [e for e in client.get("/api/v1/audit").json()["data"] if e["action"] == "user.update"]
    assert events[0]["details"]["unlocked"] is True
