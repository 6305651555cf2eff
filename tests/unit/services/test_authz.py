"""Who may serve: grants verify per network and instance, pins and first claims on the public
network, admins on a private one."""

from __future__ import annotations

from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity
from hyphal.services.authz import Authority, Claim
from hyphal.services.grant import make_grant

NET = b"hyphal public network"
OWNER, OTHER, INST, INST2 = (NodeIdentity.generate() for _ in range(4))
WALL = 1_700_000_000.0


def claim(
    owner: NodeIdentity,
    inst: NodeIdentity,
    *,
    service: str = "web",
    since: int = 100,
    expires: int = int(WALL) + 3600,
    network: bytes = NET,
    carried_by: NodeIdentity | None = None,
) -> Claim:
    g = make_grant(
        XEdDSASigner(owner.private_bytes()),
        network,
        service=service,
        instance=inst.public_key,
        owner=owner.public_key,
        since=since,
        expires=expires,
    )
    return Claim(service, (carried_by or inst).public_key, g.proof())


def test_first_claim_owns_the_name_on_the_public_network() -> None:
    auth = Authority(NET, XEdDSAVerifier())
    first, later = claim(OWNER, INST, since=100), claim(OTHER, INST2, since=200)
    owners = auth.owners([later, first], WALL)
    assert owners == {"web": OWNER.public_key}
    assert auth.allows(first, owners, WALL) and not auth.allows(later, owners, WALL)


def test_a_pin_beats_an_earlier_claim() -> None:
    auth = Authority(NET, XEdDSAVerifier(), pins={"web": OTHER.public_key})
    first, pinned = claim(OWNER, INST, since=1), claim(OTHER, INST2, since=999)
    owners = auth.owners([first, pinned], WALL)
    assert auth.allows(pinned, owners, WALL) and not auth.allows(first, owners, WALL)


def test_a_copied_expired_foreign_or_missing_grant_never_holds() -> None:
    auth = Authority(NET, XEdDSAVerifier())
    good = claim(OWNER, INST)
    bad = [
        claim(OWNER, INST, carried_by=INST2),  # a proof copied into another node's record
        claim(OWNER, INST, expires=int(WALL) - 1),
        claim(OWNER, INST, network=b"another network"),
        Claim("web", INST.public_key, claim(OWNER, INST, service="db").proof),  # another name
        Claim("web", INST.public_key, None),
        Claim("web", INST.public_key, b"\x00" * 104),
    ]
    owners = auth.owners([good, *bad], WALL)
    assert owners == {"web": OWNER.public_key}
    assert auth.allows(good, owners, WALL)
    assert not any(auth.allows(c, owners, WALL) for c in bad)


def test_on_a_private_network_only_admin_grants_hold() -> None:
    auth = Authority(NET, XEdDSAVerifier(), admins=frozenset({OWNER.public_key}))
    by_admin, by_member = claim(OWNER, INST), claim(INST2, INST2)
    owners = auth.owners([by_admin, by_member], WALL)
    assert owners == {}
    assert auth.allows(by_admin, owners, WALL) and not auth.allows(by_member, owners, WALL)


def test_a_known_owner_stays_while_a_backdated_claim_arrives() -> None:
    auth = Authority(NET, XEdDSAVerifier())
    honest, backdated = claim(OWNER, INST, since=500), claim(OTHER, INST2, since=1)
    sticky = {"web": OWNER.public_key}
    owners = auth.owners([honest, backdated], WALL, sticky)
    assert owners == {"web": OWNER.public_key}
    assert not auth.allows(backdated, owners, WALL)
    # once the known owner publishes no valid grant any more, the first claim wins
    assert auth.owners([backdated], WALL, sticky) == {"web": OTHER.public_key}
