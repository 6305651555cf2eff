"""Transparent unwrap: for a backend that cannot read PROXY headers (ngircd, Solanum).

On the instance's node, a listener takes PROXY-wrapped connections from allowed senders (the
overlay and loopback by default), reads the header (with a deadline, bounded), and connects to
the local backend *from the client's address and port* (``IP_TRANSPARENT``), so the backend
sees the real client as its peer. The backend's replies to that address are routed back to us
by :mod:`hyphal.ingress.policy`. Needs CAP_NET_ADMIN (root); without it, or when the client's
family differs from the backend's, the connection is made from our own address and counted
(``untransparent``) instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from ipaddress import IPv4Address, ip_address
from typing import Any

from hyphal.ingress.listener import ListenerBase, sock_address
from hyphal.ingress.policy import PolicyRouting
from hyphal.ingress.proxy import Address, ProxyDecoder, ProxyError, ProxyHeader
from hyphal.ingress.spec import UnwrapSpec, show_endpoint
from hyphal.ingress.splice import bound_buffers, splice

log = logging.getLogger("hyphal.ingress")
IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)
IPV6_TRANSPARENT = 75


class UnwrapListener(ListenerBase):
    def __init__(self, spec: UnwrapSpec, routing: PolicyRouting) -> None:
        super().__init__(spec.limits)
        self.spec = spec
        self.routing = routing
        self._routed = False
        self._warned: set[str] = set()

    async def start(self) -> None:
        if self.spec.transparent:
            try:
                await self.routing.acquire(self.spec.backend[0], self.spec.route_table)
                self._routed = True
            except Exception as exc:  # netlink refuses without CAP_NET_ADMIN
                self.error = f"policy routing for transparent mode failed: {exc}"
                log.error(
                    "unwrap %s: %s; the backend will see this node's address instead of "
                    "clients' (run as root or with CAP_NET_ADMIN)",
                    self.spec.key,
                    self.error,
                )
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
            await self._unroute()
            self.error = f"cannot listen on {self.spec.key}: {exc.strerror or exc}"
            raise
        log.info(
            "unwrap %s -> %s (%s)",
            self.spec.key,
            show_endpoint(*self.spec.backend),
            "transparent: the backend sees client addresses" if self._routed else "plain",
        )

    async def _unroute(self) -> None:
        if self._routed:
            self._routed = False
            await self.routing.release(self.spec.backend[0], self.spec.route_table)

    async def stop(self) -> None:
        await self._shut()
        await self._unroute()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await self.serve(reader, writer)

    def _allowed(self, sender: Address) -> bool:
        return any(sender[0] in net for net in self.spec.allow)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters["accepted"] += 1
        try:
            sender = sock_address(writer.get_extra_info("peername"))
        except (TypeError, ValueError, IndexError):
            writer.transport.abort()
            return
        if not self._allowed(sender):
            self.counters["refused-sender"] += 1
            self._warn_once(
                f"sender {sender[0]}",
                f"unwrap {self.spec.key}: refused {sender[0]}, not in allow "
                f"({', '.join(map(str, self.spec.allow))})",
            )
            writer.transport.abort()
            return
        refused = self.admission.admit(sender[0])
        if refused is not None:
            self.counters[refused] += 1
            writer.transport.abort()
            return
        try:
            header, rest = await self._read_header(reader)
            if header is None:
                writer.transport.abort()
                return
            backend = await self._connect(header)
            if backend is None:
                writer.transport.abort()
                return
            b_writer = backend[1]
            if rest:
                b_writer.write(rest)
            bound_buffers(writer, self.spec.limits.buffer_bytes)
            bound_buffers(b_writer, self.spec.limits.buffer_bytes)
            self.counters["proxied"] += 1
            await splice((reader, writer), backend, self.spec.limits.idle_timeout, self.counters)
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        finally:
            self.admission.release(sender[0])

    async def _read_header(self, reader: asyncio.StreamReader) -> tuple[ProxyHeader | None, bytes]:
        decoder = ProxyDecoder()
        try:
            async with asyncio.timeout(self.spec.limits.header_timeout):
                while True:
                    data = await reader.read(decoder.max_header)
                    if not data:
                        self.counters["header-eof"] += 1
                        return None, b""
                    header = decoder.feed(data)
                    if header is not None:
                        return header, decoder.rest
        except TimeoutError:
            self.counters["header-timeout"] += 1
        except ProxyError as exc:
            self.counters["header-invalid"] += 1
            self._warn_once("invalid", f"unwrap {self.spec.key}: bad PROXY header: {exc}")
        except OSError:
            self.counters["header-eof"] += 1
        return None, b""

    async def _connect(
        self, header: ProxyHeader
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        loop = asyncio.get_running_loop()
        host, port = self.spec.backend
        backend_v4 = isinstance(ip_address(host), IPv4Address)
        family = socket.AF_INET if backend_v4 else socket.AF_INET6
        src = header.src
        spoof = self._routed and src is not None and isinstance(src[0], IPv4Address) == backend_v4
        if src is not None and self._routed and not spoof:
            self._warn_once(
                "family",
                f"unwrap {self.spec.key}: client {src[0]} and backend {host} differ in family; "
                "such clients reach the backend from this node's address",
            )
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if spoof and src is not None:
                level = socket.SOL_IP if backend_v4 else socket.IPPROTO_IPV6
                sock.setsockopt(level, IP_TRANSPARENT if backend_v4 else IPV6_TRANSPARENT, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((str(src[0]), src[1]))
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
                    sock.bind((str(src[0]), 0))  # the client's port is busy here: its address
                self.counters["transparent"] += 1
            else:
                self.counters["untransparent"] += 1
            async with asyncio.timeout(self.spec.limits.connect_timeout):
                await loop.sock_connect(sock, (host, port))
            return await asyncio.open_connection(sock=sock, limit=self.spec.limits.buffer_bytes)
        except (OSError, TimeoutError) as exc:
            sock.close()
            self.counters["connect-failed"] += 1
            self._warn_once(
                "connect",
                f"unwrap {self.spec.key}: backend {show_endpoint(host, port)} did not connect "
                f"({'timeout' if isinstance(exc, TimeoutError) else exc.strerror or exc})",
            )
            return None

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned and len(self._warned) < 64:
            self._warned.add(key)
            log.warning("%s", message)

    def status(self) -> dict[str, Any]:
        bound = self.bound
        return {
            "kind": "unwrap",
            "state": "listening" if bound is not None else "error",
            "error": self.error,
            "bound": show_endpoint(*bound) if bound else None,
            "transparentActive": self._routed,
            "open": self.admission.open,
            "counters": dict(self.counters),
        }
