"""Hostile node behaviour for tests: a real Node whose routing and forwarding lie.

:class:`MetricLiar` (issue 8 item 5, metric lying) rewrites the metric of every Update TLV it
sends to 0 (the metric is the one field nobody signs) and drops every DATA frame it should
relay, so it attracts traffic and black-holes it. The in-process tests subclass nothing else;
``tests/hostile/tools/metric_liar.py`` runs it as a daemon inside a namespace.

:class:`LyingClient` (issue 10, roles) sets the client bit in its handshakes but routes like a
peer: it re-advertises every route it learns, with metric 0, and relays whatever it is sent,
so it would attract others' transit if its neighbours believed its routing instead of its bit.
``tests/netns/tools/lying_client.py`` runs it as a daemon.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.connection import PeerLink
from hyphal.node import Node
from hyphal.roles import Role
from hyphal.routing.types import Action, SendControl
from hyphal.wire import control
from hyphal.wire import data as wire


class MetricLiar(Node):
    """Advertises metric 0 for every route and black-holes relayed traffic."""

    def _apply(self, actions: Sequence[Action]) -> None:
        lied: list[Action] = []
        for action in actions:
            if isinstance(action, SendControl):
                tlvs = control.decode_payload(action.payload)
                for tlv in tlvs:
                    if isinstance(tlv, control.Update) and not tlv.is_retraction:
                        tlv.metric = 0
                action = dataclasses.replace(action, payload=control.encode_payload(tlvs))
            lied.append(action)
        super()._apply(lied)

    def _data_frame(self, frame: tuple[PeerLink, memoryview]) -> None:
        if wire.destination_prefix64(frame[1]) == self.identity.address_bytes[:8]:
            super()._data_frame(frame)


class LyingClient(MetricLiar):
    """Declares the client role (``config.role`` must be ``client``) but re-advertises others'
    routes at metric 0 and would relay transit."""

    def __init__(self, config: NodeConfig, identity: NodeIdentity, **kwargs: Any) -> None:
        if config.node_role is not Role.CLIENT:
            raise ValueError("a lying client needs role = client (the bit it lies behind)")
        super().__init__(config, identity, **kwargs)
        self.router.client = False  # the lie: a relaying router behind the client bit
        self.forwarder.relay = True

    def _data_frame(self, frame: tuple[PeerLink, memoryview]) -> None:
        Node._data_frame(self, frame)  # relays, unlike the metric liar


async def run_until_killed(node: Node) -> None:
    """Start ``node`` as a daemon for a namespace test: print ``up`` once it runs, then serve
    until the process is killed."""
    await node.start()
    print("up", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await node.stop()
