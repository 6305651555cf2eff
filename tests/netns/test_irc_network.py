"""Issue 11's end-to-end proof: a Magnet-style IRC network (Debian's InspIRCd 3) on hyphal.

A hub and two leaves in two regions, linked by InspIRCd server links over hyphal overlay
addresses; users are the ``irc`` library's connections. The network is built by
``examples/irc/ircnet.py``, the same code the example script ``examples/irc/run.py`` runs.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hyphal.testing.netlab import Topology

pytestmark = pytest.mark.netns

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "irc" / "ircnet.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ircnet", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ircnet"] = module
    spec.loader.exec_module(module)
    return module


ircnet = _load_example()


@pytest.fixture
def network(topology: Callable[..., Topology]) -> Iterator[Any]:
    if shutil.which(ircnet.INSPIRCD) is None:
        pytest.skip("InspIRCd is not installed (apt-get install inspircd; scripts/setup.sh)")
    net = ircnet.MagnetNetwork.build(topology)
    try:
        yield net
    finally:
        net.close()


def test_two_regions_talk_across_linked_servers_and_whois_shows_the_client_address(
    network: Any,
) -> None:
    net = network
    # The hub listed both leaves before build() returned: server links over overlay addresses.
    linked = net.linked_servers()
    assert linked == {ircnet.HUB_SERVER, "eu.leaf.irc.example", "us.leaf.irc.example"}

    # Each user's connection carries a PROXY v2 header naming the user namespace's address,
    # written from the region's ingress namespace, as the ingress does (v4 in eu, v6 in us).
    alice = net.connect_with_header("alice", "eu", family=4)
    bob = net.connect_with_header("bob", "us", family=6)
    net.wait(lambda: alice.welcomed and bob.welcomed, 15, "both users registered")
    assert alice.server == "eu.leaf.irc.example"
    assert bob.server == "us.leaf.irc.example"

    alice.conn.join(ircnet.CHANNEL)
    bob.conn.join(ircnet.CHANNEL)
    net.wait(
        lambda: len([e for e in alice.of_type("join") if e.source.nick == "bob"]) == 1,
        10,
        "alice sees bob join",
    )
    alice.conn.privmsg(ircnet.CHANNEL, "hello from eu")
    bob.conn.privmsg(ircnet.CHANNEL, "hello from us")
    net.wait(lambda: bob.said("hello from eu") and alice.said("hello from us"), 10, "messages")

    host, server = net.whois(bob, "alice")
    assert host == net.user_address("eu", 4), host
    assert server == "eu.leaf.irc.example"
    host, server = net.whois(alice, "bob")
    assert host == net.user_address("us", 6), host
    assert server == "us.leaf.irc.example"
    assert not ircnet.is_overlay(host)

    # The PROXY port takes no connection without a header: plain IRC there is dropped, never
    # registered (the spec's rule: a receiver must not guess whether a header is present).
    leaf_eu = str(net.node("leaf_eu").address)
    mallory = net.connect_plain("mallory", "ingr_eu", leaf_eu, ircnet.CLIENT_PORT)
    net.wait(lambda: not mallory.connected, 10, "InspIRCd closing a header-less connection")
    assert not mallory.welcomed


def test_through_each_regions_ingress_with_failover_to_the_other_leaf_and_back(
    network: Any, record_property: Callable[[str, object], None]
) -> None:
    net = network
    net.start_services()  # service add irc on both leaves, ingress add on both ingress nodes

    alice, _ = net.land("alice", "eu", family=4)
    bob, _ = net.land("bob", "us", family=6)
    assert alice.server == "eu.leaf.irc.example"
    assert bob.server == "us.leaf.irc.example"
    for user in (alice, bob):
        user.conn.join(ircnet.CHANNEL)
    net.wait(lambda: any(e.source.nick == "bob" for e in alice.of_type("join")), 10, "bob joined")
    alice.conn.privmsg(ircnet.CHANNEL, "eu via ingress")
    bob.conn.privmsg(ircnet.CHANNEL, "us via ingress")
    net.wait(lambda: bob.said("eu via ingress") and alice.said("us via ingress"), 10, "chat")

    # WHOIS shows the address each user connected from: not the ingress's, not an overlay one.
    host, _ = net.whois(bob, "alice")
    assert host == net.user_address("eu", 4), host
    host, _ = net.whois(alice, "bob")
    assert host == net.user_address("us", 6), host
    assert host != net.ingress_public_address("us", 6) and not ircnet.is_overlay(host)

    # eu's leaf dies: new users at eu's ingress land on the us leaf within 5 s; bob stays.
    net.leaf("eu").stop()
    carol, took = net.land("carol", "eu", family=4, timeout=15)
    record_property("failover_seconds", round(took, 3))
    assert carol.server == "us.leaf.irc.example"
    assert took <= 5.0, f"new connections reached the other leaf only after {took:.1f} s"
    assert bob.connected and not bob.of_type("disconnect")
    carol.conn.join(ircnet.CHANNEL)
    net.wait(lambda: any(e.source.nick == "carol" for e in bob.of_type("join")), 10, "carol")
    carol.conn.privmsg(ircnet.CHANNEL, "eu, rerouted")
    net.wait(lambda: bob.said("eu, rerouted"), 10, "bob hears carol")
    host, server = net.whois(bob, "carol")
    assert (host, server) == (net.user_address("eu", 4), "us.leaf.irc.example")

    # It comes back: it relinks to the hub, passes its checks, and new eu users return to it.
    restarted = time.monotonic()
    net.leaf("eu").start()
    net.wait_linked(timeout=30)
    meanwhile = []
    dave, _ = net.land("dave", "eu", family=6, timeout=15)
    while dave.server != "eu.leaf.irc.example":
        # Until eu's leaf is healthy again (rise checks, then its record spreads) the ingress
        # still sends new users to us; each such user is a real connection, kept to the end.
        meanwhile.append(dave)
        assert time.monotonic() - restarted < 30, "new eu users never returned to the eu leaf"
        net.pump(0.2)
        dave, _ = net.land(f"dave{len(meanwhile)}", "eu", family=6, timeout=15)
    record_property("return_seconds", round(time.monotonic() - restarted, 3))
    host, _ = net.whois(bob, dave.nick)
    assert host == net.user_address("eu", 6), host
    assert all(u.connected for u in (bob, carol, *meanwhile))  # the others were untouched
