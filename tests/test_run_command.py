"""The README's first command: `samdsk run` starts the API and a worker on the embedded
default, serves requests, runs jobs, and Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.uploads import real_image

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base: str, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"`samdsk run` exited early with {process.returncode}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("`samdsk run` did not become healthy")


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_run_serves_runs_jobs_and_stops_cleanly(tmp_path: Path, stop: str) -> None:
    """Ctrl-C in a terminal (SIGINT to the whole process group) and a service manager's
    SIGTERM to the supervisor alone both stop the API and the worker with exit code 0; the
    output pipe closing (communicate returns) shows no child outlived the stop."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SAMDSK_")} | {
        "SAMDSK_DATA_DIR": str(tmp_path / "var"),
        "SAMDSK_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.entry", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, 90)
        password = (tmp_path / "var" / "initial-admin-password.txt").read_text().strip()
        login = httpx.post(
            f"{base}/api/v1/auth/login", json={"username": "admin", "password": password}
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # A client cannot pick its address with X-Forwarded-For to slip past the login limit.
        guess = {"username": "admin", "password": "a guess"}
        codes = [
            httpx.post(
                f"{base}/api/v1/auth/login", json=guess, headers={"X-Forwarded-For": f"10.0.0.{n}"}
            ).status_code
            for n in range(6)
        ]
        assert codes == [401] * 5 + [429], codes
        project = httpx.post(f"{base}/api/v1/projects", json={"name": "demo"}, headers=auth).json()
        path = real_image("busi", 7)[0]
        body = httpx.post(
            f"{base}/api/v1/projects/{project['id']}/images",
            files={"file": (path.name, path.read_bytes())},
            headers=auth,
        ).json()
        deadline = time.monotonic() + 60
        job_url = f"{base}/api/v1/jobs/{body['job_id']}"
        while httpx.get(job_url, headers=auth).json()["status"] != "succeeded":
            assert time.monotonic() < deadline, "the upload's job did not finish"
            time.sleep(0.3)
    finally:
        if stop == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
    assert "SamDSK stopped." in output
    assert f"created superuser 'admin' with password {password}" in output
    assert (tmp_path / "var" / "samdsk.db").is_file()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/api/v1/health", timeout=2)


def test_a_taken_port_is_said_at_once_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAMDSK_")} | {
            "SAMDSK_DATA_DIR": str(tmp_path / "var"),
            "SAMDSK_PORT": str(port),
        }
        done = subprocess.run(
            [sys.executable, "-m", "app.entry", "run"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "set SAMDSK_PORT" in done.stderr and "running" not in done.stdout
    assert not (tmp_path / "var").exists()  # nothing migrated, no admin made
