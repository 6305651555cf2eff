"""Finding the mapping services by name, through hyphal's service directory.

A store or a feeder advertises itself as an instance of a hyphal service on its own node
(``map-store``, ``map-feeder``; a tcp check on its port), so every node's directory knows each
instance and its health (``docs/services.md``). A client writes ``svc:NAME`` where it would write
a URL. A :class:`Locator` asks the local daemon for the nearest healthy instance
(``GET /api/v1/services/NAME/choose``) and keeps the answer for ``ttl`` seconds, or until a
request through it fails (:meth:`Locator.forget`). A worker whose store dies then moves to the
next one without a restart. A plain URL passes through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from ipaddress import ip_address
from urllib.parse import quote

from hyphal.client import ApiError, Client

SVC = "svc:"
STORE_SERVICE = "map-store"
FEEDER_SERVICE = "map-feeder"
TTL = 10.0
"""Seconds a resolved instance is reused: health moves the answer within seconds anyway."""


class DiscoveryError(RuntimeError):
    """A ``svc:`` name could not be resolved, or a service could not be advertised."""


class Locator:
    """Where a service is: a fixed URL, or ``svc:NAME`` resolved through the local hyphal API
    (``api``: the CLI's :class:`~hyphal.client.Client`, which sends the daemon's token only to
    this machine)."""

    def __init__(
        self,
        value: str,
        api: Client | None = None,
        *,
        ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.value = value.strip()
        service = self.value[len(SVC) :] if self.value.startswith(SVC) else None
        if service is not None and not service:
            raise DiscoveryError("svc: needs a service name, e.g. svc:map-store")
        if service is not None and api is None:
            raise DiscoveryError(f"{self.value} needs the local hyphal API to resolve it")
        self.service = service
        self._fixed = None if service is not None else self.value.rstrip("/")
        self._api = api
        self._ttl = ttl
        self._clock = clock
        self._cached: tuple[str, float] | None = None

    def __str__(self) -> str:
        if self._fixed is not None:
            return self._fixed
        cached = self._cached[0] if self._cached else "not resolved yet"
        return f"{self.value} ({cached})"

    def url_now(self) -> str:
        """The service's base URL now (no trailing slash); raises DiscoveryError."""
        if self._fixed is not None:
            return self._fixed
        if self._cached is not None and self._clock() < self._cached[1]:
            return self._cached[0]
        assert self._api is not None and self.service is not None  # checked in __init__
        try:
            data = self._api.get(f"/services/{quote(self.service)}/choose")
            address, port = ip_address(str(data["address"])), int(data["port"])
        except ApiError as exc:
            if exc.status == 404:
                raise DiscoveryError(
                    f"no healthy instance of service {self.service} is known to this node "
                    "(see 'hyphal service list')"
                ) from exc
            raise DiscoveryError(
                f"cannot ask the local hyphal daemon for {self.value}: {exc}"
            ) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise DiscoveryError(f"the local hyphal API's answer for {self.value}: {exc}") from exc
        url = f"http://[{address}]:{port}" if address.version == 6 else f"http://{address}:{port}"
        self._cached = (url, self._clock() + self._ttl)
        return url

    async def url(self) -> str:
        """:meth:`url_now` for the event loop: a lookup runs in a thread, so it never blocks it."""
        if self._fixed is not None:
            return self._fixed
        return await asyncio.to_thread(self.url_now)

    def forget(self) -> None:
        """A request through the resolved instance failed: ask again next time."""
        self._cached = None


def advertise(api: Client, service: str, port: int) -> bool:
    """Serve ``service`` on ``port`` as a tcp-checked instance on this node. True if we added
    it (so we withdraw it when we stop), False if it was declared already (the config file's
    ``[[service]]``: not ours to remove). Raises DiscoveryError when the daemon refuses it."""
    body = {"name": service, "port": port, "check": "tcp", "interval": 1.0, "rise": 1}
    try:
        api.post("/services", body)
    except ApiError as exc:
        if exc.status == 409:
            return False
        raise DiscoveryError(f"the daemon refused service {service}: {exc}") from exc
    return True


def withdraw(api: Client, service: str, port: int) -> None:
    """Stop serving ``service`` on ``port`` here (the store or feeder is stopping)."""
    with contextlib.suppress(ApiError):  # a daemon that is gone took its record along
        api.request("DELETE", f"/services/{quote(service)}", params={"proto": "tcp", "port": port})
