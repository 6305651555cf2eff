"""`hyphal dns status` against a real DNS part's status (human output and its wording)."""

from __future__ import annotations

import time

import pytest

from hyphal.cli.dns import show_dns
from hyphal.config import NodeConfig
from hyphal.dns.part import dns_part
from hyphal.identity import NodeIdentity


async def test_status_shows_zone_listeners_and_resolved(capsys: pytest.CaptureFixture[str]) -> None:
    identity = NodeIdentity.generate()
    config = NodeConfig(no_tun=True, member_name="db1", dns_port=0, network_name="fleet")
    part = dns_part(config, identity, lambda prefix: None, time.monotonic, lambda: False)
    assert part is not None
    await part.start()
    port = part.server.bound_port
    try:
        show_dns(part.status())
    finally:
        await part.stop()
    text = capsys.readouterr().out
    assert "fleet.internal (reverse: 4.0.ip6.arpa, 5.0.ip6.arpa)" in text
    assert f"udp 127.0.0.1:{port}" in text and "listening" in text
    assert "off: no TUN (--no-tun)" in text and "REFUSED" in text
    assert "no queries yet" in text


def test_no_dns_builds_no_part() -> None:
    config = NodeConfig(no_dns=True)
    assert (
        dns_part(config, NodeIdentity.generate(), lambda p: None, time.monotonic, lambda: False)
        is None
    )
