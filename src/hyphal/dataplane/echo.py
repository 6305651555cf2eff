"""Overlay ping: echo requests answered here, echo replies matched to the pings waiting for them.

A request body is an 8-byte token and padding; the reply is the token, the hop limit the request
arrived with, and the padding. The reply is one byte longer, so a request that fills a link frame
cannot be answered; sealing refuses it and the forwarder counts the drop (``e2e-too-big``).
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from hyphal.crypto.e2e import OpenedPacket
from hyphal.dataplane.errors import NoRoute, PingFailed
from hyphal.dataplane.forwarder import Forwarder
from hyphal.wire import data as wire_data

_REPLY = struct.Struct(">8sB")
TOKEN_SIZE = 8


@dataclass(frozen=True)
class PingReply:
    rtt: float
    hops: int
    size: int


class Echo:
    """The ping waiter table and the echo request/reply handlers."""

    def __init__(self, forwarder: Forwarder, clock: Callable[[], float]) -> None:
        self._forwarder = forwarder
        self._clock = clock
        self._waiting: dict[bytes, asyncio.Future[tuple[float, int, int]]] = {}

    def handle_request(self, opened: OpenedPacket) -> None:
        body = opened.body
        if len(body) < TOKEN_SIZE:
            self._forwarder.stats.drop("echo-malformed")
            return
        reply = bytes(body[:TOKEN_SIZE]) + bytes((opened.hop_limit,)) + bytes(body[TOKEN_SIZE:])
        self._forwarder.send_to(opened.src_public_key, wire_data.KIND_ECHO_REPLY, reply)

    def handle_reply(self, opened: OpenedPacket) -> None:
        body = opened.body
        if len(body) < _REPLY.size:
            self._forwarder.stats.drop("echo-malformed")
            return
        token, hop_limit = _REPLY.unpack_from(body)
        waiter = self._waiting.pop(token, None)
        if waiter is not None and not waiter.done():
            waiter.set_result((self._clock(), hop_limit, len(body) - _REPLY.size))

    async def ping(self, dst_public_key: bytes, timeout: float, size: int) -> PingReply:  # noqa: ASYNC109
        """One end-to-end encrypted echo through the mesh; raises NoRoute or PingFailed."""
        token = os.urandom(TOKEN_SIZE)
        waiter: asyncio.Future[tuple[float, int, int]] = asyncio.get_running_loop().create_future()
        self._waiting[token] = waiter
        sent = self._clock()
        reason = self._forwarder.send_to(
            dst_public_key, wire_data.KIND_ECHO_REQUEST, token + bytes(size)
        )
        try:
            if reason == "no-route":
                raise NoRoute("no route to that node")
            if reason is not None:
                raise PingFailed(reason)
            try:
                received, hop_limit, echoed = await asyncio.wait_for(waiter, timeout)
            except TimeoutError as exc:
                raise PingFailed(f"no reply within {timeout:g} s") from exc
        finally:
            self._waiting.pop(token, None)
        return PingReply(
            rtt=received - sent, hops=wire_data.DEFAULT_HOP_LIMIT - hop_limit + 1, size=echoed
        )
