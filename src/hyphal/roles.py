"""Node roles: ``peer`` (the default: relays for others) and ``client`` (NAT, 4G: relays nothing).

One place says what each role means for the other parts; ``hyphal.node`` reads it once:

* a **client** announces the client capability bit in its authenticated handshake payload
  (:data:`hyphal.links.capabilities.FEATURE_CLIENT`), so every neighbour knows it must never be a
  transit hop; its router originates only its own prefixes and re-advertises nothing it learned;
  its forwarder refuses transit packets (``transit-refused``); it does not listen for peers unless
  ``listen = true`` says so; its dials set TCP keepalive (:data:`CLIENT_KEEPALIVE`) so the NAT
  mapping of a dial-out-only link outlives a stalled process.
* a **peer** does all of the opposite, and treats a neighbour that set the client bit as a leaf
  (``Router.neighbour_up(..., client_key=...)``). See docs/routing.md, "Roles".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hyphal.links.capabilities import FEATURE_CLIENT, LOCAL_FEATURES


class Role(StrEnum):
    """What a node does for the mesh (config key ``role``, flag ``--role``)."""

    PEER = "peer"
    CLIENT = "client"

    @classmethod
    def parse(cls, text: str) -> Role:
        """``peer`` or ``client``; ValueError naming the choices otherwise."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ValueError(f"role must be 'peer' or 'client', got {text!r}") from None

    @property
    def relays(self) -> bool:
        """True if this node carries transit traffic and re-advertises routes."""
        return self is Role.PEER

    @property
    def listens_by_default(self) -> bool:
        """Peers accept inbound links unless told not to; clients only dial out."""
        return self is Role.PEER

    @property
    def features(self) -> int:
        """The capability bits this node puts in its handshake."""
        return LOCAL_FEATURES | (FEATURE_CLIENT if self is Role.CLIENT else 0)

    @property
    def keepalive(self) -> TcpKeepalive | None:
        """TCP keepalive for the links this node dials (None: the kernel's default, off)."""
        return CLIENT_KEEPALIVE if self is Role.CLIENT else None


@dataclass(frozen=True)
class TcpKeepalive:
    """Kernel TCP keepalive: first probe after ``idle`` s without traffic, then every
    ``interval`` s; the connection is reset after ``count`` unanswered probes."""

    idle: int
    interval: int
    count: int


#: Hellos (4 a second) keep a client's NAT mapping busy while the daemon runs. Keepalive is the
#: kernel's second line, for when the process is stalled or stopped (a suspended laptop, a
#: SIGSTOP, a long GC): 15 s is well below the shortest TCP mapping timeouts seen on carrier-grade
#: NATs (RFC 5382 asks for at least 2 h 4 min, but 4G operators use minutes) and costs one empty
#: segment per 15 s of silence; a dead path is then dropped after 15 + 3 x 5 = 30 s of silence.
CLIENT_KEEPALIVE = TcpKeepalive(idle=15, interval=5, count=3)


def is_client(features: int) -> bool:
    """True if a neighbour's capability bits declare the client role."""
    return bool(features & FEATURE_CLIENT)


def client_key(features: int, public_key: bytes | None) -> bytes | None:
    """What ``Router.neighbour_up`` takes as ``client_key``: the neighbour's key if its bits
    declare the client role, else None."""
    return public_key if is_client(features) else None
