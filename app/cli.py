"""Service commands: ``samdsk run | api | worker | migrate``.

``run`` is the embedded all-in-one: it migrates the database, starts one Celery worker and the
API as child processes, prints the URL, and stops both cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from alembic import command
from alembic.config import Config

from app.bootstrap import create_admin, ensure_initial_admin
from app.errors import AppError
from app.queue import interactive_queue
from app.settings import Settings, get_settings

log = logging.getLogger("samdsk")

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICE_COMMANDS = ("run", "api", "worker", "migrate", "create-admin")
SETTINGS_HELP = """settings are environment variables (or lines of .env), among them:
  SAMDSK_HOST, SAMDSK_PORT     where the API listens (127.0.0.1:8000)
  SAMDSK_DATA_DIR              embedded database, files and broker queue (./var)
  SAMDSK_DATABASE_URL          e.g. postgresql+psycopg://user@host/samdsk (SQLite if unset)
  SAMDSK_BROKER_URL            e.g. redis://host:6379/0 (a filesystem queue if unset)
  SAMDSK_SAM_CHECKPOINT        a local SAM .pth (offline proposals if unset)
the README's Configuration table lists them all"""
# How long `run` waits for its children to stop before it kills them. The worker needs only
# seconds: its running jobs hand themselves back instead of running to their end.
STOP_SECONDS = 20


def alembic_config(database_url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    """``alembic upgrade head`` against the configured database."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.resolved_database_url), revision)


def worker_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "--loglevel=INFO", f"--concurrency={settings.worker_concurrency}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--hostname=samdsk-worker@%h",
        f"--queues={settings.queue_name},{interactive_queue(settings)}",
    ]  # fmt: skip


def api_command(settings: Settings) -> list[str]:
    # X-Forwarded-For only from the proxies named: uvicorn's default trusts any local client,
    # which could then pick its address and slip past the per-address login limits.
    proxies = settings.forwarded_allow_ips
    forwarding = (
        ["--proxy-headers", f"--forwarded-allow-ips={proxies}"]
        if proxies
        else ["--no-proxy-headers"]
    )
    return [
        sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
        "--host", settings.host, "--port", str(settings.port), *forwarding,
    ]  # fmt: skip


def port_problem(settings: Settings) -> str | None:
    """Why the API could not listen where it is set to (the port is taken, say), or None.
    Checked before anything starts, so that the message is the first and only thing seen."""
    with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((settings.host, settings.port))
        except OSError as error:
            return (
                f"cannot listen on {settings.host}:{settings.port}: {error.strerror}; "
                "set SAMDSK_PORT (or SAMDSK_HOST) to another"
            )
    return None


def _wait_until_serving(
    settings: Settings, api: subprocess.Popen[bytes], stopped: Callable[[], bool]
) -> bool:
    """Whether the API answers its health check, waiting while it starts (imports take
    seconds); False if it exited or a stop came first."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/api/v1/health"
    while api.poll() is None and not stopped():
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return True
        except OSError:  # refused while starting, or a timeout
            pass
        time.sleep(0.2)
    return False


def run_all(settings: Settings) -> int:
    """Migrate, then supervise a worker and the API until Ctrl-C or one of them exits."""
    problem = port_problem(settings)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        return 2
    migrate(settings)
    login_hint = ensure_initial_admin(settings)
    # Each child in its own process group: Ctrl-C reaches only this supervisor, which stops
    # them with SIGTERM. Celery ends a SIGINT shutdown with exit code 1 and a SIGTERM one
    # with 0, so a terminal's SIGINT racing this SIGTERM made clean stops look failed.
    children = [
        subprocess.Popen(worker_command(settings), process_group=0),
        subprocess.Popen(api_command(settings), process_group=0),
    ]
    stopping = False

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: the terminal closed
        signal.signal(signum, _stop)
    if not _wait_until_serving(settings, children[1], lambda: stopping):
        return _terminate(children)
    print(f"SamDSK is running at http://{settings.host}:{settings.port}/", flush=True)
    print(f"  API docs: http://{settings.host}:{settings.port}/docs", flush=True)
    print(f"  {login_hint}", flush=True)
    print(f"  data folder: {settings.data_dir.resolve()}  (Ctrl-C stops everything)", flush=True)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    return _terminate(children)


def _terminate(children: list[subprocess.Popen[bytes]]) -> int:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    print("SamDSK stopped.", flush=True)
    clean = (0, -signal.SIGTERM, -signal.SIGINT)
    failed = [(child, child.returncode) for child in children if child.returncode not in clean]
    for child, code in failed:
        # Which process ended badly, so that a failed stop can be traced to its log above.
        print(f"  {str(child.args)[:100]} exited with code {code}", flush=True)
    return 1 if failed else 0


def _create_admin(settings: Settings, username: str, from_stdin: bool) -> int:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {username}: ")
        if password != getpass.getpass("again: "):
            print("passwords differ", file=sys.stderr)
            return 2
    try:
        create_admin(settings, username, password)
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"superuser {username!r} created")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="samdsk",
        description="SamDSK service commands",
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "migrate, then run the API and a worker (embedded default)"),
        ("api", "run the API server"),
        ("worker", "run a Celery worker"),
        ("migrate", "upgrade the database schema to the newest revision"),
    ):
        sub.add_parser(
            name,
            help=text,
            description=text,
            epilog=SETTINGS_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    admin = sub.add_parser("create-admin", help="create a site administrator (superuser)")
    admin.add_argument("--username", required=True)
    admin.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if args.command == "migrate":
        migrate(settings)
        return 0
    if args.command == "create-admin":
        return _create_admin(settings, args.username, args.password_stdin)
    if args.command == "api":
        print(ensure_initial_admin(settings), flush=True)
        return subprocess.call(api_command(settings))
    if args.command == "worker":
        return subprocess.call(worker_command(settings))
    return run_all(settings)


if __name__ == "__main__":  # python -m app.cli run: the same as `samdsk run`
    sys.exit(main())
