"""One public ingress listener: accept TCP, pick the nearest healthy instance of the service,
connect to it over the overlay, send the PROXY header, splice.

The header goes out in one write before any client byte: ``src`` is the client's address and
port, ``dst`` the address and port the client dialled (this listener's local end of the
connection), both in one family. The overlay address of the instance never appears in it.
Client bytes are never read before the backend is connected, and never looked at (TLS passes
through untouched).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from ipaddress import IPv6Address, ip_address
from typing import Any

from hyphal.ingress.limits import Admission, ClientIP
from hyphal.ingress.proxy import Address, encode_v1, encode_v2, normalise
from hyphal.ingress.spec import IngressSpec, show_endpoint
from hyphal.ingress.splice import bound_buffers, splice
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


class IngressListener:
    def __init__(self, spec: IngressSpec, directory: ServiceDirectory) -> None:
        self.spec = spec
        self.directory = directory
        self.admission = Admission(spec.limits)
        self.counters: Counter[str] = Counter()
        self.server: asyncio.Server | None = None
        self.error: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_instance: Instance | None = None

    @property
    def bound(self) -> tuple[str, int] | None:
        if self.server is None or not self.server.sockets:
            return None
        raw = self.server.sockets[0].getsockname()
        return raw[0], raw[1]

    async def start(self) -> None:
        host, port = self.spec.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.server = await asyncio.start_server(
                self._accepted,
                host,
                port,
                family=family,
                reuse_address=True,
                backlog=1024,
                limit=self.spec.limits.buffer_bytes,
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
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:  # so stop() can end the connections still open
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        with contextlib.suppress(asyncio.CancelledError):  # stop(): asyncio logs a cancelled one
            await self.serve(reader, writer)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters["accepted"] += 1
        try:
            client = sock_address(writer.get_extra_info("peername"))
            dialled = sock_address(writer.get_extra_info("sockname"))
        except (TypeError, ValueError, IndexError):
            writer.transport.abort()
            return
        ip: ClientIP = client[0]
        refused = self.admission.admit(ip)
        if refused is not None:
            self.counters[refused] += 1
            writer.transport.abort()
            return
        try:
            await self._proxy(reader, writer, client, dialled)
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        finally:
            self.admission.release(ip)

    async def _proxy(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: Address,
        dialled: Address,
    ) -> None:
        backend = await self._connect(client)
        if backend is None:
            writer.transport.abort()
            return
        b_reader, b_writer = backend
        src, dst = normalise(client, dialled)
        header = proxy_header(self.spec.proxy, src, dst)
        if header:
            b_writer.write(header)  # one write, on a fresh connection, before any client byte
        bound_buffers(writer, self.spec.limits.buffer_bytes)
        bound_buffers(b_writer, self.spec.limits.buffer_bytes)
        self.counters["proxied"] += 1
        await splice((reader, writer), (b_reader, b_writer), self.spec.limits.idle_timeout,
                     self.counters)

    async def _connect(
        self, client: Address
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        limits = self.spec.limits
        instances = self.directory.instances(self.spec.service, "tcp")[: limits.connect_attempts]
        if not instances:
            self.counters["no-instance"] += 1
            log.warning(
                "ingress %s: no healthy instance of %s; closed %s (check `hyphal service list`)",
                self.spec.key,
                self.spec.service,
                show_endpoint(str(client[0]), client[1]),
            )
            return None
        for n, instance in enumerate(instances):
            try:
                async with asyncio.timeout(limits.connect_timeout):
                    pair = await asyncio.open_connection(
                        str(instance.address), instance.port, limit=limits.buffer_bytes
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
            return pair
        self.counters["all-failed"] += 1
        return None

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

