"""The API's codec: strict base64, topics, ids, subnets and destinations from request text, and
the message JSON; big work kept off the event loop.

A payload may be 128 MiB. ``json.dumps``, ``base64`` and ``binascii`` hold the GIL for a whole
call, so handing one big call to a thread would stall the loop just as long. Instead big work runs
in a worker thread *in chunks* of about a millisecond each: between chunks the GIL goes back to
the loop, which keeps serving. Base64 text needs no JSON escaping, so a message's JSON is spliced
together around the encoded payload instead of going through a JSON encoder.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from ipaddress import AddressValueError, IPv6Address, IPv6Network, ip_network
from typing import ParamSpec, TypeVar

from fastapi import HTTPException

from hyphal.bus.inbox import InboundMessage
from hyphal.bus.topics import MAX_TOPIC_LEN
from hyphal.dataplane.errors import BadDestination, NoRoute
from hyphal.identity import OVERLAY_NETWORK, address_for_public_key, is_usable_public_key
from hyphal.membership.record import is_label

MAX_TOPIC_B64 = 340
T = TypeVar("T")
P = ParamSpec("P")

#: Work on more bytes than this goes to a worker thread, chunked.
OFF_LOOP_BYTES = 1 << 20
#: Bytes of payload per base64 encode step (a multiple of 3) and characters per decode step
#: (a multiple of 4): a millisecond or so each.
ENCODE_CHUNK = 3 * (1 << 18)
DECODE_CHUNK = 1 << 20


async def off_loop(size: int, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` inline when ``size`` is small, else in a worker thread."""
    if size < OFF_LOOP_BYTES:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)


def b64encode_parts(data: bytes) -> list[bytes]:
    """Standard base64 of ``data`` as consecutive pieces, one bounded step each."""
    view = memoryview(data)
    return [base64.b64encode(view[i : i + ENCODE_CHUNK]) for i in range(0, len(data), ENCODE_CHUNK)]


def b64decode_strict(data: str | bytes, altchars: bytes | None = None) -> bytes:
    """Strict base64: alphabet only, length a multiple of 4, padding only at the very end.

    Raises binascii.Error (a ValueError) otherwise. Decoded one bounded step at a time.
    """
    if len(data) % 4 or data[-3:] in ("===", b"==="):
        raise binascii.Error("bad length or excess padding")
    parts = []
    for i in range(0, len(data), DECODE_CHUNK):
        chunk = data[i : i + DECODE_CHUNK]
        if i + DECODE_CHUNK < len(data) and (
            "=" in chunk if isinstance(chunk, str) else b"=" in chunk
        ):
            raise binascii.Error("padding before the end")
        parts.append(base64.b64decode(chunk, altchars=altchars, validate=True))
    return b"".join(parts)


def b64decode_any(text: str) -> bytes | None:
    """Strict standard or URL-safe base64 of ``text``; None when it is neither."""
    try:
        return b64decode_strict(text)
    except ValueError:
        pass
    try:
        return b64decode_strict(text.encode("ascii"), altchars=b"-_")
    except (ValueError, UnicodeEncodeError):
        return None


def message_json(message: InboundMessage) -> bytes:
    """Mycelium's InboundMessage shape, as compact JSON bytes."""
    head = json.dumps(
        {
            "id": message.msg_id.hex(),
            "srcIp": str(address_for_public_key(message.src_pk)),
            "srcPk": message.src_pk.hex(),
            "dstIp": str(address_for_public_key(message.dst_pk)),
            "dstPk": message.dst_pk.hex(),
        },
        separators=(",", ":"),
    ).encode()
    tail = b'"}'
    if message.topic:
        tail = b'","topic":"' + base64.b64encode(message.topic) + tail
    return b"".join([head[:-1], b',"payload":"', *b64encode_parts(message.payload), tail])


def bad(status: int, detail: str) -> HTTPException:
    """A 4xx answered as ``{"error": detail}``."""
    return HTTPException(status_code=status, detail=detail)


def b64_field(text: str, what: str) -> bytes:
    """``text`` decoded as strict base64; a 400 naming ``what`` otherwise."""
    decoded = b64decode_any(text)
    if decoded is None:
        raise bad(400, f"{what} is not valid base64")
    return decoded


def topic_from_b64(text: str | None) -> bytes:
    if text is None:
        return b""
    if len(text) > MAX_TOPIC_B64:
        raise bad(400, f"topic longer than {MAX_TOPIC_B64} base64 characters")
    topic = b64_field(text, "topic")
    if len(topic) > MAX_TOPIC_LEN:
        raise bad(400, f"topic longer than {MAX_TOPIC_LEN} bytes")
    return topic


def parse_msg_id(text: str) -> bytes:
    if len(text) != 16:
        raise bad(400, "message id is 16 hex characters")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise bad(400, "message id is not hex") from None


def parse_subnet(text: str) -> IPv6Network:
    try:
        net = ip_network(text.strip(), strict=False)
    except ValueError:
        raise bad(400, f"not a subnet: {text!r}") from None
    if not isinstance(net, IPv6Network):
        raise bad(400, "only IPv6 subnets are meaningful on the overlay")
    return net


NameLookup = Callable[[str], bytes | None]
"""A member name -> the public key of the member that owns it (None: nobody does)."""


def _no_names(name: str) -> bytes | None:
    return None


def resolve_destination(
    ip: str | None,
    pk: str | None,
    owner_of: Callable[[IPv6Address], bytes | None],
    what: str = "dst",
    *,
    name: str | None = None,
    key_for_name: NameLookup = _no_names,
) -> bytes:
    """The public key an API destination (exactly one of overlay ``ip``, hex ``pk`` or member
    ``name``) names.

    The one resolver of every endpoint that takes a destination (messages, replies, ping).
    ``owner_of`` answers which node owns an overlay address (ourselves or a routed /64),
    ``key_for_name`` which member owns a name (the membership part: the winner of a duplicate
    claim). Malformed input raises BadDestination (400), an address or name nobody owns
    NoRoute (404).
    """
    if sum(x is not None for x in (ip, pk, name)) != 1:
        raise BadDestination(f"{what} needs exactly one of ip, pk or name")
    if name is not None:
        if not is_label(name):
            raise BadDestination(
                f"{what}.name {name[:80]!r} is not a member name (a DNS label: a-z, 0-9, inner "
                "'-', at most 63 characters)"
            )
        owner = key_for_name(name)
        if owner is None:
            raise NoRoute(f"no member is named {name!r} (see 'hyphal members')")
        return owner
    if pk is not None:
        try:
            key = bytes.fromhex(pk)
        except ValueError:
            raise BadDestination(f"{what}.pk is not hex") from None
        if len(key) != 32:
            raise BadDestination(f"{what}.pk must be 64 hex characters")
        if not is_usable_public_key(key):
            raise BadDestination(f"{what}.pk is not a usable X25519 public key (low-order point)")
        return key
    try:
        address = IPv6Address(ip)
    except (AddressValueError, ValueError):
        raise BadDestination(f"{what}.ip is not an IPv6 address: {ip!r}") from None
    found = owner_of(address)
    if found is None:
        raise NoRoute(f"no known node owns {address}")
    return found


def message_destination(
    ip: str | None,
    pk: str | None,
    owner_of: Callable[[IPv6Address], bytes | None],
    what: str = "dst",
    *,
    name: str | None = None,
    key_for_name: NameLookup = _no_names,
) -> bytes:
    """A message destination: the owner's public key (32 bytes) as :func:`resolve_destination`
    finds it, or, for an overlay address that no known node owns now, the address itself
    (16 bytes): the bus holds the message until a route to it appears or its deadline passes.
    A name no member owns is a NoRoute (404): there is no address to wait for.

    An address outside the overlay (400::/7) can never be reached: BadDestination (400).
    """
    try:
        return resolve_destination(ip, pk, owner_of, what, name=name, key_for_name=key_for_name)
    except NoRoute:
        if ip is None:
            raise
        address = IPv6Address(ip)
        if address not in OVERLAY_NETWORK:
            raise BadDestination(
                f"{what}.ip {address} is not an overlay address (hyphal addresses are in "
                f"{OVERLAY_NETWORK})"
            ) from None
        return address.packed
