"""Runs the HTTP API (an ASGI app) inside the daemon's event loop on a socket we bind ourselves.

Binding the socket here, not in uvicorn, turns "address in use" into a clear error for the user,
and keeps uvicorn from installing its own signal handlers: the daemon owns shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

log = logging.getLogger("hyphal.api")


class ApiBindError(OSError):
    pass


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ApiBindError(
            f"cannot listen for the {what} on {host}:{port}: {exc.strerror}. "
            f"Is another hyphal running? Pick another address with --api-addr."
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class ApiServer:
    """One uvicorn server on one pre-bound socket."""

    def __init__(self, app: Any, host: str, port: int, what: str = "HTTP API") -> None:
        self.sock = bind_socket(host, port, what)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,  # hyphal.logs owns the handlers: uvicorn's lines are text or JSON too
            log_level=None,  # and its levels (uvicorn stays at WARNING unless --log-level names it)
            access_log=False,
            lifespan="off",
            loop="none",
            timeout_keep_alive=30,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[self.sock]))

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        self.sock.close()
