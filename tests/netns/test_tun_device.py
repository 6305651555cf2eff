"""TunDevice end to end inside a network namespace created (and always deleted) by this test.

The test thread enters the namespace with setns(2) for the duration of the test (only this
thread moves; child processes such as ``ping`` inherit it), so every packet stays inside it.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from ipaddress import IPv6Address

import pytest

from hyphal.dataplane import ipv6
from hyphal.dataplane.tun import TunDevice, TunError

pytestmark = pytest.mark.netns

OUR = IPv6Address("400:1234:5678:9abc::1")
PEER = IPv6Address("5ff:ffff::42")  # another overlay address, reached through the TUN


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (ip netns, TUNSETIFF)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if shutil.which("ip") is None or shutil.which("ping") is None:
        return "needs iproute2 `ip` and `ping`"
    return None


@pytest.fixture
def in_netns() -> Iterator[str]:
    """Create a uniquely named namespace, move this thread into it, always undo both."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from pyroute2 import netns

    name = f"hytun-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        netns.pushns(name)
        try:
            yield name
        finally:
            netns.popns()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _wait_readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_tun_address_mtu_up_ping_and_close(in_netns: str) -> None:
    from pyroute2 import IPRoute

    dev = TunDevice.open("hytest0", OUR, 9000)
    try:
        with IPRoute() as ipr:
            (link,) = ipr.get_links(ifname="hytest0")
            assert link.get("IFLA_MTU") == 9000
            assert link.get("IFLA_TXQLEN") == 1000
            assert link["flags"] & 1, "interface is not up"
            addrs = ipr.get_addr(family=10, index=link["index"])
            found = [
                (a.get("IFA_ADDRESS"), a["prefixlen"], a.get("IFA_FLAGS", a["flags"]))
                for a in addrs
            ]
            assert (str(OUR), 7, True) in [(x, p, bool(f & 0x02)) for x, p, f in found], found
            assert all(not str(x).startswith("fe80") for x, _, _ in found), "link-local generated"

        with pytest.raises(TunError) as excinfo:
            TunDevice.open("hytest0", OUR, 9000)
        assert excinfo.value.errno == errno.EEXIST and "in use" in str(excinfo.value)

        ping = subprocess.Popen(
            ["ping", "-6", "-c1", "-W5", "-s", "100", str(PEER)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            buf = bytearray(dev.mtu)
            request = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not request:
                if not _wait_readable(dev.fileno(), 0.5):
                    continue
                while n := dev.read_into(buf):
                    pkt = bytes(buf[:n])
                    if (
                        ipv6.is_valid_ipv6(pkt)
                        and ipv6.next_header(pkt) == ipv6.ICMPV6
                        and pkt[40] == ipv6.ICMPV6_ECHO_REQUEST
                    ):
                        request = pkt
                        break
            assert request, "no echo request came out of the TUN"
            assert ipv6.src(request) == OUR.packed and ipv6.dst(request) == PEER.packed
            assert ipv6.icmpv6_checksum_ok(request)
            reply = ipv6.echo_reply(request)
            assert reply is not None and ipv6.icmpv6_checksum_ok(reply)
            assert dev.write(reply)
            out, _ = ping.communicate(timeout=10)
        finally:
            if ping.poll() is None:
                ping.kill()
                ping.wait()
        assert ping.returncode == 0, out
        assert "1 received" in out, out
    finally:
        dev.close()
    dev.close()  # idempotent
    with IPRoute() as ipr:
        assert ipr.link_lookup(ifname="hytest0") == []


def test_tun_default_mtu_and_error_reply_reaches_stack(in_netns: str) -> None:
    """A Destination Unreachable written to the TUN is accepted by the kernel (ping sees it)."""
    with TunDevice.open("hytest1", OUR) as dev:
        assert dev.mtu == 65535
        ping = subprocess.Popen(
            ["ping", "-6", "-c1", "-W5", str(PEER)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert _wait_readable(dev.fileno(), 5)
            request = dev.read()
            err = ipv6.destination_unreachable(request, PEER.packed, ipv6.UNREACH_NO_ROUTE)
            assert err is not None and dev.write(err)
            out, _ = ping.communicate(timeout=10)
        finally:
            if ping.poll() is None:
                ping.kill()
                ping.wait()
        assert ping.returncode != 0
        assert "Destination unreachable" in out or "No route" in out, out
