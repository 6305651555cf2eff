"""The feeder's pure parts and its state on an in-memory database: lazy blocks, filters, cycles,
hop feedback, stop sets, export/import."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from hyphal.mapping.db import Database
from hyphal.mapping.feeder.prefixes import PrefixError, TargetFilter, subtract
from hyphal.mapping.feeder.space import TargetSpace, block_key, read_sources
from hyphal.mapping.feeder.state import FeederState, SourcesChanged

LAB = TargetFilter.build(exceptions=["198.18.0.0/15", "2001:db8::/32"])


def prefix24(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return block_key(address.version, int(address))


def test_a_slash8_is_one_segment_and_never_expanded() -> None:
    space = TargetSpace(["8.0.0.0/8"], TargetFilter.build())
    assert space.blocks == 65536 and len(space.segments) == 1
    af, net, hosts = space.block_of(65535)
    assert (af, str(ipaddress.IPv4Address(net)), hosts) == (4, "8.255.255.0", None)


def test_partial_blocks_merge_and_filters_cut_before_enumeration() -> None:
    f = TargetFilter.build(optout=["198.18.1.128/25"], exceptions=["198.18.0.0/15"])
    space = TargetSpace(
        ["198.18.0.5", "198.18.0.9/32", "198.18.1.0/24", "10.1.0.0/16", "203.0.113.0/24"], f
    )
    # 198.18.0.{5,9} is one partial block; 198.18.1.0/24 lost its opt-out half; the private
    # /16 and the documentation /24 (no exception) are gone.
    assert space.blocks == 2
    hosts = {space.host(0, c, b"k")[1] for c in range(4)}
    assert hosts == {"198.18.0.5", "198.18.0.9"}
    second = {space.host(1, c, b"k")[1] for c in range(128)}
    assert len(second) == 128 and all(int(ip.rsplit(".", 1)[1]) < 128 for ip in second)


def test_filter_verdicts() -> None:
    f = TargetFilter.build(
        optout=["198.18.7.0/24", "2001:db8:7::/48"], exceptions=["198.18.0.0/15", "2001:db8::/32"]
    )
    assert f.verdict("198.18.3.1") is None
    assert f.verdict("198.18.7.1") == "optout"
    assert f.verdict("2001:db8:7::1") == "optout"
    assert f.verdict("2001:db8:8::1") is None
    assert f.verdict("10.0.0.1") == "bogon"
    assert f.verdict("fe80::1") == "bogon"
    assert f.verdict("400::1") == "bogon"  # the overlay itself
    assert f.verdict("8.8.8.8") is None
    assert f.verdict("not-an-ip") == "invalid"


def test_subtract() -> None:
    assert subtract([(0, 100)], [(10, 20), (50, 200)]) == [(0, 9), (21, 49)]
    assert subtract([(0, 5), (10, 15)], [(3, 12)]) == [(0, 2), (13, 15)]


def test_source_files_and_directories(tmp_path: Path) -> None:
    d = tmp_path / "cloud-provider-ip-addresses"
    (d / "aws").mkdir(parents=True)
    (d / "aws" / "v4.txt").write_text("# aws\n198.18.0.0/24\n\n198.18.1.1  # one host\n")
    (d / "gcp.txt").write_text("2001:db8::/48\n")
    (d / "README.md").write_text("not a list\n")
    assert read_sources([d]) == ["198.18.0.0/24", "198.18.1.1", "2001:db8::/48"]
    (d / "bad.txt").write_text("198.18.0.0/24\nfoo\n")
    with pytest.raises(PrefixError, match=r"bad.txt:2"):
        read_sources([d])


def feeder(cidrs: list[str], db: Database | None = None) -> FeederState:
    return FeederState(db or Database(":memory:"), TargetSpace(cidrs, LAB), LAB)


def test_a_cycle_hands_out_every_block_once_then_the_next_begins() -> None:
    state = feeder(["198.18.0.0/22", "2001:db8::/47"])
    assert state.space.blocks == 6
    first = state.claim("w1", 4, 1.0)
    rest = state.claim("w2", 4, 2.0)
    assert first.cycle_id == rest.cycle_id == "c1"
    ips = [t.ip for t in first.targets + rest.targets]
    assert len(ips) == 6 and len({prefix24(ip) for ip in ips}) == 6
    nxt = state.claim("w1", 10, 3.0)
    assert nxt.cycle_id == "c2" and len(nxt.targets) == 6
    assert prefix24(nxt.targets[0].ip) != prefix24(ips[-1])  # the rule holds across cycles
    # The host inside a block moves on with the cycle.
    assert set(ips) != {t.ip for t in nxt.targets}
    stats = state.stats()
    assert stats["targetsServed"] == 12
    assert {c["worker"]: c["given"] for c in stats["consumers"]} == {"w1": 10, "w2": 2}


def test_hops_grow_the_pool_with_dedupe_and_stop_sets() -> None:
    state = feeder(["198.18.0.0/24"])
    report = state.add_hops(
        [
            {"ip": "198.19.5.1", "ttl": 4, "target": "198.18.0.7", "worker": "w1"},
            {"ip": "198.19.5.1", "ttl": 5, "target": "198.18.0.8", "worker": "w2"},  # dup
            {"ip": "198.19.5.2", "ttl": 6, "target": "198.18.0.7", "worker": "w1"},  # same /24
            {"ip": "198.19.9.1", "ttl": 1, "target": "198.18.0.7", "worker": "w1"},  # near w1
            {"ip": "198.18.0.200", "ttl": 3, "target": "198.18.0.7", "worker": "w1"},  # static
            {"ip": "192.168.1.1", "ttl": 3, "target": "198.18.0.7", "worker": "w1"},  # bogon
        ],
        1.0,
    )
    assert (report.added, report.known, report.near, report.filtered) == (2, 2, 1, 1)
    again = state.add_hops([{"ip": "198.19.5.2", "ttl": 6}], 2.0)
    assert (again.added, again.known) == (0, 1)
    stats = state.stats()
    assert stats["hopTargets"] == 2 and stats["hopBlocks"] == 1
    stop = state.stop_set("w1", "198.18.0.99")
    assert stop["local"] == ["198.19.9.1"]
    assert stop["global"] == ["198.18.0.200", "198.19.5.1", "198.19.5.2", "198.19.9.1"]
    # The next cycle's universe holds the hop block; its hosts take turns across cycles.
    c1 = state.claim("w1", 10, 3.0)
    c2 = state.claim("w1", 10, 4.0)
    c3 = state.claim("w1", 10, 5.0)
    assert len(c1.targets) == 2  # cycle 1 began with the hop block already there
    hop_ips = {t.ip for c in (c1, c2, c3) for t in c.targets if t.ip.startswith("198.19.")}
    assert hop_ips == {"198.19.5.1", "198.19.5.2"}


def test_export_import_round_trip() -> None:
    a = feeder(["198.18.0.0/23"])
    a.claim("w1", 1, 1.0)
    a.claim("w2", 1, 2.0)
    exported = a.export()
    assert [x["worker"] for x in exported["assignments"]] == ["w1", "w2"]
    b = feeder(["198.18.0.0/23"])
    assert b.import_(exported) == {"consumers": 2, "assignments": 2}
    assert b.import_(exported)["assignments"] == 0
    assert b.export() == exported
    # What w1 was given can be recomputed from the record.
    rec = exported["assignments"][0]
    recomputed = a.assignment_targets(rec["cycle"], rec["start"], rec["count"])
    assert len(recomputed) == 1


def test_another_instance_with_other_sources_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "feeder.db")
    old = feeder(["198.18.0.0/24"], Database(path))
    old.claim("w1", 1, 1.0)
    new = feeder(["198.18.0.0/23"], Database(path))
    new.adopt_sources(2.0)
    assert new.claim("w1", 5, 3.0).cycle_id == "c2"
    with pytest.raises(SourcesChanged, match="restart this one"):
        old.claim("w1", 1, 4.0)
