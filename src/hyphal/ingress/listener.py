"""One public ingress listener: accept TCP, pick the nearest healthy instance of the service,
connect to it over the overlay, send the PROXY header, splice.

The header goes out in one write before any client byte: ``src`` is the client's address and
port, ``dst`` the address and port the client dialled (this listener's local end of the
connection), both in one family. The overlay address of the instance never appears in it.
Client bytes are never read before the backend is connected, and never looked at (TLS passes
through untouched). The bytes move through :mod:`hyphal.ingress.pipe` (transport to transport).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from ipaddress import IPv6Address, ip_address
from typing import Any

from hyphal.ingress.limits import Admission, Limits
from hyphal.ingress.pipe import Pipe, Side
from hyphal.ingress.proxy import Address, encode_v1, encode_v2, normalise
from hyphal.ingress.spec import IngressSpec, show_endpoint
from hyphal.services.directory import Instance, ServiceDirectory

log = logging.getLogger("hyphal.ingress")


def sock_address(raw: Any) -> Address:
    """A socket's (host, port, ...) tuple as an (ip, port) with v4-mapped addresses unmapped."""
    ip = ip_address(raw[0].split("%", 1)[0])
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip, int(raw[1])


def proxy_header(mode: str, client: Address, dialled: Address) -> bytes:
    if mode == "v2":
        return encode_v2(client, dialled)
    if mode == "v1":
        return encode_v1(client, dialled)
    return b""


class ListenerBase:
    """What the ingress and unwrap listeners share: admission per client, counters, the
    server, the connection tasks, and shutting those down."""

    def __init__(self, limits: Limits) -> None:
        self.admission = Admission(limits)
        self.counters: Counter[str] = Counter()
        self.server: asyncio.Server | None = None
        self.error: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def bound(self) -> tuple[str, int] | None:
        if self.server is None or not self.server.sockets:
            return None
        raw = self.server.sockets[0].getsockname()
        return raw[0], raw[1]

    async def _shut(self) -> None:
        """Stop accepting, cancel every connection's task and wait for them, close the server."""
        if self.server is not None:
            self.server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None


class ClientSide(Side):
    """The client's end: reading waits until the backend is connected and the header sent."""

    def __init__(self, pipe: Pipe, listener: IngressListener) -> None:
        super().__init__(pipe, True)
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        self.listener.accepted(self.pipe)


class IngressListener(ListenerBase):
    def __init__(self, spec: IngressSpec, directory: ServiceDirectory) -> None:
        super().__init__(spec.limits)
        self.spec = spec
        self.directory = directory
        self._pipes: set[Pipe] = set()
        self.last_instance: Instance | None = None

    def _side(self) -> Side:
        limits = self.spec.limits
        pipe = Pipe(limits.idle_timeout, limits.buffer_bytes, asyncio.get_running_loop())
        pipe.client = ClientSide(pipe, self)
        return pipe.client

    async def start(self) -> None:
        host, port = self.spec.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        loop = asyncio.get_running_loop()
        try:
            self.server = await loop.create_server(
                self._side, host, port, family=family, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            self.error = f"cannot listen on {self.spec.key}: {exc.strerror or exc}"
            raise
        self.error = None
        log.info(
            "ingress %s -> service %s (PROXY %s)", self.spec.key, self.spec.service, self.spec.proxy
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for pipe in list(self._pipes):
            pipe.finish("reset")
        await self._shut()

    def accepted(self, pipe: Pipe) -> None:
        """A client connected (its reading paused): admit it and start connecting."""
        self.counters["accepted"] += 1
        transport = pipe.client.transport
        assert transport is not None
        try:
            client = sock_address(transport.get_extra_info("peername"))
            dialled = sock_address(transport.get_extra_info("sockname"))
        except (TypeError, ValueError, IndexError):
            transport.abort()
            return
        refused = self.admission.admit(client[0])
        if refused is not None:
            self.counters[refused] += 1
            transport.abort()
            return
        self._pipes.add(pipe)
        task = asyncio.get_running_loop().create_task(self._run(pipe, client, dialled))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, pipe: Pipe, client: Address, dialled: Address) -> None:
        try:
            if not await self._connect(pipe, client):
                pipe.finish("reset")
                return
            if pipe.done.done():  # the client left while we connected
                return
            src, dst = normalise(client, dialled)
            header = proxy_header(self.spec.proxy, src, dst)
            assert pipe.backend.transport is not None
            if header:  # one write, on a fresh connection, before any client byte
                pipe.backend.transport.write(header)
            self.counters["proxied"] += 1
            pipe.join()
            result = await pipe.done
            self.counters[f"closed-{result.reason}"] += 1
            self.counters["bytes-up"] += result.up
            self.counters["bytes-down"] += result.down
        except Exception:  # a bug here must cost one connection, never the listener
            self.counters["error"] += 1
            log.exception("ingress %s: connection failed unexpectedly", self.spec.key)
        finally:
            pipe.finish("reset")
            self._pipes.discard(pipe)
            self.admission.release(client[0])

    async def _connect(self, pipe: Pipe, client: Address) -> bool:
        limits = self.spec.limits
        loop = asyncio.get_running_loop()
        instances = self.directory.instances(self.spec.service, "tcp")[: limits.connect_attempts]
        if not instances:
            self.counters["no-instance"] += 1
            log.warning(
                "ingress %s: no healthy instance of %s; closed %s (check `hyphal service list`)",
                self.spec.key,
                self.spec.service,
                show_endpoint(str(client[0]), client[1]),
            )
            return False
        for n, instance in enumerate(instances):
            if pipe.done.done():
                return False
            try:
                async with asyncio.timeout(limits.connect_timeout):
                    await loop.create_connection(
                        lambda: pipe.backend, str(instance.address), instance.port
                    )
            except (OSError, TimeoutError) as exc:
                self.counters["connect-failed"] += 1
                log.info(
                    "ingress %s: instance %s [%s]:%d did not connect (%s)%s",
                    self.spec.key,
                    instance.node_name or instance.public_key.hex()[:16],
                    instance.address,
                    instance.port,
                    "timeout" if isinstance(exc, TimeoutError) else exc.strerror or exc,
                    "; trying the next" if n + 1 < len(instances) else "",
                )
                continue
            self.last_instance = instance
            return True
        self.counters["all-failed"] += 1
        return False

    def status(self) -> dict[str, Any]:
        bound = self.bound
        last = self.last_instance
        return {
            "kind": "ingress",
            "state": "listening" if bound is not None else "error",
            "error": self.error,
            "bound": show_endpoint(*bound) if bound else None,
            "open": self.admission.open,
            "clients": self.admission.clients,
            "lastInstance": None
            if last is None
            else {
                "node": last.node_name,
                "publicKey": last.public_key.hex(),
                "address": str(last.address),
                "port": last.port,
            },
            "instances": len(self.directory.instances(self.spec.service, "tcp")),
            "counters": dict(self.counters),
        }
