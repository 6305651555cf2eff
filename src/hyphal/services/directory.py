"""The question every consumer of services asks: which instances of NAME, nearest healthy first.

DNS (``NAME.svc.<domain>``), the per-service overlay address and the public ingress all ask a
:class:`ServiceDirectory`; the services part answers from member records (health and ports) and
the router (distance). Consumers never see records or routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Literal, Protocol

Proto = Literal["tcp", "udp"]


@dataclass(frozen=True, slots=True)
class Instance:
    """One healthy instance of a service, as seen from this node."""

    service: str
    public_key: bytes
    """The key of the node serving it (the key a packet to it is sealed for)."""
    address: IPv6Address
    """That node's overlay address."""
    port: int
    proto: Proto
    weight: int
    metric: int
    """Route metric from this node (0 for an instance on this node)."""
    node_name: str | None = None


class ServiceDirectory(Protocol):
    def instances(self, service: str, proto: Proto = "tcp") -> list[Instance]:
        """Healthy, authorised, reachable, not draining instances of ``service``: nearest first,
        weighted shuffling among near-equal ones. Empty when none is healthy."""
        ...

    def choose(self, service: str, proto: Proto = "tcp") -> Instance | None:
        """The instance a new flow goes to (the first of :meth:`instances`)."""
        ...

    def address_of(self, service: str) -> IPv6Address:
        """The service's stable overlay address (the same on every node of the network)."""
        ...

    def service_at(self, address: IPv6Address) -> str | None:
        """The service whose stable overlay address ``address`` is (None: not a service's)."""
        ...

    def is_instance(self, service: str, public_key: bytes) -> bool:
        """Whether the node with ``public_key`` is an authorised instance of ``service`` (healthy
        or not: a pinned flow may finish on a draining instance; a reply from it is genuine)."""
        ...

    def local_services(self) -> list[str]:
        """Services this node serves (authorised), whose stable addresses it must accept."""
        ...
