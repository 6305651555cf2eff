"""Split DNS through systemd-resolved: our server and ``~<domain>`` on the TUN link, reverted
on stop. ``/etc/resolv.conf`` is never touched.

This is what ``resolvectl dns LINK ADDR`` and ``resolvectl domain LINK ~DOMAIN`` do, spoken
over D-Bus with ``busctl`` (shipped with systemd, so nothing to install): ``SetLinkDNS`` (or
``SetLinkDNSEx`` for a port other than 53), ``SetLinkDomains`` with routing-only domains (our
zone and the overlay's reverse zones), ``SetLinkDefaultRoute false`` so resolved sends only
those names to us, and ``RevertLink`` at stop. Where resolved does not run, nothing happens and
the status says so (docs/dns.md shows stub lines for dnsmasq and unbound).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address

log = logging.getLogger("hyphal.dns")

BUS_NAME = "org.freedesktop.resolve1"
OBJECT = "/org/freedesktop/resolve1"
MANAGER = "org.freedesktop.resolve1.Manager"

#: argv -> (exit code, stdout, stderr)
Runner = Callable[[Sequence[str]], Awaitable[tuple[int, str, str]]]


async def run_command(argv: Sequence[str], timeout: float = 5.0) -> tuple[int, str, str]:  # noqa: ASYNC109
    """Run ``argv``; a missing program or a timeout is exit code 127 / 124 with a message."""
    if shutil.which(argv[0]) is None:
        return 127, "", f"{argv[0]} not found"
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, "", f"{argv[0]} timed out after {timeout:g} s"
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def _call(method: str, signature: str, *args: str) -> list[str]:
    return ["busctl", "--system", "call", BUS_NAME, OBJECT, MANAGER, method, signature, *args]


def link_commands(
    ifindex: int, address: IPv6Address, port: int, domains: Sequence[str]
) -> list[list[str]]:
    """The busctl calls that register ``address`` (port) and ``~domains`` on link ``ifindex``."""
    index = str(ifindex)
    raw = [str(b) for b in address.packed]
    family = str(int(socket.AF_INET6))
    if port == 53:
        dns = _call("SetLinkDNS", "ia(iay)", index, "1", family, "16", *raw)
    else:
        dns = _call("SetLinkDNSEx", "ia(iayqs)", index, "1", family, "16", *raw, str(port), "")
    domain_args: list[str] = [index, str(len(domains))]
    for domain in domains:
        domain_args += [domain, "true"]  # routing-only: "~domain"
    return [
        dns,
        _call("SetLinkDomains", "ia(sb)", *domain_args),
        _call("SetLinkDefaultRoute", "ib", index, "false"),
    ]


def revert_command(ifindex: int) -> list[str]:
    return _call("RevertLink", "i", str(ifindex))


def ping_command() -> list[str]:
    return [
        "busctl",
        "--system",
        "call",
        BUS_NAME,
        OBJECT,
        "org.freedesktop.DBus.Peer",
        "Ping",
    ]


@dataclass
class ResolvedState:
    state: str = "off"  # off | not-running | registered | failed | reverted
    detail: str = ""
    link: str | None = None


class ResolvedLink:
    """Registers and reverts our link's DNS settings in systemd-resolved."""

    def __init__(self, runner: Runner = run_command) -> None:
        self._run = runner
        self.status = ResolvedState()
        self._ifindex: int | None = None

    async def register(
        self, link: str, ifindex: int, address: IPv6Address, port: int, domains: Sequence[str]
    ) -> ResolvedState:
        self.status = ResolvedState(link=link)
        code, _, err = await self._run(ping_command())
        if code != 0:
            self.status.state = "not-running"
            self.status.detail = (
                err.strip().splitlines()[-1] if err.strip() else "no answer on D-Bus"
            )
            log.info(
                "systemd-resolved is not running (%s); names under %s resolve only where "
                "a stub points at this server (docs/dns.md)",
                self.status.detail,
                domains[0],
            )
            return self.status
        for argv in link_commands(ifindex, address, port, domains):
            code, _, err = await self._run(argv)
            if code != 0:
                self.status.state = "failed"
                self.status.detail = f"{argv[6]}: {err.strip() or f'exit {code}'}"
                log.warning(
                    "systemd-resolved refused %s for %s; set it by hand with "
                    "'resolvectl dns %s %s' and 'resolvectl domain %s ~%s'",
                    self.status.detail,
                    link,
                    link,
                    address,
                    link,
                    domains[0],
                )
                await self._run(revert_command(ifindex))
                return self.status
        self._ifindex = ifindex
        self.status.state = "registered"
        self.status.detail = f"{address} for " + ", ".join(f"~{d}" for d in domains)
        log.info("systemd-resolved sends %s to %s on %s", self.status.detail, address, link)
        return self.status

    async def revert(self) -> None:
        if self._ifindex is None:
            return
        code, _, err = await self._run(revert_command(self._ifindex))
        self._ifindex = None
        if code != 0:
            log.warning(
                "could not revert systemd-resolved for %s: %s", self.status.link, err.strip()
            )
        self.status.state = "reverted" if code == 0 else "failed"
