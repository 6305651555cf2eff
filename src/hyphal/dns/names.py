"""Where the DNS server's names come from: the :class:`NameBook` seam and a static book.

The server core asks a :class:`NameBook` two questions, both synchronous and cheap: which
member carries a label (``lookup``) and which member owns an overlay address (``reverse``).
The membership store will answer them through one adapter; until then :class:`StaticNameBook`
answers from this node's own ``name`` and the config's ``[names]`` table, with reachability
taken from routing (a member is reachable while a route to its /64 exists).

Also here: label rules (LDH, case-insensitive) and the domain derived from the network name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Literal, Protocol

from hyphal.identity import OVERLAY_NETWORK, address_for_public_key
from hyphal.services.directory import Instance

#: The zone for the public network; a private network NAME gets ``NAME.internal``.
PUBLIC_DOMAIN = "hyphal.internal"
#: `.internal` is reserved for private use (ICANN, 2024): it never collides with public DNS.
PRIVATE_TLD = "internal"

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NOT_LDH = re.compile(r"[^a-z0-9-]+")


class InvalidName(ValueError):
    """A name or domain that DNS cannot carry; the message says what is allowed."""


def normalise_label(label: str) -> str:
    """``label`` lowercased if it is one LDH label (1-63 of a-z, 0-9, '-', no '-' at either
    end); InvalidName otherwise."""
    low = label.lower()
    if not _LABEL.match(low):
        raise InvalidName(
            f"{label!r} is not a DNS label: use 1-63 letters, digits or '-', "
            "starting and ending with a letter or digit (e.g. db1, fra-web-2)"
        )
    return low


def domain_for(network_name: str | None, override: str | None = None) -> str:
    """The zone names live under: ``override`` if given (checked), else ``hyphal.internal`` on
    the public network and ``<network>.internal`` on a private one (the network name made LDH:
    lowercased, other characters turned into '-')."""
    if override:
        labels = override.strip().rstrip(".").split(".")
        try:
            return ".".join(normalise_label(label) for label in labels)
        except InvalidName as exc:
            raise InvalidName(f"dns_domain {override!r}: {exc}") from None
    if network_name is None:
        return PUBLIC_DOMAIN
    label = _NOT_LDH.sub("-", network_name.lower()).strip("-")[:63].strip("-")
    return f"{label or 'hyphal'}.{PRIVATE_TLD}"


@dataclass(frozen=True)
class NameEntry:
    """One name as the server needs it."""

    name: str  # the label, lowercase
    address: IPv6Address  # the member's overlay address
    reachable: bool  # a route to its /64 exists right now (ourselves: always)
    ttl: int | None = None  # a hint the server may lower an answer's TTL to (None: default)


class NameBook(Protocol):
    """What the DNS core reads names from (:class:`MemberNameBook` over the member records,
    :class:`StaticNameBook` for the config's table)."""

    def lookup(self, label: str) -> NameEntry | None:
        """The member named ``label`` (lowercase, one label), or None."""
        ...

    def reverse(self, address: IPv6Address) -> NameEntry | None:
        """The member owning ``address``, or None."""
        ...

    def __len__(self) -> int:
        """How many names the book holds (for status)."""
        ...


def parse_names_table(table: Mapping[str, object]) -> tuple[tuple[str, IPv6Address], ...]:
    """The config's ``[names]`` table (label = overlay address or hex public key), checked.

    InvalidName names the entry and what is wrong with it."""
    from hyphal.identity import IdentityError, address_for_public_key, parse_public_key

    entries: dict[str, IPv6Address] = {}
    for raw, value in table.items():
        label = normalise_label(raw)
        if not isinstance(value, str):
            raise InvalidName(f"names.{raw}: give an overlay address or a hex public key")
        try:
            address = IPv6Address(value)
        except ValueError:
            try:
                address = address_for_public_key(parse_public_key(value))
            except IdentityError:
                raise InvalidName(
                    f"names.{raw} = {value!r}: neither an IPv6 address nor a 64-character "
                    "hex public key"
                ) from None
        if address not in OVERLAY_NETWORK:
            raise InvalidName(
                f"names.{raw} = {value}: not an overlay address (must be in {OVERLAY_NETWORK})"
            )
        if label in entries:
            raise InvalidName(f"names: {label!r} is given twice (names are case-insensitive)")
        entries[label] = address
    return tuple(sorted(entries.items()))


class StaticNameBook:
    """Names from this node's own name and a fixed table; reachability from ``reachable``.

    Our own name wins over a table entry of the same label. ``reverse`` gives our own name for
    our address, else the first table name (in label order) for that address.
    """

    def __init__(
        self,
        own_name: str | None,
        own_address: IPv6Address,
        table: Iterable[tuple[str, IPv6Address]],
        reachable: Callable[[IPv6Address], bool],
    ) -> None:
        self._own_address = own_address
        self._reachable = reachable
        self._by_name: dict[str, IPv6Address] = {}
        self._by_address: dict[IPv6Address, str] = {}
        if own_name:
            own = normalise_label(own_name)
            self._by_name[own] = own_address
            self._by_address[own_address] = own
        for label, address in sorted(table):
            label = normalise_label(label)
            if label in self._by_name:  # our own name: the table's entry is shadowed
                continue
            self._by_name[label] = address
            self._by_address.setdefault(address, label)

    def __len__(self) -> int:
        return len(self._by_name)

    def _entry(self, label: str, address: IPv6Address) -> NameEntry:
        live = address == self._own_address or self._reachable(address)
        return NameEntry(label, address, live)

    def lookup(self, label: str) -> NameEntry | None:
        address = self._by_name.get(label)
        return None if address is None else self._entry(label, address)

    def reverse(self, address: IPv6Address) -> NameEntry | None:
        label = self._by_address.get(address)
        return None if label is None else self._entry(label, address)


class ServiceBook(Protocol):
    """The services directory as the DNS needs it (``hyphal.services.part.ServicesPart``)."""

    def instances(self, service: str, proto: Literal["tcp", "udp"] = "tcp") -> list[Instance]:
        """Usable instances, nearest first (weighted shuffle among near-equal ones)."""
        ...

    def has_service(self, service: str) -> bool:
        """Whether any authorised instance publishes ``service`` (healthy or not)."""
        ...

    def address_of(self, service: str) -> IPv6Address: ...

    def service_at(self, address: IPv6Address) -> str | None: ...


class MemberDirectory(Protocol):
    """The membership part as the DNS needs it (``hyphal.node.members.MembersPart``)."""

    def key_for_name(self, name: str) -> bytes | None: ...

    def name_for_prefix(self, prefix64: bytes) -> str | None: ...

    def named_count(self) -> int: ...


class MemberNameBook:
    """Names from the member records (the winner of a duplicate claim), then the static table:
    a member's own signed record names it, so a rename or an expiry shows in the next answer."""

    def __init__(
        self,
        members: MemberDirectory,
        static: StaticNameBook,
        reachable: Callable[[IPv6Address], bool],
        own_address: IPv6Address,
    ) -> None:
        self._members = members
        self._static = static
        self._reachable = reachable
        self._own_address = own_address

    def __len__(self) -> int:
        return self._members.named_count() + len(self._static)

    def _entry(self, label: str, address: IPv6Address) -> NameEntry:
        return NameEntry(label, address, address == self._own_address or self._reachable(address))

    def lookup(self, label: str) -> NameEntry | None:
        key = self._members.key_for_name(label)
        if key is not None:
            return self._entry(label, address_for_public_key(key))
        return self._static.lookup(label)

    def reverse(self, address: IPv6Address) -> NameEntry | None:
        name = self._members.name_for_prefix(address.packed[:8])
        if name is not None:
            return self._entry(name, address)
        return self._static.reverse(address)
