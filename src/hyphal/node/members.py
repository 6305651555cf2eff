"""The membership part of the node: the gossip core on real links, driven by one CoreDriver.

It owns a :class:`~hyphal.membership.gossip.MembershipCore` and its driver, sends the core's
``FRAME_MEMBERS`` bodies on the links they are for, and logs the core's member events. The
node registers :meth:`MembersPart.frame` for ``FRAME_MEMBERS`` and tells the part about links
coming and going; reachability comes from the router (a member is reachable while its /64 has a
selected route).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hyphal import __version__
from hyphal.crypto.signing import Signer, Verifier
from hyphal.identity import prefix64_for_public_key
from hyphal.membership.admission import AdmissionPolicy, decode_admission
from hyphal.membership.gossip import Action, MemberEvent, MemberInfo, MembershipCore, SendFrame
from hyphal.membership.params import DEFAULT_PARAMS, MembershipParams
from hyphal.membership.store import KIND_REVOCATION
from hyphal.membership.wire import FRAME_MEMBERS
from hyphal.node.driver import CoreDriver

if TYPE_CHECKING:
    from hyphal.links.connection import PeerLink

log = logging.getLogger("hyphal.members")

PUBLIC_NETWORK = b"hyphal public network"
"""What records are bound to on the public network (private ones use their network name)."""


class MembersPart:
    """Membership on this node: our record, everyone's records, gossip with our neighbours."""

    def __init__(
        self,
        public_key: bytes,
        signer: Signer,
        verifier: Verifier,
        network_name: str | None,
        *,
        links: Callable[[int], PeerLink | None],
        reachable: Callable[[bytes], bool],
        clock: Callable[[], float],
        name: str = "",
        region: str = "",
        roles: tuple[str, ...] = (),
        params: MembershipParams = DEFAULT_PARAMS,
        metric: Callable[[bytes], int | None] = lambda prefix: None,
        policy: AdmissionPolicy | None = None,
        own_admission: bytes | None = None,
    ) -> None:
        self.metric = metric
        """The selected route's metric to a /64 prefix (None: no route)."""
        network = network_name.encode() if network_name else PUBLIC_NETWORK
        now = clock()
        self.core = MembershipCore(
            public_key,
            signer,
            verifier,
            network,
            now,
            wall_offset=time.time() - now,
            rng=random.Random(),
            params=params,
            policy=policy,
            own_admission=own_admission,
        )
        self.private = policy is not None
        self._own_admission = None if own_admission is None else decode_admission(own_admission)
        self.on_admission_change: Callable[[], None] | None = None
        """Called when an admission, a revocation or a removal was accepted (the link gate)."""
        self._links = links
        self._reachable = reachable
        self._clock = clock
        self.driver = CoreDriver("members", self.core, self._apply, clock)
        fields: dict[str, object] = {"software": f"hyphal {__version__}"}
        if name:
            fields["name"] = name
        if region:
            fields["region"] = region
        if roles:
            fields["roles"] = tuple(sorted(set(roles)))
        self.driver.feed(self.core.publish(now, **fields))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.driver.start(loop)

    def close(self) -> None:
        self.driver.close()

    # links -------------------------------------------------------------------------------------
    def link_up(self, link: PeerLink) -> None:
        self.driver.feed(self.core.neighbour_up(link.id, self._clock()))

    def link_down(self, link: PeerLink) -> None:
        self.driver.feed(self.core.neighbour_down(link.id, self._clock()))

    def frame(self, frame: tuple[PeerLink, memoryview]) -> None:
        """A ``FRAME_MEMBERS`` body from a link (registered with the node's frame registry)."""
        link, body = frame
        self.driver.feed(self.core.handle_frame(link.id, bytes(body), self._clock()))

    def _apply(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, SendFrame):
                link = self._links(action.peer)
                if link is not None:
                    link.send_frame(FRAME_MEMBERS, action.body)
            else:
                _log_event(action)
                if action.what in _ADMISSION_EVENTS and self.on_admission_change is not None:
                    self.on_admission_change()

    # admission ---------------------------------------------------------------------------------
    def admitted(self, key: bytes) -> bool:
        """Whether ``key`` may be a full neighbour: admitted and not revoked (always, when the
        network has no admin keys)."""
        return self.core.store.admitted(prefix64_for_public_key(key), key)

    def revoked(self, key: bytes) -> bool:
        return self.core.is_revoked(key)

    def submit_revocation(self, raw: bytes) -> str:
        """A revocation an admin signed: checked and, if accepted, gossiped (the verdict)."""
        reason, actions = self.core.submit(KIND_REVOCATION, raw, self._clock())
        self.driver.feed(actions)
        return reason

    def own_admission_problem(self) -> str | None:
        """Why the network does not hold us as admitted, or None if it does (or is open)."""
        if not self.private:
            return None
        store = self.core.store
        if self.core.is_revoked(self.core.public_key):
            return "this node was revoked by an admin; it cannot rejoin this network"
        if store.admitted(self.core.prefix, self.core.public_key):
            return None
        adm = self._own_admission
        if adm is None:
            return "this node has no admission (join with a token from 'hyphal invite')"
        holder = store.redeemed.get(adm.invite.invite_id)
        if holder is not None and holder != self.core.prefix:
            return (
                "the invite in this node's token was already used by another node "
                f"(prefix {holder.hex()}); ask for a new invite"
            )
        return "this node's admission was refused by the network"

    # our record --------------------------------------------------------------------------------
    def update_self(self, **fields: object) -> MemberInfo:
        """Publish our record with ``fields`` changed (name, region, tags) and return our row.

        Raises RecordError (e.g. a name that is no DNS label, a record over 1 KiB) and changes
        nothing then."""
        actions = self.core.publish(self._clock(), **fields)
        self.driver.feed(actions)
        changed = ", ".join(f"{k}={v!r}" for k, v in sorted(fields.items()))
        log.info("our member record changed: %s", changed)
        return self.self_info()

    def own_extension(self) -> bytes:
        """Our record's extension bytes now (features keep their own sections in it)."""
        own = self.core.own_record
        return b"" if own is None else own.extension

    def set_extension(self, extension: bytes) -> None:
        """Publish our record with new extension bytes (services, mapping); raises RecordError
        (e.g. the record would exceed 1 KiB) and changes nothing then. Logged at debug: the
        feature that changed it logs what it means."""
        self.driver.feed(self.core.publish(self._clock(), extension=extension))
        log.debug("our member record's extension changed (%d bytes)", len(extension))

    def own_fields(self) -> dict[str, object]:
        """What our record says now (for a change that keeps the rest)."""
        own = self.core.own_record
        if own is None:
            return {}
        return {"name": own.name, "region": own.region, "tags": dict(own.tags)}

    # views -------------------------------------------------------------------------------------
    def members(self) -> list[MemberInfo]:
        return self.core.members(self._reachable)

    def self_info(self) -> MemberInfo:
        return next(m for m in self.members() if m.is_self)

    def own_name(self) -> str | None:
        own = self.core.own_record
        return own.name if own is not None and own.name else None

    def key_for_name(self, name: str) -> bytes | None:
        """The public key of the member that owns ``name`` (the winner of a duplicate claim)."""
        record = self.core.lookup(name)
        return None if record is None or record.left else record.origin

    def name_of(self, public_key: bytes) -> str | None:
        """The name the member with ``public_key`` owns (None: unnamed, unknown or it lost the
        name to another member)."""
        record = self.core.store.record(prefix64_for_public_key(public_key))
        if record is None or record.left or record.origin != public_key or not record.name:
            return None
        return record.name if self.core.store.name_winner(record) else None

    def name_for_prefix(self, prefix64: bytes) -> str | None:
        """The name the member owning the /64 ``prefix64`` holds (None: unnamed or unknown)."""
        record = self.core.store.record(prefix64)
        return None if record is None else self.name_of(record.origin)

    def named_count(self) -> int:
        """Members holding a name (the winners of duplicate claims), ourselves included."""
        return sum(1 for m in self.members() if m.name and m.owns_name and not m.left)

    def reachable_counts(self) -> tuple[int, int]:
        """(reachable, unreachable) members, ourselves included, graceful leavers left out."""
        rows = [m for m in self.members() if not m.left]
        up = sum(1 for m in rows if m.reachable)
        return up, len(rows) - up

    def counters(self) -> dict[str, int]:
        return {**self.core.counters, **self.core.store.counters}


_ADMISSION_EVENTS = frozenset({"admitted", "revoked", "removed"})


def _log_event(event: MemberEvent) -> None:
    who = f"{event.name or '(unnamed)'} [{event.prefix.hex()}]"
    if event.what == "name-lost":
        log.warning(
            "our name is taken: %s; we stay visible under our address; choose another name",
            event.detail,
        )
    elif event.what == "revoked":
        log.warning("member [%s] revoked by an admin: its links are closed", event.prefix.hex())
    elif event.what == "admitted":
        log.info("member [%s] admitted", event.prefix.hex())
    elif event.what == "name-won":
        log.info("we own our name %r again", event.name)
    else:
        log.info("member %s: %s %s", event.what, who, event.detail)
