"""Keys, signers and cores for the membership tests (real XEdDSA keys, no fakes)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.membership.admission import AdmissionPolicy
from hyphal.membership.gossip import MembershipCore
from hyphal.membership.params import DEFAULT_PARAMS, MembershipParams

NETWORK = b"test-net"
WALL = 1.8e9


@dataclass
class Key:
    identity: NodeIdentity
    signer: XEdDSASigner

    @property
    def public(self) -> bytes:
        return self.identity.public_key

    @property
    def prefix(self) -> bytes:
        return prefix64_for_public_key(self.public)


_KEYS: list[Key] = []


def key(i: int) -> Key:
    """Key pair ``i``: made once per process."""
    while len(_KEYS) <= i:
        ident = NodeIdentity.from_private_bytes(random.Random(len(_KEYS)).randbytes(32))
        _KEYS.append(Key(ident, XEdDSASigner(ident.private_bytes())))
    return _KEYS[i]


def core(
    i: int,
    now: float = 0.0,
    *,
    params: MembershipParams = DEFAULT_PARAMS,
    policy: AdmissionPolicy | None = None,
    own_admission: bytes | None = None,
) -> MembershipCore:
    k = key(i)
    return MembershipCore(
        k.public,
        k.signer,
        XEdDSAVerifier(),
        NETWORK,
        now,
        wall_offset=WALL,
        rng=random.Random(i),
        params=params,
        policy=policy,
        own_admission=own_admission,
    )
