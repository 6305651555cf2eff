"""The ingress as a node part: the public listeners (``[[ingress]]``, ``hyphal ingress add``)
and the transparent unwrap listeners (``[[unwrap]]``, ``hyphal ingress unwrap``), added from
the config at start and at run time through the API (``/api/v1/ingress``).

Listeners added at run time live until the daemon stops or they are removed; put them in the
config file to keep them across restarts. A listener that cannot open is an error in its status
and in the log, and the node keeps running.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from hyphal.ingress.listener import IngressListener
from hyphal.ingress.policy import PolicyRouting
from hyphal.ingress.spec import (
    IngressSpec,
    SpecError,
    UnwrapSpec,
    ingress_to_dict,
    parse_endpoint,
    show_endpoint,
    unwrap_to_dict,
)
from hyphal.ingress.unwrap import UnwrapListener
from hyphal.services.directory import ServiceDirectory

log = logging.getLogger("hyphal.ingress")
MAX_LISTENERS = 256


class IngressPart:
    """A :class:`hyphal.node.parts.NodePart` holding every ingress and unwrap listener."""

    name = "ingress"

    def __init__(
        self,
        directory: Callable[[], ServiceDirectory | None],
        ingresses: tuple[IngressSpec, ...] = (),
        unwraps: tuple[UnwrapSpec, ...] = (),
    ) -> None:
        self._directory = directory
        self._configured = (ingresses, unwraps)
        self.routing = PolicyRouting()
        self.listeners: dict[str, IngressListener | UnwrapListener] = {}
        self._retired: Counter[str] = Counter()  # removed listeners' counts (totals only grow)

    async def start(self) -> None:
        ingresses, unwraps = self._configured
        specs: list[IngressSpec | UnwrapSpec] = [*unwraps, *ingresses]
        for spec in specs:
            try:
                await self.add(spec)
            except (SpecError, OSError) as exc:
                log.error("%s", exc)

    async def add(self, spec: IngressSpec | UnwrapSpec) -> IngressListener | UnwrapListener:
        """Open a listener for ``spec`` (SpecError: taken key or no directory; OSError: bind)."""
        if spec.key in self.listeners:
            raise SpecError(f"{spec.key} already has a listener; remove it first")
        if len(self.listeners) >= MAX_LISTENERS:
            raise SpecError(f"at most {MAX_LISTENERS} ingress/unwrap listeners per node")
        listener: IngressListener | UnwrapListener
        if isinstance(spec, IngressSpec):
            directory = self._directory()
            if directory is None:
                raise SpecError("this node has no service directory (services are off)")
            listener = IngressListener(spec, directory)
        else:
            listener = UnwrapListener(spec, self.routing)
        self.listeners[spec.key] = listener  # in status even when the bind fails
        await listener.start()
        return listener

    async def remove(self, key: str) -> bool:
        """Close the listener on ``key`` (ADDR:PORT, in any spelling parse_endpoint takes)."""
        with contextlib.suppress(SpecError):  # not an endpoint: looked up as given
            key = show_endpoint(*parse_endpoint(key, "listen"))
        listener = self.listeners.pop(key, None)
        if listener is None:
            return False
        await listener.stop()
        self._retired.update(listener.counters)
        log.info("removed %s %s", "ingress" if isinstance(listener, IngressListener) else
                 "unwrap", key)
        return True

    async def stop(self) -> None:
        for key in list(self.listeners):
            await self.remove(key)

    def find(self, key: str) -> IngressListener | UnwrapListener | None:
        return self.listeners.get(key)

    def status(self) -> dict[str, Any]:
        rows = []
        for listener in self.listeners.values():
            spec = (
                ingress_to_dict(listener.spec)
                if isinstance(listener, IngressListener)
                else unwrap_to_dict(listener.spec)
            )
            rows.append({**spec, **listener.status()})
        return {"listeners": rows, "policyRouting": self.routing.status()}

    def counters(self) -> Mapping[str, int]:
        total = Counter(self._retired)
        for listener in self.listeners.values():
            total.update(listener.counters)
        return dict(total)
