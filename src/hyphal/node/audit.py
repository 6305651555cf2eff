"""The node side of the route audit (issue 8 item 5): drives the sans-IO ``RouteAudit``.

Owns three pieces of glue and nothing else: the forwarder's ``on_local_send`` hook feeds
``note_use`` (O(1) per packet; only traffic the node originates for its users, IPv6 and bus,
counts, so the audit's own echoes never keep a destination "in use"); every ``SendProbe`` the
core asks for becomes one end-to-end echo task through :class:`hyphal.dataplane.echo.Echo`
whose RTT (or None when it failed) goes back to ``on_probe_result``; the router actions the
core returns (a demotion's updates) go to the router's own driver, as the node applies them.
The core bounds the probes: one outstanding per destination, ``audit_probes_per_round`` per
``audit_interval``, each ending after ``audit_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from hyphal.dataplane.echo import Echo
from hyphal.dataplane.errors import NoRoute, PingFailed
from hyphal.node.driver import CoreDriver
from hyphal.routing.audit import RouteAudit, SendProbe
from hyphal.routing.router import Router
from hyphal.routing.types import Action
from hyphal.wire import data as wire_data

log = logging.getLogger("hyphal.node.audit")

AUDITED_KINDS = frozenset((wire_data.KIND_IPV6, wire_data.KIND_BUS))


class AuditService:
    """Runs one node's route audit: usage in, probes out, router actions to ``apply_router``."""

    def __init__(
        self,
        router: Router,
        echo: Echo,
        apply_router: Callable[[list[Action]], None],
        clock: Callable[[], float],
    ) -> None:
        self.core = RouteAudit(router)
        self._router = router
        self._demoted = router.counters["routes_demoted"]
        self._echo = echo
        self._apply_router = apply_router
        self._clock = clock
        self._timeout = router.params.audit_timeout
        self._probes: dict[bytes, asyncio.Task[None]] = {}
        self.probes_sent = 0
        self.probes_failed = 0
        self.driver: CoreDriver[SendProbe | Action] = CoreDriver(
            "route-audit", self, self._apply, clock
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.driver.start(loop)

    def close(self) -> None:
        self.driver.close()
        for task in self._probes.values():
            task.cancel()
        self._probes.clear()

    def note_send(self, prefix64: bytes, kind: int) -> None:
        """The forwarder's ``on_local_send`` hook."""
        if kind in AUDITED_KINDS:
            self.core.note_use(prefix64, self._clock())

    def _apply(self, actions: Sequence[SendProbe | Action]) -> None:
        routed: list[Action] = []
        for action in actions:
            if isinstance(action, SendProbe):
                self._start_probe(action)
            else:
                routed.append(action)
        if routed:
            self._apply_router(routed)

    def _start_probe(self, probe: SendProbe) -> None:
        # The core sends a new probe only after the last one ended; a task still running for
        # the destination is stale (its result would be taken for the new probe's), so it goes.
        self.probes_sent += 1
        stale = self._probes.pop(probe.prefix64, None)
        if stale is not None:
            stale.cancel()
        self._probes[probe.prefix64] = asyncio.get_running_loop().create_task(
            self._probe(probe), name=f"route-audit-probe-{probe.prefix64.hex()}"
        )

    async def _probe(self, probe: SendProbe) -> None:
        rtt: float | None
        try:
            rtt = (await self._echo.ping(probe.public_key, self._timeout, 0)).rtt
        except (NoRoute, PingFailed) as exc:
            log.debug("route audit: probe to %s failed: %s", probe.prefix64.hex(), exc)
            rtt = None
            self.probes_failed += 1
        if self._probes.get(probe.prefix64) is asyncio.current_task():
            del self._probes[probe.prefix64]
        actions = self.core.on_probe_result(probe.prefix64, rtt, self._clock())
        self._log_demotions()
        self.driver.feed(actions)

    # the driver's core: RouteAudit's timer, with one log line per demotion it causes

    def on_timer(self, now: float) -> list[SendProbe | Action]:
        actions = self.core.on_timer(now)
        self._log_demotions()
        return actions

    def next_deadline(self) -> float:
        return self.core.next_deadline()

    def _log_demotions(self) -> None:
        demoted = self._router.counters["routes_demoted"]
        if demoted > self._demoted:
            log.warning(
                "route audit: demoted %d next hop(s) whose probes were lost or far slower than"
                " their metric claims",
                demoted - self._demoted,
            )
            self._demoted = demoted
