"""The ingress as a node part: the public listeners (``[[ingress]]``, ``hyphal ingress add``)
and the transparent unwrap listeners (``[[unwrap]]``, ``hyphal ingress unwrap``), added from
the config at start and at run time through the API (``/api/v1/ingress``).

Listeners added at run time are kept in the ingress state file (:mod:`hyphal.ingress.state`)
and opened again at the next start; removing one forgets it. A configured listener removed at
run time comes back at the next start, as the config file says. A listener that cannot open is
an error in its status and in the log, and the node keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from hyphal.ingress.state import load_listeners, save_listeners
from hyphal.ingress.unwrap import UnwrapListener
from hyphal.services.directory import ServiceDirectory

if TYPE_CHECKING:
    from hyphal.config import NodeConfig

log = logging.getLogger("hyphal.ingress")
MAX_LISTENERS = 256


class IngressPart:
    """A :class:`hyphal.node.parts.NodePart` holding every ingress and unwrap listener."""

    name = "ingress"
    live_keys = frozenset({"ingress", "unwrap"})

    def __init__(
        self,
        directory: Callable[[], ServiceDirectory | None],
        ingresses: tuple[IngressSpec, ...] = (),
        unwraps: tuple[UnwrapSpec, ...] = (),
        state_file: Path | None = None,
    ) -> None:
        self._directory = directory
        self._configured = (ingresses, unwraps)
        self._state_file = state_file
        self._runtime: dict[str, IngressSpec | UnwrapSpec] = {}  # key -> spec added at run time
        self.routing = PolicyRouting()
        self.listeners: dict[str, IngressListener | UnwrapListener] = {}
        self._retired: Counter[str] = Counter()  # removed listeners' counts (totals only grow)
        self._reconfiguring: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ingresses, unwraps = self._configured
        specs: list[IngressSpec | UnwrapSpec] = [*unwraps, *ingresses]
        configured = {spec.key for spec in specs}
        for spec in load_listeners(self._state_file):
            if spec.key in configured:
                log.warning(
                    "%s: the config file declares %s too; using the config's listener",
                    self._state_file,
                    spec.key,
                )
                continue
            self._runtime[spec.key] = spec
            specs.append(spec)
        for spec in specs:
            try:
                await self.add(spec)
            except (SpecError, OSError) as exc:
                log.error("%s", exc)

    async def add(
        self, spec: IngressSpec | UnwrapSpec, *, keep: bool = False
    ) -> IngressListener | UnwrapListener:
        """Open a listener for ``spec`` (SpecError: taken key or no directory; OSError: bind).

        ``keep``: a run-time addition, saved in the state file once it listens."""
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
        if keep:
            self._runtime[spec.key] = spec
            self._save()
        return listener

    async def remove(self, key: str) -> bool:
        """Close the listener on ``key`` (ADDR:PORT, in any spelling parse_endpoint takes) and
        forget it: it is not opened again at the next start unless the config declares it."""
        with contextlib.suppress(SpecError):  # not an endpoint: looked up as given
            key = show_endpoint(*parse_endpoint(key, "listen"))
        if not await self._close(key):
            return False
        if self._runtime.pop(key, None) is not None:
            self._save()
        return True

    async def _close(self, key: str) -> bool:
        listener = self.listeners.pop(key, None)
        if listener is None:
            return False
        await listener.stop()
        self._retired.update(listener.counters)
        kind = "ingress" if isinstance(listener, IngressListener) else "unwrap"
        log.info("closed %s %s", kind, key)
        return True

    def reconfigure(self, config: NodeConfig) -> str | None:
        """Follow reloaded ``[[ingress]]``/``[[unwrap]]`` tables: close the listeners whose table
        went or changed, open the new ones (a saved run-time listener on an address the config
        now declares gives way). The sockets change in a task; returns what will change."""
        before: list[IngressSpec | UnwrapSpec] = [*self._configured[1], *self._configured[0]]
        after: list[IngressSpec | UnwrapSpec] = [*config.unwrap, *config.ingress]
        old = {spec.key: spec for spec in before}
        new = {spec.key: spec for spec in after}
        closing = [key for key, spec in old.items() if new.get(key) != spec]
        opening = [spec for key, spec in new.items() if old.get(key) != spec]
        self._configured = (config.ingress, config.unwrap)
        if not closing and not opening:
            return None
        for spec in opening:
            if self._runtime.pop(spec.key, None) is not None:
                closing.append(spec.key)
                self._save()
        previous = self._reconfiguring
        self._reconfiguring = asyncio.get_running_loop().create_task(
            self._switch(previous, closing, opening), name="ingress-reload"
        )
        parts = []
        if opening:
            parts.append("opening " + ", ".join(spec.key for spec in opening))
        if closing:
            parts.append("closing " + ", ".join(sorted(set(closing))))
        return "; ".join(parts)

    async def _switch(
        self,
        previous: asyncio.Task[None] | None,
        closing: list[str],
        opening: list[IngressSpec | UnwrapSpec],
    ) -> None:
        if previous is not None:  # reloads apply in order
            with contextlib.suppress(Exception):
                await previous
        for key in set(closing):
            await self._close(key)
        for spec in opening:
            try:
                await self.add(spec)
            except (SpecError, OSError) as exc:
                log.error("reload: %s", exc)

    def _save(self) -> None:
        save_listeners(self._state_file, list(self._runtime.values()))

    async def stop(self) -> None:
        if self._reconfiguring is not None:
            with contextlib.suppress(Exception):
                await self._reconfiguring
        for key in list(self.listeners):
            await self._close(key)

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
