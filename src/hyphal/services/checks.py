"""Running one health check against the local instance: tcp connect, HTTP GET, or a command.

Thin asyncio adapter for :mod:`hyphal.services.health`: each function returns ``(ok, detail)``
within ``timeout`` seconds and never raises for a failing backend. The instance is local, so a
check tries the loopback addresses and then the node's overlay address (a backend may bind to
any of them); the first that answers counts. At most :data:`MAX_CONCURRENT` checks run at once
(a semaphore in :class:`CheckRunner`); a command's output is discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from hyphal.services.spec import Check

MAX_CONCURRENT = 16
MAX_STATUS_LINE = 1024
LOCAL_HOSTS = ("127.0.0.1", "::1")


async def _connect(
    hosts: tuple[str, ...], port: int, deadline: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | str:
    loop = asyncio.get_running_loop()
    last = "no address to try"
    for host in hosts:
        left = deadline - loop.time()
        if left <= 0:
            return "timed out"
        try:
            async with asyncio.timeout(left):
                return await asyncio.open_connection(host, port)
        except TimeoutError:
            return f"connect to port {port} timed out"
        except OSError as exc:
            last = f"connect to port {port}: {exc.strerror or exc}"
    return last


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(0.5):
            await writer.wait_closed()


async def tcp_check(hosts: tuple[str, ...], port: int, timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    conn = await _connect(hosts, port, deadline)
    if isinstance(conn, str):
        return False, conn
    await _close(conn[1])
    return True, "connected"


async def http_check(
    hosts: tuple[str, ...],
    port: int,
    path: str,
    timeout: float,  # noqa: ASYNC109
) -> tuple[bool, str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    conn = await _connect(hosts, port, deadline)
    if isinstance(conn, str):
        return False, conn
    reader, writer = conn
    try:
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: localhost:{port}\r\nUser-Agent: hyphal-check\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        async with asyncio.timeout(max(0.0, deadline - loop.time())):
            await writer.drain()
            line = await reader.readuntil(b"\n")
    except TimeoutError:
        return False, f"GET {path}: no status line in time"
    except asyncio.LimitOverrunError:
        return False, f"GET {path}: status line too long"
    except (OSError, asyncio.IncompleteReadError) as exc:
        return False, f"GET {path}: {exc}"
    finally:
        await _close(writer)
    parts = line[:MAX_STATUS_LINE].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False, f"GET {path}: not an HTTP response"
    status = int(parts[1])
    return 200 <= status < 400, f"GET {path}: {status}"


async def exec_check(argv: list[str], timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return False, f"cannot run {argv[0]}: {exc.strerror or exc}"
    try:
        async with asyncio.timeout(timeout):
            code = await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        return False, f"{argv[0]} did not exit within {timeout:g} s (killed)"
    return code == 0, f"{argv[0]} exited {code}"


class CheckRunner:
    """Runs checks with bounded concurrency; ``hosts`` are tried in order for tcp and HTTP."""

    def __init__(self, extra_hosts: tuple[str, ...] = (), limit: int = MAX_CONCURRENT) -> None:
        self.hosts = LOCAL_HOSTS + extra_hosts
        self._slots = asyncio.Semaphore(limit)

    async def run(self, check: Check, port: int, timeout: float) -> tuple[bool, str]:  # noqa: ASYNC109
        async with self._slots:
            if check.kind == "tcp":
                return await tcp_check(self.hosts, port, timeout)
            if check.kind == "http":
                return await http_check(self.hosts, port, check.target, timeout)
            if check.kind == "exec":
                return await exec_check(check.argv(), timeout)
            return True, "no check"
