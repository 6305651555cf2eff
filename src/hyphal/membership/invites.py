"""Making invites and admissions from keys: what `hyphal network create`, `hyphal invite` and
`hyphal join` do with the pure codecs of :mod:`admission` and :mod:`token`.

Each invite has a fresh one-off key pair: the issuer signs its public half into the invite, the
private half travels in the token, and the joiner signs its redemption with it. The creator of
a network admits itself the same way (an invite from the admin key, redeemed at once, with the
INVITER flag so the node can invite without the admin key at hand).
"""

from __future__ import annotations

import os

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.membership import admission
from hyphal.membership.admission import DEFAULT_EXPIRY_GRACE_S, Invite
from hyphal.membership.token import InviteToken

SELF_INVITE_TTL_S = 600


def _invite(
    issuer: NodeIdentity, network_name: str, expires: int, inviter: bool
) -> tuple[Invite, NodeIdentity]:
    invite_key = NodeIdentity.generate()
    inv = admission.make_invite(
        XEdDSASigner(issuer.private_bytes()),
        issuer.public_key,
        network_name.encode(),
        invite_id=os.urandom(admission.INVITE_ID_SIZE),
        invite_key=invite_key.public_key,
        expires=expires,
        inviter=inviter,
    )
    return inv, invite_key


def self_admission(admin: NodeIdentity, network_name: str, member: bytes, now: int) -> bytes:
    """The creator's admission: an inviter invite from the admin key, redeemed at once."""
    inv, invite_key = _invite(admin, network_name, now + SELF_INVITE_TTL_S, inviter=True)
    signer = XEdDSASigner(invite_key.private_bytes())
    return admission.redeem(inv, signer, network_name.encode(), member, now).encode()


def new_token(
    issuer: NodeIdentity,
    *,
    network_name: str,
    network_key: bytes,
    admin_keys: tuple[bytes, ...],
    peers: tuple[str, ...],
    expires: int,
    name: str = "",
    region: str = "",
    role: str = "",
    inviter: bool = False,
) -> InviteToken:
    """A fresh single-use invite, signed by ``issuer`` (an admin key or an inviter node)."""
    inv, invite_key = _invite(issuer, network_name, expires, inviter)
    return InviteToken(
        network_name,
        network_key,
        admin_keys,
        peers,
        name,
        region,
        role,
        inv,
        invite_key.private_bytes(),
    )


def redeem_token(token: InviteToken, member: bytes, now: int) -> bytes:
    """The joiner's admission: the token's invite redeemed for ``member`` at ``now``."""
    signer = XEdDSASigner(token.invite_private_key)
    return admission.redeem(
        token.invite, signer, token.network_name.encode(), member, min(now, token.invite.expires)
    ).encode()


def expired(token: InviteToken, now: float) -> bool:
    """Whether every member would refuse a redemption first seen ``now`` (the network's rule,
    :func:`admission.check_admission`: past the expiry plus the clock-skew grace)."""
    return now > token.invite.expires + DEFAULT_EXPIRY_GRACE_S
