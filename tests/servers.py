"""Serve an ASGI app with uvicorn on a free loopback port, in a background thread.

Tests use this to talk to real sockets with real clients (the openai SDK,
httpx), which exercises what an in-process ASGI transport would hide:
streaming, disconnects, timeouts and header encoding.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

_STARTUP_TIMEOUT_SECONDS = 60.0  # a proxy warms its models first: seconds on a loaded machine
_SHUTDOWN_TIMEOUT_SECONDS = 5


def free_port() -> int:
    """A loopback port free right now, for servers started as separate processes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """`with ThreadedServer(app) as server: httpx.get(server.url + "/v1/models")`.

    The listening socket is bound before the thread starts, so `url` is exact
    and no other process can grab the port in between.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. "http://127.0.0.1:54321"."""
        if self._url is None:
            raise RuntimeError("ThreadedServer.url is only known after start()")
        return self._url

    def start(self) -> None:
        """Start serving; returns once uvicorn accepts connections."""
        if self._server is not None:
            raise RuntimeError("ThreadedServer is already started")
        listening_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening_socket.bind(("127.0.0.1", 0))
        host, port = listening_socket.getsockname()
        config = uvicorn.Config(
            self._app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=_SHUTDOWN_TIMEOUT_SECONDS,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [listening_socket]},
            name=f"ThreadedServer:{port}",
            daemon=True,
        )
        self._server, self._thread, self._socket = server, thread, listening_socket
        self._url = f"http://{host}:{port}"
        thread.start()

        deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start serving on port {port}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut down and wait for the thread; safe to call twice or before start()."""
        server, thread, listening_socket = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is None or thread is None or listening_socket is None:
            return
        server.should_exit = True
        thread.join(_SHUTDOWN_TIMEOUT_SECONDS)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_SHUTDOWN_TIMEOUT_SECONDS)
        listening_socket.close()

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
