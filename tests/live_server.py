"""A real SamDSK server on a free port of 127.0.0.1, started the way a user starts it
(``samdsk run``: API and worker; or ``samdsk api`` alone), on the embedded default (SQLite,
filesystem broker, local files) in a folder of its own. Used by the browser tests and by the
review latency benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "browser-admin-password-0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``command`` is ``run`` (API + one worker process) or ``api`` (the API alone, migrated
    first). ``settings`` reaches the same database and files through the data layer."""

    def __init__(self, data_dir: Path, *, command: str = "run", timeout: float = 120) -> None:
        self.command = command
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAMDSK_")} | {
            "SAMDSK_DATA_DIR": str(data_dir),
            "SAMDSK_PORT": str(self.port),
            "SAMDSK_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SAMDSK_WORKER_CONCURRENCY": "1",  # the machine running tests has few cores
            "SAMDSK_JOB_SWEEP_SECONDS": "2",
        }
        self.settings = Settings(data_dir=data_dir)
        if command == "api":
            entry = [sys.executable, "-m", "app.entry"]
            subprocess.run([*entry, "migrate"], env=env, cwd=data_dir.parent, check=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.entry", command],
            cwd=data_dir.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole, children included
        )
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.log()}")
            # `run` also starts a worker: it must be listening before a round is started.
            worker_ready = self.command == "api" or " ready." in self.log()
            try:
                if worker_ready and httpx.get(f"{self.base}/api/v1/health", timeout=2).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        answer = httpx.post(
            f"{self.base}/api/v1/auth/login", json={"username": username, "password": password}
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def client(self) -> httpx.Client:
        """An API client logged in as the first superuser."""
        return httpx.Client(
            base_url=f"{self.base}/api/v1",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C: `samdsk run` stops its children
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
