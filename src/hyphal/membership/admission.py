"""Admission to a private network: admin keys, invites, admissions and revocations (pure checks).

A private network is defined by one or more admin public keys (``AdmissionPolicy``); an open
network has none and admits every key. Three signed objects travel in the gossip:

* **Invite** (signed by its *issuer*: an admin key, or a member admitted with the INVITER flag):
  an invite id, the public key of a one-off invite key pair whose private half is in the token,
  an expiry and flags. ``format u8 | issuer 32 B | invite id 16 B | invite key 32 B |
  expires u32 | flags u8 | signature 64 B`` (150 bytes).
* **Redemption** (signed by the invite key): the joiner's public key and the time of joining.
  ``invite id 16 B | member key 32 B | redeemed_at u32 | signature 64 B`` (116 bytes).
  **Admission** = invite | redemption (266 bytes): the member's proof, gossiped once, never
  refreshed.
* **Revocation** (signed by an admin key): ``format u8 | admin 32 B | member 32 B |
  revoked_at u32 | signature 64 B`` (133 bytes); permanent.

The network enforces the rest, in :mod:`hyphal.membership.store`: an invite admits one key (of
two redemptions, the lower ``(redeemed_at, member key)`` wins on every node); a redemption first
seen after the invite's expiry (plus a grace for clock skew) is refused; a revoked key's records
and admission are dropped and refused from then on.

Every signature's message starts with a context string and the network id, so nothing signed for
one purpose or network is valid for another.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from hyphal.crypto.signing import SIGNATURE_SIZE, Signer, Verifier
from hyphal.identity import prefix64_for_public_key
from hyphal.membership.record import network_id
from hyphal.wire.errors import DecodeError

FORMAT = 1
FLAG_INVITER = 0x01
INVITE_ID_SIZE = 16
CONTEXT_INVITE = b"hyphal invite v1\0"
CONTEXT_REDEEM = b"hyphal redemption v1\0"
CONTEXT_REVOKE = b"hyphal revocation v1\0"

_INVITE = struct.Struct(">B32s16s32sIB")
_REDEEM = struct.Struct(">16s32sI")
_REVOKE = struct.Struct(">B32s32sI")
INVITE_SIZE = _INVITE.size + SIGNATURE_SIZE
REDEMPTION_SIZE = _REDEEM.size + SIGNATURE_SIZE
ADMISSION_SIZE = INVITE_SIZE + REDEMPTION_SIZE
REVOCATION_SIZE = _REVOKE.size + SIGNATURE_SIZE

DEFAULT_EXPIRY_GRACE_S = 300
"""How long after an invite's expiry a first-seen redemption is still accepted (clock skew)."""


@dataclass(frozen=True, slots=True)
class Invite:
    issuer: bytes
    invite_id: bytes
    invite_key: bytes
    expires: int
    flags: int
    signature: bytes

    def body(self) -> bytes:
        return _INVITE.pack(
            FORMAT, self.issuer, self.invite_id, self.invite_key, self.expires, self.flags
        )

    def encode(self) -> bytes:
        return self.body() + self.signature

    @property
    def inviter(self) -> bool:
        """Whether the key this invite admits may issue invites itself."""
        return bool(self.flags & FLAG_INVITER)


@dataclass(frozen=True, slots=True)
class Admission:
    """An invite and its redemption: the proof that ``member`` was admitted."""

    invite: Invite
    member: bytes
    redeemed_at: int
    signature: bytes

    @property
    def prefix(self) -> bytes:
        return prefix64_for_public_key(self.member)

    def redemption_body(self) -> bytes:
        return _REDEEM.pack(self.invite.invite_id, self.member, self.redeemed_at)

    def encode(self) -> bytes:
        return self.invite.encode() + self.redemption_body() + self.signature


@dataclass(frozen=True, slots=True)
class Revocation:
    admin: bytes
    member: bytes
    revoked_at: int
    signature: bytes

    @property
    def prefix(self) -> bytes:
        return prefix64_for_public_key(self.member)

    def body(self) -> bytes:
        return _REVOKE.pack(FORMAT, self.admin, self.member, self.revoked_at)

    def encode(self) -> bytes:
        return self.body() + self.signature


@dataclass(frozen=True)
class AdmissionPolicy:
    """A private network's admin keys (any one of them may admit and revoke)."""

    admin_keys: frozenset[bytes]
    expiry_grace_s: int = DEFAULT_EXPIRY_GRACE_S


def _ctx(context: bytes, network: bytes, body: bytes) -> bytes:
    return context + network_id(network) + body


def make_invite(
    signer: Signer,
    issuer: bytes,
    network: bytes,
    *,
    invite_id: bytes,
    invite_key: bytes,
    expires: int,
    inviter: bool = False,
) -> Invite:
    """An invite signed by ``issuer`` (an admin key or an inviter member)."""
    if len(invite_id) != INVITE_ID_SIZE or len(invite_key) != 32 or len(issuer) != 32:
        raise ValueError("invite id is 16 bytes, keys are 32")
    unsigned = Invite(issuer, invite_id, invite_key, expires, FLAG_INVITER if inviter else 0, b"")
    return Invite(
        issuer,
        invite_id,
        invite_key,
        expires,
        unsigned.flags,
        signer.sign(_ctx(CONTEXT_INVITE, network, unsigned.body())),
    )


def redeem(
    invite: Invite, invite_signer: Signer, network: bytes, member: bytes, redeemed_at: int
) -> Admission:
    """The admission of ``member``, signed with the invite's private key (from the token)."""
    unsigned = Admission(invite, member, redeemed_at, b"")
    signature = invite_signer.sign(_ctx(CONTEXT_REDEEM, network, unsigned.redemption_body()))
    return Admission(invite, member, redeemed_at, signature)


def make_revocation(
    signer: Signer, admin: bytes, network: bytes, member: bytes, revoked_at: int
) -> Revocation:
    unsigned = Revocation(admin, member, revoked_at, b"")
    return Revocation(
        admin, member, revoked_at, signer.sign(_ctx(CONTEXT_REVOKE, network, unsigned.body()))
    )


def _decode_invite(buf: bytes) -> Invite:
    fmt, issuer, invite_id, invite_key, expires, flags = _INVITE.unpack_from(buf)
    if fmt != FORMAT:
        raise DecodeError(f"invite format {fmt} is not {FORMAT}")
    if flags & ~FLAG_INVITER:
        raise DecodeError(f"invite has reserved flag bits set: {flags:#x}")
    return Invite(issuer, invite_id, invite_key, expires, flags, buf[_INVITE.size : INVITE_SIZE])


def decode_invite(data: bytes | bytearray | memoryview) -> Invite:
    buf = bytes(data)
    if len(buf) != INVITE_SIZE:
        raise DecodeError(f"an invite is {INVITE_SIZE} bytes, got {len(buf)}")
    return _decode_invite(buf)


def decode_admission(data: bytes | bytearray | memoryview) -> Admission:
    buf = bytes(data)
    if len(buf) != ADMISSION_SIZE:
        raise DecodeError(f"an admission is {ADMISSION_SIZE} bytes, got {len(buf)}")
    invite = _decode_invite(buf[:INVITE_SIZE])
    invite_id, member, redeemed_at = _REDEEM.unpack_from(buf, INVITE_SIZE)
    if invite_id != invite.invite_id:
        raise DecodeError("admission: the redemption names another invite")
    return Admission(invite, member, redeemed_at, buf[INVITE_SIZE + _REDEEM.size :])


def decode_revocation(data: bytes | bytearray | memoryview) -> Revocation:
    buf = bytes(data)
    if len(buf) != REVOCATION_SIZE:
        raise DecodeError(f"a revocation is {REVOCATION_SIZE} bytes, got {len(buf)}")
    fmt, admin, member, revoked_at = _REVOKE.unpack_from(buf)
    if fmt != FORMAT:
        raise DecodeError(f"revocation format {fmt} is not {FORMAT}")
    return Revocation(admin, member, revoked_at, buf[_REVOKE.size :])


def check_admission(
    adm: Admission,
    policy: AdmissionPolicy,
    verifier: Verifier,
    network: bytes,
    *,
    wall: float,
    first_seen: bool,
    may_invite: Callable[[bytes], bool],
) -> str | None:
    """None if ``adm`` is valid, else the reason (a counter name) it is refused.

    ``may_invite(key)`` says whether a non-admin issuer is an admitted member with the INVITER
    flag; ``first_seen`` applies the late-redemption rule (the store passes it for redemptions
    it has not accepted yet, of invites that expired while it was running).
    """
    inv = adm.invite
    if inv.issuer not in policy.admin_keys and not may_invite(inv.issuer):
        return "admission-unknown-issuer"
    if not verifier.verify(inv.issuer, _ctx(CONTEXT_INVITE, network, inv.body()), inv.signature):
        return "admission-bad-signature"
    if not verifier.verify(
        inv.invite_key, _ctx(CONTEXT_REDEEM, network, adm.redemption_body()), adm.signature
    ):
        return "admission-bad-signature"
    if adm.redeemed_at > inv.expires:
        return "admission-expired-invite"
    if first_seen and wall > inv.expires + policy.expiry_grace_s:
        return "admission-expired-invite"
    return None


def check_revocation(
    rev: Revocation, policy: AdmissionPolicy, verifier: Verifier, network: bytes
) -> str | None:
    """None if ``rev`` is a valid revocation by an admin key, else the refusal reason."""
    if rev.admin not in policy.admin_keys:
        return "revocation-not-admin"
    if not verifier.verify(rev.admin, _ctx(CONTEXT_REVOKE, network, rev.body()), rev.signature):
        return "revocation-bad-signature"
    return None
