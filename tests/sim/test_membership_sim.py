"""The real membership cores on the simulator (small nets, fast): propagation, cold start,
partitions, name claims and admission behave as docs/membership.md says."""

from __future__ import annotations

import os
import random

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.membership import admission as adm
from hyphal.membership.admission import AdmissionPolicy
from hyphal.membership.params import MembershipParams
from hyphal.membership.store import KIND_REVOCATION
from hyphal.sim import topologies
from hyphal.sim.membernet import NETWORK, WALL_OFFSET, MemberNet
from hyphal.sim.memberrun import measure

N = 60


def geo(n: int = N) -> topologies.Topology:
    return topologies.build("geo", n, 3, 5)


def test_a_change_reaches_every_node_quickly() -> None:
    net = MemberNet(geo(), seed=2)
    net.warm_start()
    net.run_for(12.0)
    key = net.publish(7, region="ams")
    net.run_for(5.0)
    arrivals = net.tracked[key]
    assert len(arrivals) == N
    assert max(arrivals.values()) - min(arrivals.values()) < 3.0
    for core in net.cores:
        assert core is not None
        got = core.lookup("n7")
        assert got is not None and got.region == "ams"


def test_cold_start_every_node_learns_every_member() -> None:
    net = MemberNet(geo(), seed=3)
    order = list(range(N))
    random.Random(1).shuffle(order)
    for i in order:
        net.start(i)
        net.run_for(0.2)
    net.run_for(40.0)
    assert net.converged()
    for core in net.cores:
        assert core is not None and core.store.member_count() == N


def test_partition_heals_by_anti_entropy() -> None:
    top = topologies.build("ring", 20, 2, 1)
    net = MemberNet(top, seed=4)
    net.warm_start()
    net.run_for(12.0)
    net.link_down(0, 1)
    net.link_down(10, 11)
    net.publish(5, region="west")
    net.publish(15, region="east")
    net.run_for(5.0)
    assert not net.converged() or len(net.components()) == 2
    c2 = net.cores[2]
    assert c2 is not None and c2.lookup("n15").region == ""  # type: ignore[union-attr]
    net.link_up(0, 1)
    net.link_up(10, 11)
    net.run_for(30.0)
    assert net.converged()
    for core in net.cores:
        assert core is not None
        assert core.lookup("n15").region == "east"  # type: ignore[union-attr]
        assert core.lookup("n5").region == "west"  # type: ignore[union-attr]


def test_duplicate_name_is_resolved_the_same_way_everywhere() -> None:
    net = MemberNet(geo(), seed=5)
    net.warm_start()
    net.run_for(12.0)
    net.publish(3, name="db1")
    net.run_for(1.0)
    net.publish(40, name="db1")
    net.run_for(10.0)
    owners = set()
    for core in net.cores:
        assert core is not None
        owner = core.lookup("db1")
        assert owner is not None
        owners.add(owner.origin)
    assert owners == {net.identities[3].public_key}
    lost = [(i, e.name) for _, i, e in net.events if e.what == "name-lost"]
    assert lost == [(40, "db1")]


def test_graceful_leave_and_expiry() -> None:
    params = MembershipParams(record_ttl_s=60, tombstone_ttl_s=60)
    net = MemberNet(geo(30), seed=6, params=params)
    net.warm_start()
    net.run_for(12.0)
    net.leave(4)
    net.run_for(2.0)
    net.stop(4)
    net.stop(9)  # silent stop: its record stays until it expires
    core0 = net.cores[0]
    assert core0 is not None
    assert core0.lookup("n4") is None
    assert core0.lookup("n9") is not None
    net.run_for(70.0)
    assert core0.lookup("n9") is None
    assert core0.lookup("n10") is not None  # refreshed members stay
    assert core0.store.record(net.cores[10].prefix) is not None  # type: ignore[union-attr]


def test_private_network_admission_and_revocation() -> None:
    admin = NodeIdentity.from_private_bytes(random.Random(99).randbytes(32))
    admin_signer = XEdDSASigner(admin.private_bytes())
    policy = AdmissionPolicy(frozenset({admin.public_key}))
    top = geo(20)
    net = MemberNet(top, seed=7, policy=policy)
    outsider = 13
    for i in range(20):
        if i == outsider:
            continue
        invite_key = NodeIdentity.generate()
        inv = adm.make_invite(
            admin_signer,
            admin.public_key,
            NETWORK,
            invite_id=os.urandom(16),
            invite_key=invite_key.public_key,
            expires=int(WALL_OFFSET + 3600),
        )
        signer = XEdDSASigner(invite_key.private_bytes())
        member = net.identities[i].public_key
        net.admissions[i] = adm.redeem(inv, signer, NETWORK, member, int(WALL_OFFSET)).encode()
    for i in range(20):
        net.start(i)
    net.run_for(40.0)
    for i in range(20):
        core = net.cores[i]
        assert core is not None
        if i != outsider:
            assert core.lookup(f"n{outsider}") is None
            assert core.lookup("n2") is not None
    victim = net.identities[2].public_key
    rev = adm.make_revocation(admin_signer, admin.public_key, NETWORK, victim, int(WALL_OFFSET))
    core0 = net.cores[0]
    assert core0 is not None
    reason, actions = core0.submit(KIND_REVOCATION, rev.encode(), net.now)
    assert reason == "accepted"
    net.slots[0].feed(actions)
    net.run_for(3.0)
    for i in range(20):
        core = net.cores[i]
        if core is not None and i not in (2, outsider):
            assert core.lookup("n2") is None, i
            assert core.is_revoked(victim)


def test_measure_small_net_meets_the_targets() -> None:
    r = measure(geo(), seed=1, idle=10.0, changes=5, churn=10.0, churn_per_min=0.5, tail=20.0)
    assert r.changes_incomplete == 0
    assert r.change_to_all_max_s < 3.0
    assert 0 < r.idle_bytes_per_node_s < 1000
    assert r.churn_bytes_per_node_s > r.idle_bytes_per_node_s
    assert 0 < r.memory_per_member_b < 2000
    assert r.converged_at_end
