"""The link gate of a private network: links from keys that were never admitted carry only
membership frames, for a short grace, and revoked keys lose their links.

After the handshake (which the network key already guards) the node asks the gate about the new
link. In an open network, or for a key the membership store holds as admitted, the link is *full*
at once: the router and every other part hear about it. Otherwise the link is on *probation*:
only ``FRAME_MEMBERS`` frames pass (so the joiner can deliver its admission and fetch ours), every
other frame is dropped and counted (``not-admitted-frame``), and the link is closed if no
admission for the key arrives within ``grace_s``. At most ``max_probation`` links wait at once. Whenever the store accepts an admission, a
revocation or a removal, the gate looks again: probation links whose key is now admitted become
full, and any link whose key is revoked (or lost its admission) is closed. A revoked key is
refused right after every later handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hyphal.membership.wire import FRAME_MEMBERS

if TYPE_CHECKING:
    from hyphal.links.connection import PeerLink
    from hyphal.node.members import MembersPart

log = logging.getLogger("hyphal.admission")

DEFAULT_GRACE_S = 20.0
"""How long a key without an admission may hold a membership-only link (it delivers its
admission in well under a second; the rest is slack for a loaded machine)."""


MAX_PROBATION = 32
"""Links on probation at once; beyond this, new ones are closed at once, so keys that hold the
network key but no admission cannot take up every one of ``max_links``."""

MAX_REMEMBERED = 1024
"""Revoked keys whose refusals were logged once; beyond this every refusal logs at debug."""


@dataclass
class _Probation:
    link: PeerLink
    timer: asyncio.TimerHandle | None


class AdmissionGate:
    """Which links are full neighbours; calls ``full_up`` when one becomes full."""

    def __init__(
        self,
        members: MembersPart,
        full_up: Callable[[PeerLink], None],
        close: Callable[[int, str], None],
        drop: Callable[[str], None],
        grace_s: float = DEFAULT_GRACE_S,
        max_probation: int = MAX_PROBATION,
    ) -> None:
        self._members = members
        self._full_up = full_up
        self._close = close
        self._drop = drop
        self.grace_s = grace_s
        self.max_probation = max_probation
        self._probation: dict[int, _Probation] = {}
        self._full: dict[int, PeerLink] = {}
        self._refused: set[bytes] = set()
        members.on_admission_change = self.recheck

    def link_up(self, link: PeerLink) -> None:
        key = link.remote_public_key
        if key is not None and self._members.revoked(key):
            first = key not in self._refused and len(self._refused) < MAX_REMEMBERED
            if first:
                self._refused.add(key)
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "refusing link %d from %s: its key %s was revoked by an admin (said once per key)",
                link.id,
                link.remote_address,
                key.hex(),
            )
            self._close(link.id, "the peer's key was revoked by an admin")
            return
        if key is not None and self._members.admitted(key):
            self._make_full(link)
            return
        if len(self._probation) >= self.max_probation:
            log.warning(
                "refusing link %d from %s: %d links already wait for their admission "
                "(a key with the network key but no admission is knocking; said per link)",
                link.id,
                link.remote_address,
                len(self._probation),
            )
            self._close(link.id, "too many links waiting for admission")
            return
        timer = None
        with contextlib.suppress(RuntimeError):  # no loop (a synchronous test): no deadline
            timer = asyncio.get_running_loop().call_later(self.grace_s, self._expire, link.id)
        self._probation[link.id] = _Probation(link, timer)
        log.info(
            "link %d from %s: key %s is not admitted yet; only membership frames for %.0f s "
            "while it delivers its admission",
            link.id,
            link.remote_address,
            key.hex() if key else "?",
            self.grace_s,
        )

    def link_down(self, link: PeerLink) -> bool:
        """Forget ``link``; True if it was full (the other parts heard it come up)."""
        pending = self._probation.pop(link.id, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        return self._full.pop(link.id, None) is not None

    def allows(self, link: PeerLink, frame_type: int) -> bool:
        """Whether a frame of ``frame_type`` from ``link`` may go to its handler."""
        if link.id not in self._probation or frame_type == FRAME_MEMBERS:
            return True
        self._drop("not-admitted-frame")
        return False

    def is_full(self, link_id: int) -> bool:
        return link_id in self._full

    def on_probation(self) -> list[int]:
        return sorted(self._probation)

    def recheck(self) -> None:
        """Promote probation links now admitted; close links whose key is revoked or out."""
        for link_id, pending in list(self._probation.items()):
            key = pending.link.remote_public_key
            if key is None:
                continue
            if self._members.revoked(key):
                self._close(link_id, "the peer's key was revoked by an admin")
            elif self._members.admitted(key):
                self._probation.pop(link_id)
                if pending.timer is not None:
                    pending.timer.cancel()
                log.info("link %d: key %s is admitted, the link is full", link_id, key.hex())
                self._make_full(pending.link)
        for link_id, link in list(self._full.items()):
            key = link.remote_public_key
            if key is None or self._members.admitted(key):
                continue
            why = "revoked by an admin" if self._members.revoked(key) else "no longer admitted"
            log.warning("closing link %d to %s: its key was %s", link_id, link.remote_address, why)
            self._close(link_id, f"the peer's key was {why}")

    def _make_full(self, link: PeerLink) -> None:
        self._full[link.id] = link
        self._full_up(link)

    def _expire(self, link_id: int) -> None:
        pending = self._probation.get(link_id)
        if pending is None:
            return
        key = pending.link.remote_public_key
        log.warning(
            "closing link %d from %s: key %s delivered no valid admission within %.0f s "
            "(it needs a token from 'hyphal invite'; see the admission counters in "
            "'hyphal stats')",
            link_id,
            pending.link.remote_address,
            key.hex() if key else "?",
            self.grace_s,
        )
        self._close(link_id, "no admission to this private network")
