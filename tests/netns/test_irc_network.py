"""Issue 11's end-to-end proof: a Magnet-style IRC network (Debian's InspIRCd 3) on hyphal.

A hub and two leaves in two regions, linked by InspIRCd server links over hyphal overlay
addresses; users are the ``irc`` library's connections. The network is built by
``examples/irc/ircnet.py``, the same code the example script ``examples/irc/run.py`` runs.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
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
