"""The invite token that `hyphal invite` prints and `hyphal join` takes: codec only.

A token is ``hyphal1-`` followed by unpadded base64url of::

    version u8 (1) | network name str8 | network key 32 B | admin keys u8 n, n x 32 B |
    peers u8 n, n x str8 | name str8 | region str8 | role str8 |
    invite (admission.INVITE_SIZE B) | invite private key 32 B | checksum 4 B

``str8`` is a u8 length and that many UTF-8 bytes. The checksum is the first 4 bytes of
BLAKE2s over everything before it, so a token cut short by a copy and paste is told apart from a
forged one. The token is a secret: it carries the network key and the invite's private key.
Decoding is strict (no trailing bytes, canonical base64, bounded counts); anything else raises
:class:`TokenError` with a sentence saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from hyphal.membership import admission
from hyphal.membership.admission import Invite
from hyphal.wire.errors import DecodeError

PREFIX = "hyphal1-"
VERSION = 1
MAX_ADMIN_KEYS = 8
MAX_PEERS = 8
_CHECKSUM = 4


class TokenError(ValueError):
    """A token that cannot be used; the message says why."""


@dataclass(frozen=True)
class InviteToken:
    network_name: str
    network_key: bytes
    admin_keys: tuple[bytes, ...]
    peers: tuple[str, ...]
    name: str
    region: str
    role: str
    invite: Invite
    invite_private_key: bytes


def _str8(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 255:
        raise TokenError(f"{text[:20]!r}... is over 255 bytes")
    return bytes([len(raw)]) + raw


def encode(token: InviteToken) -> str:
    """The printable token (raises TokenError if a field does not fit)."""
    if len(token.network_key) != 32 or len(token.invite_private_key) != 32:
        raise TokenError("the network key and the invite key are 32 bytes each")
    if len(token.admin_keys) > MAX_ADMIN_KEYS or any(len(k) != 32 for k in token.admin_keys):
        raise TokenError(f"at most {MAX_ADMIN_KEYS} admin keys of 32 bytes")
    if len(token.peers) > MAX_PEERS:
        raise TokenError(f"at most {MAX_PEERS} bootstrap peers")
    parts = [bytes([VERSION]), _str8(token.network_name), token.network_key]
    parts.append(bytes([len(token.admin_keys)]) + b"".join(token.admin_keys))
    parts.append(bytes([len(token.peers)]) + b"".join(_str8(p) for p in token.peers))
    parts += [_str8(token.name), _str8(token.region), _str8(token.role)]
    parts += [token.invite.encode(), token.invite_private_key]
    body = b"".join(parts)
    body += hashlib.blake2s(body).digest()[:_CHECKSUM]
    return PREFIX + base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.at = buf, 0

    def take(self, n: int, what: str) -> bytes:
        if self.at + n > len(self.buf):
            raise TokenError(f"the token is cut short (in its {what})")
        chunk = self.buf[self.at : self.at + n]
        self.at += n
        return chunk

    def str8(self, what: str) -> str:
        raw = self.take(self.take(1, what)[0], what)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise TokenError(f"the token's {what} is not UTF-8") from None


def decode(text: str) -> InviteToken:
    """The token's fields; TokenError if ``text`` is not a whole, intact token."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise TokenError(
            f"not a hyphal invite token (it starts with {PREFIX!r}; copy the whole line "
            "that 'hyphal invite' printed)"
        )
    b64 = text[len(PREFIX) :]
    if len(b64) % 4 == 1 or not b64.isascii():
        raise TokenError("the token is damaged: its base64url text is malformed")
    try:
        body = base64.b64decode(b64 + "=" * (-len(b64) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise TokenError("the token is damaged: its base64url text is malformed") from None
    if base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii") != b64:
        raise TokenError("the token is damaged: its base64url text is not canonical")
    if len(body) < 1 + _CHECKSUM:
        raise TokenError("the token is cut short")
    if body[0] != VERSION:
        raise TokenError(
            f"token version {body[0]} is not {VERSION}: it was made by another hyphal version"
        )
    data, check = body[:-_CHECKSUM], body[-_CHECKSUM:]
    if hashlib.blake2s(data).digest()[:_CHECKSUM] != check:
        raise TokenError("the token is damaged or cut short (its checksum does not match)")
    r = _Reader(data)
    r.take(1, "version")
    network_name = r.str8("network name")
    network_key = r.take(32, "network key")
    n_admin = r.take(1, "admin keys")[0]
    if n_admin > MAX_ADMIN_KEYS:
        raise TokenError(f"the token lists {n_admin} admin keys (at most {MAX_ADMIN_KEYS})")
    admin_keys = tuple(r.take(32, "admin keys") for _ in range(n_admin))
    n_peers = r.take(1, "peers")[0]
    if n_peers > MAX_PEERS:
        raise TokenError(f"the token lists {n_peers} peers (at most {MAX_PEERS})")
    peers = tuple(r.str8("peers") for _ in range(n_peers))
    name, region, role = r.str8("name"), r.str8("region"), r.str8("role")
    try:
        invite = admission.decode_invite(r.take(admission.INVITE_SIZE, "invite"))
    except DecodeError as exc:
        raise TokenError(f"the token's invite is malformed: {exc}") from None
    invite_private_key = r.take(32, "invite key")
    if r.at != len(data):
        raise TokenError(f"the token has {len(data) - r.at} bytes too many")
    return InviteToken(
        network_name,
        network_key,
        admin_keys,
        peers,
        name,
        region,
        role,
        invite,
        invite_private_key,
    )
