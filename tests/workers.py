"""A real Celery worker process for tests, started the way ``samdsk run`` starts one."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.cli import worker_command
from app.settings import Settings

READY_TIMEOUT = 90.0


def worker_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SAMDSK_ENVIRONMENT": settings.environment.value,
            "SAMDSK_SECRET_KEY": settings.secret_key,
            "SAMDSK_DATA_DIR": str(settings.data_dir),
            "SAMDSK_DATABASE_URL": settings.resolved_database_url,
            "SAMDSK_BROKER_URL": settings.broker_url,
            "SAMDSK_STORAGE_URL": settings.resolved_storage_url,
            "SAMDSK_QUEUE_NAME": settings.queue_name,
            "SAMDSK_JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
            "SAMDSK_JOB_SWEEP_SECONDS": str(settings.job_sweep_seconds),
        }
    )
    return env


class WorkerProcess:
    """Starts ``celery worker`` and waits until it reports ready; collects its log."""

    def __init__(self, settings: Settings, log_path: Path, *, new_session: bool = False) -> None:
        self.log_path = log_path
        self._ready = threading.Event()
        self._lines: list[str] = []
        self.process = subprocess.Popen(
            worker_command(settings),
            env=worker_environment(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            start_new_session=new_session,  # its own process group, so it can be killed whole
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(READY_TIMEOUT):
            self.stop()
            raise RuntimeError(f"worker did not become ready:\n{self.log()}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)
            if " ready." in line:
                self._ready.set()

    def log(self) -> str:
        return "".join(self._lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log_path.write_text(self.log())


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, log: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; worker log:\n{log()}")
