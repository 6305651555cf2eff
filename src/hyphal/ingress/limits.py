"""The ingress's bounds and the pure bookkeeping that enforces the connection limits.

:class:`Limits` is what an operator can tune (config keys and flags mirror its fields);
:class:`Admission` counts open connections, globally and per client address, and says why a new
one is refused. Neither does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int = 4096
    """Open client connections per listener; more are closed at once (counted)."""
    max_per_client: int = 64
    """Open connections from one client address (a /128 or /32)."""
    connect_timeout: float = 2.0
    """Seconds to connect to one instance before trying the next."""
    connect_attempts: int = 3
    """Instances tried (nearest first) before the client is turned away."""
    idle_timeout: float = 300.0
    """Seconds with no byte in either direction before both sides are closed."""
    buffer_bytes: int = 256 * 1024
    """Bytes held per direction before reading from the sender pauses (backpressure)."""
    header_timeout: float = 5.0
    """Unwrap side: seconds for a sender to deliver its whole PROXY header."""

    def check(self) -> Limits:
        if not 1 <= self.max_connections <= 1 << 20:
            raise ValueError("max_connections must be 1..1048576")
        if not 1 <= self.max_per_client <= self.max_connections:
            raise ValueError("max_per_client must be 1..max_connections")
        if not 0.05 <= self.connect_timeout <= 120:
            raise ValueError("connect_timeout must be 0.05..120 seconds")
        if not 1 <= self.connect_attempts <= 16:
            raise ValueError("connect_attempts must be 1..16")
        if not 1 <= self.idle_timeout <= 86400:
            raise ValueError("idle_timeout must be 1..86400 seconds")
        if not 4096 <= self.buffer_bytes <= 64 << 20:
            raise ValueError("buffer_bytes must be 4096..67108864")
        if not 3 <= self.header_timeout <= 120:
            raise ValueError("header_timeout must be 3..120 seconds (the spec asks for >= 3)")
        return self


ClientIP = IPv4Address | IPv6Address


class Admission:
    """Open connections by client address; ``admit`` reserves a slot or says why not."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self._per_client: dict[ClientIP, int] = {}

    def admit(self, client: ClientIP) -> str | None:
        """None (admitted: call :meth:`release` when it closes) or the refusal's counter name."""
        if self.open >= self.limits.max_connections:
            return "refused-full"
        held = self._per_client.get(client, 0)
        if held >= self.limits.max_per_client:
            return "refused-per-client"
        self._per_client[client] = held + 1
        self.open += 1
        return None

    def release(self, client: ClientIP) -> None:
        held = self._per_client.get(client, 0)
        if held <= 0:
            raise RuntimeError(f"release of {client} without a matching admit")
        if held == 1:
            del self._per_client[client]
        else:
            self._per_client[client] = held - 1
        self.open -= 1

    @property
    def clients(self) -> int:
        return len(self._per_client)
