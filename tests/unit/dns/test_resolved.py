"""systemd-resolved registration: the D-Bus calls `resolvectl dns/domain` would make, and what
happens where resolved does not run (this machine: no systemd as PID 1)."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address

from hyphal.dns.resolved import ResolvedLink, link_commands, revert_command, run_command

ADDR = IPv6Address("4aa::1")


def test_link_commands_set_dns_routing_domains_and_no_default_route() -> None:
    dns, domains, default = link_commands(7, ADDR, 53, ["hyphal.internal", "4.0.ip6.arpa"])
    assert dns[6:9] == ["SetLinkDNS", "ia(iay)", "7"]
    assert dns[9:12] == ["1", "10", "16"] and [int(b) for b in dns[12:]] == list(ADDR.packed)
    assert domains[6:] == [
        "SetLinkDomains",
        "ia(sb)",
        "7",
        "2",
        "hyphal.internal",
        "true",
        "4.0.ip6.arpa",
        "true",
    ]
    assert default[6:] == ["SetLinkDefaultRoute", "ib", "7", "false"]
    ex = link_commands(7, ADDR, 5353, ["hyphal.internal"])[0]
    assert ex[6:8] == ["SetLinkDNSEx", "ia(iayqs)"] and ex[-2:] == ["5353", ""]
    assert revert_command(7)[6:] == ["RevertLink", "i", "7"]


class Recorder:
    def __init__(self, fail: str | None = None, running: bool = True) -> None:
        self.calls: list[list[str]] = []
        self.fail, self.running = fail, running

    async def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if "Ping" in argv and not self.running:
            return 1, "", "Failed to connect to bus: No such file or directory\n"
        if self.fail is not None and self.fail in argv:
            return 1, "", "Access denied"
        return 0, "", ""


async def test_register_then_revert() -> None:
    rec = Recorder()
    link = ResolvedLink(rec)
    status = await link.register("hyphal0", 7, ADDR, 53, ["hyphal.internal"])
    assert status.state == "registered" and "~hyphal.internal" in status.detail
    await link.revert()
    assert rec.calls[-1][6] == "RevertLink" and link.status.state == "reverted"


async def test_not_running_changes_nothing() -> None:
    rec = Recorder(running=False)
    status = await ResolvedLink(rec).register("hyphal0", 7, ADDR, 53, ["hyphal.internal"])
    assert status.state == "not-running" and "Failed to connect" in status.detail
    assert len(rec.calls) == 1


async def test_refusal_reverts_what_was_set() -> None:
    rec = Recorder(fail="SetLinkDomains")
    status = await ResolvedLink(rec).register("hyphal0", 7, ADDR, 53, ["hyphal.internal"])
    assert status.state == "failed" and "SetLinkDomains" in status.detail
    assert rec.calls[-1][6] == "RevertLink"


async def test_real_busctl_here_reports_not_running() -> None:
    # The real command on this machine: no system bus, or no busctl at all.
    status = await ResolvedLink(run_command).register("hyphal0", 7, ADDR, 53, ["hyphal.internal"])
    assert status.state in ("not-running", "registered")
