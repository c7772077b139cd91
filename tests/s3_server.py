"""A local S3 endpoint for tests: moto's server on 127.0.0.1, on a port the OS picks.

Tests talk to it over real HTTP with a real boto3 client, so request signing, error codes and
pagination are exercised as they would be against AWS or MinIO.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3

# moto's fake credentials; nothing is checked, but boto3 refuses to sign without them.
ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"
START_TIMEOUT_S = 20.0


class S3ServerUnavailable(RuntimeError):
    """The local S3 server could not be started (missing extras, no socket, ...)."""


@dataclass
class S3Server:
    endpoint_url: str
    _server: Any

    def client(self) -> Any:
        """A boto3 S3 client for this server with the fake credentials."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def stop(self) -> None:
        self._server.stop()


def start_s3_server() -> S3Server:
    """Start moto's threaded server; raise :class:`S3ServerUnavailable` saying why it failed."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # moto[server] pulls in flask and flask-cors
        raise S3ServerUnavailable(f"cannot import moto.server ({exc})") from exc

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # ThreadedMotoServer.start() waits for a ready signal that a failing bind never sends, so
    # it runs in a watcher thread that we give up on after a while.
    errors: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    watcher = threading.Thread(target=start, daemon=True)
    watcher.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while watcher.is_alive() and time.monotonic() < deadline:
        watcher.join(0.05)
        serving = getattr(server, "_thread", None)
        if serving is not None and not serving.is_alive():
            raise S3ServerUnavailable("moto server thread exited before listening (see stderr)")
    if errors:
        raise S3ServerUnavailable(f"{type(errors[0]).__name__}: {errors[0]}") from errors[0]
    if watcher.is_alive():
        raise S3ServerUnavailable(f"moto server did not come up within {START_TIMEOUT_S:.0f} s")
    host, port = server.get_host_and_port()
    return S3Server(endpoint_url=f"http://{host}:{port}", _server=server)
