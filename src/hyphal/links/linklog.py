"""What the link layer says about failures and closes: one line each, at a level that fits.

The peer manager reports events here. A repeated failure goes through a
:class:`~hyphal.links.failures.FailureLog`: a WARNING with what to do the first time, then a
"still failing" summary every few minutes. A clean shutdown closes links at debug. On the
accepting end, a node that wants to join but is misconfigured is worth a WARNING, while a
scanner or a stalled connection gets only INFO. First lines from all sources together are capped
per minute, so a flood from many addresses cannot flood the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from hyphal.links.endpoint import Endpoint
from hyphal.links.failures import FailureLog, Verdict

if TYPE_CHECKING:
    from hyphal.links.connection import PeerLink

log = logging.getLogger("hyphal.links")

DIAL_HINTS = {
    "wrong-network-key": "the peer uses our network name with another network key; "
    "give both nodes the same --network-key-file",
    "network-mismatch": "check --network-name and --network-key-file on both nodes, "
    "or remove this peer",
    "version": "run the same hyphal version on both nodes",
    "bad-magic": "no hyphal node answers there; check the host and port",
    "pinned-key": "if that node's key changed on purpose, update ?key= in its peer URI",
    "timeout": "the peer accepted but did not finish the handshake",
}
ACCEPT_HINTS = {
    "wrong-network-key": "a node there uses our network name with another network key; "
    "it cannot join until it has ours",
    "network-mismatch": "a node there is configured for another network",
    "version": "a node there runs another hyphal version",
    "bad-magic": "something that is not hyphal connects to our port",
    "timeout": "a connection there did not finish the handshake",
}
ACCEPT_WARN = frozenset({"wrong-network-key", "network-mismatch", "version"})
ACCEPT_LINES_PER_MINUTE = 20
_QUIET_CLOSES = ("connection closed by peer", "peer removed by the operator")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class LinkLog:
    """Log lines of the peer manager (the decisions; the manager only reports events)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.failures = FailureLog(clock)
        self._clock = clock
        self._accept_window = (-60.0, 0)  # (start, accept-side first lines logged in it)

    def note(
        self,
        subject: Hashable,
        kind: str,
        message: str,
        hint: str,
        level: int = logging.WARNING,
        *,
        limited: bool = False,
    ) -> None:
        """Log a failure in full the first time, then as a summary every few minutes."""
        report = self.failures.failed(subject, kind)
        if report.verdict is not Verdict.QUIET and limited and not self._accept_line_allowed():
            log.debug("%s (%s)", message, hint)
        elif report.verdict is Verdict.FIRST:
            log.log(level, "%s (%s)", message, hint)
        elif report.verdict is Verdict.SUMMARY:
            log.log(
                level,
                "%s: still failing, %d attempts since %s (%d since the last line)",
                message,
                report.count,
                report.since_text,
                report.since_last_line,
            )
        else:
            log.debug("%s (attempt %d)", message, report.count)

    def _accept_line_allowed(self) -> bool:
        now = self._clock()
        start, count = self._accept_window
        if now - start >= 60.0:
            start, count = now, 0
        if count == ACCEPT_LINES_PER_MINUTE:
            log.warning(
                "more inbound handshake failures than %d a minute from different sources; "
                "the rest of this minute's go to debug",
                ACCEPT_LINES_PER_MINUTE,
            )
        self._accept_window = (start, count + 1)
        return count < ACCEPT_LINES_PER_MINUTE

    # events --------------------------------------------------------------------------------

    def dial_failed(self, endpoint: Endpoint, reason: str) -> None:
        self.note(
            ("dial", endpoint),
            "connect",
            f"cannot connect to {endpoint}: {reason}",
            "will retry with backoff",
        )

    def self_peer(self, endpoint: Endpoint) -> None:
        log.warning(
            "static peer %s is this node itself: not dialing it again "
            "(remove it from the peers list)",
            endpoint,
        )

    def connected(self, endpoint: Endpoint) -> None:
        failed = self.failures.succeeded(("dial", endpoint))
        if failed:
            log.info("connected to %s after %s", endpoint, _plural(failed, "failed attempt"))

    def accepted(self, host: str) -> None:
        self.failures.succeeded(("accept", host))

    def shutdown(self, established: int) -> None:
        log.info("closed %s (node shutting down)", _plural(established, "peer link"))

    def closed(self, link: PeerLink, reason: str, *, was_up: bool, closing: bool) -> None:
        """One line for a closed link, at a level that fits what happened."""
        who = link.remote_address or "peer"
        if link.remote_public_key is not None and link.handshake_failure is None:
            who += f" ({link.remote_public_key.hex()[:16]}…)"
        failure = link.handshake_failure
        dialed = link.initiator and link.endpoint is not None
        if closing or link.refused:  # a refusal was logged (rate-limited) when it was made
            log.debug("link %d to %s closed: %s", link.id, who, reason)
        elif failure == "self-connection":
            log.debug("link %d to %s: %s", link.id, who, reason)  # the dial loop says it once
        elif failure is not None and dialed:
            assert link.endpoint is not None
            self.note(
                ("dial", link.endpoint),
                failure,
                f"peer {link.endpoint}: {reason}",
                DIAL_HINTS.get(failure, "will retry with backoff"),
            )
        elif failure is not None:
            self.note(
                ("accept", link.remote_host),
                failure,
                f"inbound connection from {link.remote_host}: {reason}",
                ACCEPT_HINTS.get(failure, "the peer will retry"),
                logging.WARNING if failure in ACCEPT_WARN else logging.INFO,
                limited=True,
            )
        elif was_up:
            if reason.startswith("duplicate"):
                log.debug("link %d to %s closed: %s", link.id, who, reason)
            elif reason in _QUIET_CLOSES:
                log.info("link %d to %s closed: %s", link.id, who, reason)
            else:
                log.warning("link %d to %s lost: %s", link.id, who, reason)
        elif dialed:
            assert link.endpoint is not None
            self.note(
                ("dial", link.endpoint),
                "handshake",
                f"peer {link.endpoint}: {reason} before the handshake completed",
                "will retry with backoff",
            )
        else:
            log.debug("inbound link %d from %s closed in the handshake: %s", link.id, who, reason)
