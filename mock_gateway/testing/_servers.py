"""Serving an ASGI app on a free loopback port, in a background thread of this process."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from ..server import server_config


def free_port_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


class LiveServer:
    """Uvicorn serving an app on a loopback port, in a background thread."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", **options: Any) -> None:
        """`options` go to `server_config` (such as another protocol)."""
        self._socket = free_port_socket(host)
        port = self._socket.getsockname()[1]
        self.base_url = f"http://{host}:{port}"
        self._server = uvicorn.Server(server_config(app, log_level="warning", lifespan="on", **options))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the mock gateway server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
