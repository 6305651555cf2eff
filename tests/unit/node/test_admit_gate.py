"""The link gate alone, with a real membership store behind it: which frames pass on probation,
when a link becomes full, and which links are closed (no event loop: no grace timer)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity
from hyphal.membership import admission, invites
from hyphal.membership.admission import AdmissionPolicy
from hyphal.membership.store import KIND_ADMISSION
from hyphal.membership.wire import FRAME_MEMBERS
from hyphal.node.admit import AdmissionGate
from hyphal.node.members import MembersPart
from hyphal.wire.link import FRAME_CONTROL, FRAME_DATA

NET = "fleet"


@dataclass
class FakeLink:
    """Only what the gate reads of a PeerLink."""

    id: int
    remote_public_key: bytes
    remote_address: str = "peer:9651"


class Harness:
    def __init__(self) -> None:
        self.admin = NodeIdentity.generate()
        me = NodeIdentity.generate()
        self.part = MembersPart(
            me.public_key,
            XEdDSASigner(me.private_bytes()),
            XEdDSAVerifier(),
            NET,
            links=lambda _: None,
            reachable=lambda _: False,
            clock=time.monotonic,
            policy=AdmissionPolicy(frozenset({self.admin.public_key})),
            own_admission=self.admission(me),
        )
        self.full: list[int] = []
        self.closed: list[tuple[int, str]] = []
        self.drops: list[str] = []
        self.gate = AdmissionGate(
            self.part,  # type: ignore[arg-type]
            lambda link: self.full.append(link.id),
            lambda i, why: self.closed.append((i, why)),
            self.drops.append,
        )

    def admission(self, who: NodeIdentity) -> bytes:
        now = int(time.time())
        return invites.self_admission(self.admin, NET, who.public_key, now)

    def admit(self, who: NodeIdentity) -> None:
        core = self.part.core
        verdict, actions = core.submit(KIND_ADMISSION, self.admission(who), time.monotonic())
        assert verdict == "accepted"
        self.part._apply(actions)

    def revoke(self, who: NodeIdentity) -> None:
        rev = admission.make_revocation(
            XEdDSASigner(self.admin.private_bytes()),
            self.admin.public_key,
            NET.encode(),
            who.public_key,
            int(time.time()),
        )
        assert self.part.submit_revocation(rev.encode()) == "accepted"


def test_probation_passes_only_membership_frames_until_admitted() -> None:
    h = Harness()
    peer = NodeIdentity.generate()
    link = FakeLink(7, peer.public_key)
    h.gate.link_up(link)  # type: ignore[arg-type]
    assert h.full == [] and h.gate.on_probation() == [7]
    assert h.gate.allows(link, FRAME_MEMBERS)  # type: ignore[arg-type]
    assert not h.gate.allows(link, FRAME_CONTROL)  # type: ignore[arg-type]
    assert not h.gate.allows(link, FRAME_DATA)  # type: ignore[arg-type]
    assert h.drops == ["not-admitted-frame", "not-admitted-frame"]
    h.admit(peer)
    assert h.full == [7] and h.gate.on_probation() == []
    assert h.gate.allows(link, FRAME_CONTROL)  # type: ignore[arg-type]
    assert h.gate.link_down(link)  # type: ignore[arg-type]


def test_an_admitted_key_is_full_at_once_and_closed_when_revoked() -> None:
    h = Harness()
    peer = NodeIdentity.generate()
    h.admit(peer)
    link = FakeLink(3, peer.public_key)
    h.gate.link_up(link)  # type: ignore[arg-type]
    assert h.full == [3]
    h.revoke(peer)
    assert h.closed and h.closed[0][0] == 3 and "revoked" in h.closed[0][1]
    h.gate.link_down(link)  # type: ignore[arg-type]
    h.gate.link_up(FakeLink(4, peer.public_key))  # type: ignore[arg-type]
    assert h.closed[-1][0] == 4 and h.full == [3]  # refused right after the handshake


def test_probation_is_bounded() -> None:
    h = Harness()
    h.gate.max_probation = 2
    for i in range(4):
        h.gate.link_up(FakeLink(i, NodeIdentity.generate().public_key))  # type: ignore[arg-type]
    assert h.gate.on_probation() == [0, 1]
    assert [i for i, _ in h.closed] == [2, 3]
    assert all("waiting for admission" in why for _, why in h.closed)
