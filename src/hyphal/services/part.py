"""The services part of the node: local instances, their checks, publishing, and the directory.

``node.parts.add(services_part(...))`` adds it; the node keeps it as ``node.services`` too, the
:class:`~hyphal.services.directory.ServiceDirectory` that DNS, the service addresses and the
ingress ask. It owns:

* the local instances (config ``[[service]]`` tables plus runtime ``add``, saved in the state
  file, :mod:`hyphal.services.state`), their health (:mod:`hyphal.services.health`, checks run by
  :mod:`hyphal.services.checks`) and drains;
* publishing them in our member record's extension (:mod:`hyphal.services.extension`), paced by
  :mod:`hyphal.services.pacing` so failures always go out at once;
* the directory: every member record's services, kept only when the grant holds
  (:mod:`hyphal.services.authz`) and the router has a route to the node, ordered by
  :mod:`hyphal.services.select`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyphal.crypto.signing import Signer, XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity, address_for_public_key, prefix64_for_public_key
from hyphal.membership.params import MembershipParams
from hyphal.membership.record import RecordError
from hyphal.services import select
from hyphal.services.address import is_service_address, service_address, service_prefix
from hyphal.services.authz import Authority, Claim
from hyphal.services.checks import CheckRunner
from hyphal.services.directory import Instance, Proto, ServiceDirectory
from hyphal.services.extension import (
    Endpoint,
    ExtensionTooLarge,
    PublishedService,
    services_of,
    with_services,
)
from hyphal.services.grant import Grant, make_grant, parse_grant_text
from hyphal.services.health import HealthCore
from hyphal.services.pacing import PublishPacer
from hyphal.services.spec import ServiceSpec, SpecError
from hyphal.services.state import load_state, save_state
from hyphal.wire.errors import DecodeError

if TYPE_CHECKING:
    from hyphal.config import NodeConfig
    from hyphal.node.members import MembersPart

log = logging.getLogger("hyphal.services")

Key = tuple[str, Proto, int]
NEVER = 0xFFFFFFFF
"""A self-grant's expiry: the owner serving its own service needs no renewal."""
MAX_LOCAL = 16
SEEN_CACHE_S = 0.05
MAX_OWNERS_REMEMBERED = 4096
OWNER_REFRESH_S = 1.0
"""How often the owners of the services in the records we hold are looked at and remembered."""


class ServiceError(ValueError):
    """A change of the local instances that cannot be made; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Seen:
    """One instance endpoint as a member record publishes it, with this node's verdicts."""

    service: str
    public_key: bytes
    node_name: str | None
    endpoint: Endpoint
    authorised: bool
    reachable: bool
    metric: int | None
    is_self: bool

    @property
    def usable(self) -> bool:
        return (
            self.authorised
            and self.reachable
            and self.endpoint.healthy
            and not self.endpoint.draining
            and self.metric is not None
        )


class ServicesPart:
    """Services on this node (a NodePart and the node's ServiceDirectory)."""

    name = "services"
    live_keys = frozenset({"services"})

    def __init__(
        self,
        identity: NodeIdentity,
        network: bytes,
        members: MembersPart,
        metric: Callable[[bytes], int | None],
        clock: Callable[[], float],
        *,
        specs: tuple[ServiceSpec, ...] = (),
        state_file: Path | None = None,
        admins: frozenset[bytes] = frozenset(),
        pins: Mapping[str, bytes] | None = None,
        params: MembershipParams | None = None,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        signer: Signer | None = None,
        extra_check_hosts: tuple[str, ...] = (),
    ) -> None:
        self.identity = identity
        self.public_key = identity.public_key
        self.network = network
        self.members = members
        self._metric = metric
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._signer = signer or XEdDSASigner(identity.private_bytes())
        self.authority = Authority(network, XEdDSAVerifier(), admins, pins)
        self.state_file = state_file
        self._extra_hosts = extra_check_hosts
        p = params or members.core.params
        self.pacer = PublishPacer(p.origin_rate_per_s, p.origin_burst, clock())
        self.health: HealthCore[Key] = HealthCore()
        self.config_specs = {s.key: s for s in specs}
        saved = load_state(state_file)
        self._saved = saved
        self.specs: dict[Key, ServiceSpec] = {}
        self.drained: set[str] = set(saved.drained)
        self.grants: dict[str, Grant | None] = {}
        self.counters_: dict[str, int] = {
            "published": 0,
            "publish-deferred": 0,
            "checks": 0,
            "check-failures": 0,
            "went-healthy": 0,
            "went-unhealthy": 0,
            "unauthorised-seen": 0,
        }
        self._seen_cache: tuple[float, list[Seen]] | None = None
        self._unauthorised: set[tuple[str, bytes]] = set()
        self._published: tuple[PublishedService, ...] = ()
        self._publish_due: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._runner: CheckRunner | None = None
        now = clock()
        for spec in (*specs, *saved.services):
            try:
                self._install(spec, now)
            except ServiceError as exc:
                log.error("service %s not added: %s", spec.name, exc)
        self._schedule(now, urgent=False)

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self._runner = CheckRunner(self._extra_hosts)
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="services")
        if self.specs:
            log.info(
                "serving %s (each unhealthy until its check passes)",
                ", ".join(f"{s.name} {s.proto}/{s.port}" for s in self.specs.values()),
            )

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._checks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        self._checks.clear()

    def tick(self, now: float) -> list[Key]:
        """Publish what waits (if the pacer allows) and return the checks due now (the run loop
        starts them; tests report results themselves)."""
        due = self.health.due(now)
        self._maybe_publish(now)
        return due

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.health.next_deadline(), self._publish_due) if d is not None]
        return min(deadlines) if deadlines else None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for key in self.tick(self._clock()):
                spec = self.specs.get(key)
                if spec is None:
                    continue
                task = loop.create_task(self._check(key, spec))
                self._checks.add(task)
                task.add_done_callback(self._checks.discard)
            self.seen()  # remembers every owner seen (authz "sticky") as records arrive
            deadline = self.next_deadline()
            wait = OWNER_REFRESH_S if deadline is None else max(0.0, deadline - self._clock())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(wait, OWNER_REFRESH_S)):
                    await self._wake.wait()

    async def _check(self, key: Key, spec: ServiceSpec) -> None:
        assert self._runner is not None
        try:
            ok, detail = await self._runner.run(spec.check, spec.port, spec.timeout)
        except Exception as exc:  # a bug in a check must not stop the others
            log.exception("check of %s failed unexpectedly", spec.name)
            ok, detail = False, f"check error: {exc}"
        self.report(key, ok, self._clock(), detail)

    def report(self, key: Key, ok: bool, now: float, detail: str = "") -> None:
        """One check's outcome (the runner calls it; tests may too)."""
        self.counters_["checks"] += 1
        if not ok:
            self.counters_["check-failures"] += 1
        if self.health.report(key, ok, now, detail):
            self._seen_cache = None
            self._health_changed(key, now, detail)
        self._wake.set()

    def _health_changed(self, key: Key, now: float, detail: str) -> None:
        name, proto, port = key
        if self.health.healthy(key):
            self.counters_["went-healthy"] += 1
            log.info("service %s %s/%d is healthy (%s)", name, proto, port, detail)
            self._schedule(now, urgent=False)
        else:
            self.counters_["went-unhealthy"] += 1
            log.warning(
                "service %s %s/%d is unhealthy (%s): new flows go to other instances",
                name,
                proto,
                port,
                detail,
            )
            self._schedule(now, urgent=True)

    # local instances -----------------------------------------------------------------------------
    def _grant_for(self, spec: ServiceSpec, now_wall: float) -> Grant | None:
        if spec.grant is not None:
            try:
                grant = parse_grant_text(spec.grant)
            except DecodeError as exc:
                raise ServiceError(f"--grant: {exc}") from None
            if grant.service != spec.name:
                raise ServiceError(f"the grant is for service {grant.service!r}, not {spec.name!r}")
            if grant.instance != self.public_key:
                raise ServiceError(
                    "the grant is for another node's key "
                    f"({grant.instance.hex()[:16]}...), not this node's "
                    f"({self.public_key.hex()[:16]}...); ask the owner for a grant --to this key"
                )
            if not grant.verify(self.authority.verifier, self.network):
                raise ServiceError(
                    "the grant's signature does not hold on this network (another network's "
                    "grant, or a damaged copy)"
                )
            if not grant.valid_at(now_wall):
                raise ServiceError("the grant has expired; ask the owner for a new one")
            if self.authority.private and grant.owner not in self.authority.admins:
                raise ServiceError("the grant is not signed by an admin key of this network")
            return grant
        if self.authority.private and self.public_key not in self.authority.admins:
            return None  # published without proof: other nodes will not choose it (logged)
        held = self.grants.get(spec.name)
        if held is not None and held.owner == self.public_key:
            return held
        owner = self.owner_of(spec.name)
        if owner is not None and owner != self.public_key and spec.name not in self._saved.claims:
            raise ServiceError(
                f"service {spec.name} is owned by key {owner.hex()} (its first claim); ask the "
                f"owner for 'hyphal service grant {spec.name} --to {self.public_key.hex()}' and "
                "add the grant with --grant, or pick another name"
            )
        since = self._saved.claims.get(spec.name)
        if since is None:
            since = int(now_wall)
            self._saved.claims[spec.name] = since
        return make_grant(
            self._signer,
            self.network,
            service=spec.name,
            instance=self.public_key,
            owner=self.public_key,
            since=since,
            expires=NEVER,
        )

    def _install(self, spec: ServiceSpec, now: float) -> None:
        if spec.key in self.specs:
            raise ServiceError(
                f"{spec.name} {spec.proto}/{spec.port} is already served here; remove it first"
            )
        if len({k[0] for k in self.specs} | {spec.name}) > MAX_LOCAL:
            raise ServiceError(f"at most {MAX_LOCAL} services per node")
        same = [s for s in self.specs.values() if s.name == spec.name]
        if same and (same[0].grant or None) != (spec.grant or None) and spec.grant is not None:
            raise ServiceError(f"{spec.name} already has another grant on this node")
        grant = self._grant_for(spec, self._wall()) if not same else self.grants.get(spec.name)
        self.specs[spec.key] = spec
        self.grants[spec.name] = grant
        try:
            with_services(self.members.own_extension(), self._desired())
        except ExtensionTooLarge as exc:
            del self.specs[spec.key]
            if not same:
                self.grants.pop(spec.name, None)
            raise ServiceError(str(exc)) from None
        self.health.add(spec.key, spec.rise, spec.fall, spec.interval, now)
        if spec.check.kind == "none":
            self.health.force(spec.key, True, now)
        if grant is None:
            log.warning(
                "service %s: this private network's admins own every service and this node has "
                "no grant, so no node will choose it; an admin runs 'hyphal service grant %s "
                "--to %s' and you add the printed grant with --grant",
                spec.name,
                spec.name,
                self.public_key.hex(),
            )

    def add(self, spec: ServiceSpec) -> dict[str, Any]:
        """Add a local instance at runtime (saved in the state file); its row."""
        now = self._clock()
        self._install(spec, now)
        self._saved.services.append(spec)
        self._save()
        self._schedule(now, urgent=False)
        log.info(
            "service %s %s/%d added (check %s every %g s; unhealthy until it passes %d times)",
            spec.name,
            spec.proto,
            spec.port,
            spec.check.text(),
            spec.interval,
            spec.rise,
        )
        self._wake.set()
        return self.local_row(spec)

    def remove(self, name: str, proto: Proto | None = None, port: int | None = None) -> int:
        """Remove local instances of ``name`` (all of them, or one proto/port); how many."""
        keys = [
            k
            for k in self.specs
            if k[0] == name and (proto is None or k[1] == proto) and (port is None or k[2] == port)
        ]
        if not keys:
            raise ServiceError(f"this node serves no {name!r}" + _which(proto, port))
        in_config = [k for k in keys if k in self.config_specs]
        if in_config:
            raise ServiceError(
                f"{name} is declared by a [[service]] table in the config file; remove it there "
                "and reload the daemon (systemctl reload hyphal, or SIGHUP)"
            )
        for key in keys:
            del self.specs[key]
            self.health.remove(key)
        self._saved.services = [s for s in self._saved.services if s.key not in keys]
        if not any(k[0] == name for k in self.specs):
            self.grants.pop(name, None)
            self.drained.discard(name)
        self._save()
        now = self._clock()
        self._schedule(now, urgent=True)
        log.info("service %s%s removed: no new flows come to it", name, _which(proto, port))
        self._wake.set()
        return len(keys)

    def reconfigure(self, config: NodeConfig) -> str | None:
        """Follow reloaded ``[[service]]`` tables: instances whose table went or changed are
        removed, new and changed ones installed (starting unhealthy, like at start); a runtime
        instance the config now declares becomes the config's. Returns what changed."""
        new = {spec.key: spec for spec in config.services}
        old = self.config_specs
        gone = [key for key, spec in old.items() if new.get(key) != spec]
        added = [spec for key, spec in new.items() if old.get(key) != spec]
        if not gone and not added:
            return None
        now = self._clock()
        for key in gone:
            if key in self.specs:
                del self.specs[key]
                self.health.remove(key)
        adopted = {spec.key for spec in added} & {s.key for s in self._saved.services}
        for key in adopted:  # the config declares it now: the runtime copy goes
            self.specs.pop(key, None)
            self.health.remove(key)
        self._saved.services = [s for s in self._saved.services if s.key not in adopted]
        self.config_specs = dict(new)
        failed = []
        for spec in added:
            try:
                self._install(spec, now)
            except ServiceError as exc:
                log.error("reload: service %s not added: %s", spec.name, exc)
                self.config_specs.pop(spec.key, None)
                failed.append(spec)
        for name in {key[0] for key in gone} - {key[0] for key in self.specs}:
            self.grants.pop(name, None)
        self._save()
        self._schedule(now, urgent=bool(gone))
        self._wake.set()
        installed = [spec for spec in added if spec not in failed]
        words = []
        if installed:
            words.append("adding " + ", ".join(map(_spec_words, installed)))
        if gone:
            words.append("removing " + ", ".join(_spec_words(old[key]) for key in gone))
        return "; ".join(words) or None

    def drain(self, name: str, draining: bool = True) -> dict[str, Any]:
        """Stop (or resume) new flows to every local instance of ``name``; flows already pinned
        to it finish. Saved, so a drain outlives a restart."""
        if not any(k[0] == name for k in self.specs):
            raise ServiceError(f"this node serves no {name!r}")
        changed = (name in self.drained) != draining
        if draining:
            self.drained.add(name)
        else:
            self.drained.discard(name)
        self._save()
        if changed:
            self._schedule(self._clock(), urgent=draining)
            log.info(
                "service %s %s",
                name,
                "draining: no new flows; pinned ones finish" if draining else "resumed",
            )
            self._wake.set()
        return {"name": name, "draining": draining}

    def _save(self) -> None:
        self._seen_cache = None
        self._saved.drained = set(self.drained)
        save_state(self.state_file, self._saved)

    # publishing ----------------------------------------------------------------------------------
    def _desired(self) -> list[PublishedService]:
        by_name: dict[str, list[Endpoint]] = {}
        for key, spec in sorted(self.specs.items()):
            by_name.setdefault(spec.name, []).append(
                Endpoint(
                    spec.port,
                    spec.proto,
                    self.health.healthy(key),
                    spec.name in self.drained,
                    spec.weight,
                )
            )
        out = []
        for name, eps in by_name.items():
            grant = self.grants.get(name)
            out.append(PublishedService(name, None if grant is None else grant.proof(), tuple(eps)))
        return out

    def _schedule(self, now: float, urgent: bool) -> None:
        """Publish as soon as the pacer allows (the run loop decides; ``urgent`` is a hint, the
        real urgency is computed from what changed)."""
        self._publish_due = now if self._publish_due is None else min(self._publish_due, now)

    def _maybe_publish(self, now: float) -> None:
        if self._publish_due is None or now < self._publish_due:
            return
        desired = tuple(self._desired())
        if desired == self._published:
            self._publish_due = None
            return
        urgent = less_available(self._published, desired)
        if not self.pacer.ready(now, urgent):
            self._publish_due = self.pacer.when(now, urgent)
            self.counters_["publish-deferred"] += 1
            return
        try:
            extension = with_services(self.members.own_extension(), list(desired))
            self.members.set_extension(extension)
        except (ExtensionTooLarge, RecordError) as exc:
            log.error("cannot publish our services: %s", exc)
            self._publish_due = None
            return
        self.pacer.spend(now)
        self.counters_["published"] += 1
        self._published = desired
        self._publish_due = None

    # the directory -------------------------------------------------------------------------------
    def _records(self) -> Iterator[tuple[bytes, str | None, tuple[PublishedService, ...]]]:
        store = self.members.core.store
        for record in store.records():
            if record.left or not record.extension or record.origin == self.public_key:
                continue
            try:
                published = _decode_cached(record.extension)
            except DecodeError:
                continue
            if published:
                name = record.name if record.name and store.name_winner(record) else None
                yield record.origin, name, published

    def seen(self) -> list[Seen]:
        """Every instance endpoint this node knows of (ours from live state), with verdicts.

        Kept for :data:`SEEN_CACHE_S` (one DNS query asks several questions), and dropped at
        once when a local instance changes."""
        now = self._clock()
        cached = self._seen_cache
        if cached is not None and 0 <= now - cached[0] < SEEN_CACHE_S:
            return cached[1]
        seen = self._compute_seen()
        self._seen_cache = (now, seen)
        return seen

    def _compute_seen(self) -> list[Seen]:
        wall = self._wall()
        remote = list(self._records())
        local = tuple(self._desired())
        claims = [Claim(s.name, key, s.proof) for key, _, pubs in remote for s in pubs] + [
            Claim(s.name, self.public_key, s.proof) for s in local
        ]
        owners = self._owners(claims, wall)
        out: list[Seen] = []
        own_name = self.members.own_name()
        for key, name, pubs, is_self in (
            *((k, n, p, False) for k, n, p in remote),
            (self.public_key, own_name, local, True),
        ):
            prefix = prefix64_for_public_key(key)
            if not is_self and is_service_address(self.network, address_for_public_key(key)):
                continue  # a key inside the service prefix is never a node (address.py)
            metric = 0 if is_self else self._metric(prefix)
            for s in pubs:
                ok = self.authority.allows(Claim(s.name, key, s.proof), owners, wall)
                if not ok and not is_self:
                    self._note_unauthorised(s.name, key, name)
                for ep in s.endpoints:
                    out.append(
                        Seen(
                            s.name,
                            key,
                            name,
                            ep,
                            ok,
                            is_self or metric is not None,
                            metric,
                            is_self,
                        )
                    )
        return out

    def _note_unauthorised(self, service: str, key: bytes, name: str | None) -> None:
        """Log (once per key and service, bounded) a record claiming a service without a
        valid grant; counted as ``unauthorised-seen``."""
        if (service, key) in self._unauthorised:
            return
        if len(self._unauthorised) >= MAX_OWNERS_REMEMBERED:
            self._unauthorised.clear()
        self._unauthorised.add((service, key))
        self.counters_["unauthorised-seen"] += 1
        log.warning(
            "member %s (%s) publishes service %s without a valid grant: it is never chosen "
            "(docs/services.md, 'Authorisation')",
            name or "(unnamed)",
            key.hex()[:16],
            service,
        )

    def instances(self, service: str, proto: Proto = "tcp") -> list[Instance]:
        cands = []
        for s in self.seen():
            if s.service != service or s.endpoint.proto != proto:
                continue
            if not s.usable or s.metric is None:
                continue
            cands.append(
                Instance(
                    service,
                    s.public_key,
                    address_for_public_key(s.public_key),
                    s.endpoint.port,
                    proto,
                    s.endpoint.weight,
                    s.metric,
                    s.node_name,
                )
            )
        return select.order(cands, self._rng)

    def choose(self, service: str, proto: Proto = "tcp") -> Instance | None:
        found = self.instances(service, proto)
        return found[0] if found else None

    def address_of(self, service: str) -> IPv6Address:
        return service_address(self.network, service)

    def service_at(self, address: IPv6Address) -> str | None:
        if not is_service_address(self.network, address):
            return None
        for name in self.known_names():
            if service_address(self.network, name) == address:
                return name
        return None

    def owner_of(self, service: str) -> bytes | None:
        """The key owning ``service`` on the public network as this node sees it (a pin or the
        first claim among the records it holds); None on a private network or if unclaimed."""
        if self.authority.private:
            return None
        claims = [Claim(s.name, key, s.proof) for key, _, pubs in self._records() for s in pubs]
        return self._owners(claims, self._wall()).get(service)

    def _owners(self, claims: list[Claim], wall: float) -> dict[str, bytes]:
        """Owners by the authority's rule, remembering each one seen (sticky, saved)."""
        sticky = self._saved.owners
        owners = self.authority.owners(claims, wall, sticky)
        changed = False
        for name, owner in owners.items():
            if name not in self.authority.pins and sticky.get(name) != owner:
                sticky[name] = owner
                changed = True
        while len(sticky) > MAX_OWNERS_REMEMBERED:
            del sticky[next(iter(sticky))]
        if changed:
            save_state(self.state_file, self._saved)
        return owners

    def has_service(self, service: str) -> bool:
        """Whether any authorised instance publishes ``service`` (healthy or not)."""
        return any(s.service == service and s.authorised for s in self.seen())

    def known_names(self) -> list[str]:
        return sorted({s.service for s in self.seen() if s.authorised})

    def is_instance(self, service: str, public_key: bytes) -> bool:
        return any(
            s.service == service and s.public_key == public_key and s.authorised
            for s in self.seen()
        )

    def local_services(self) -> list[str]:
        return sorted({s.service for s in self.seen() if s.is_self and s.authorised})

    @property
    def prefix(self) -> bytes:
        return service_prefix(self.network)

    # views ---------------------------------------------------------------------------------------
    def local_row(self, spec: ServiceSpec) -> dict[str, Any]:
        st = self.health.state(spec.key)
        grant = self.grants.get(spec.name)
        return {
            **spec.to_json(),
            "grant": None if grant is None else grant.text(),
            "owner": None if grant is None else grant.owner.hex(),
            "healthy": bool(st and st.healthy),
            "draining": spec.name in self.drained,
            "lastCheck": None
            if st is None or st.last_ok is None
            else {"ok": st.last_ok, "detail": st.last_detail},
            "checks": 0 if st is None else st.checks,
            "fromConfig": spec.key in self.config_specs,
            "address": str(self.address_of(spec.name)),
        }

    def local_rows(self) -> list[dict[str, Any]]:
        return [self.local_row(s) for _, s in sorted(self.specs.items())]

    def mesh_rows(self) -> list[dict[str, Any]]:
        by_name: dict[str, list[Seen]] = {}
        for s in self.seen():
            by_name.setdefault(s.service, []).append(s)
        rows = []
        for name, seen in sorted(by_name.items()):
            order = {
                (i.public_key, i.port, i.proto): n
                for n, i in enumerate(self.instances(name, "tcp") + self.instances(name, "udp"))
            }
            seen.sort(
                key=lambda s: (
                    order.get((s.public_key, s.endpoint.port, s.endpoint.proto), 1 << 30),
                    s.metric if s.metric is not None else 1 << 20,
                    s.public_key,
                )
            )
            rows.append(
                {
                    "name": name,
                    "address": str(self.address_of(name)),
                    "healthyInstances": sum(1 for s in seen if s.usable),
                    "instances": [_seen_row(s) for s in seen],
                }
            )
        return rows

    def status(self) -> dict[str, Any]:
        return {
            "servicePrefix": str(IPv6Address(self.prefix + bytes(8))) + "/64",
            "network": "private" if self.authority.private else "public",
            "local": self.local_rows(),
            "services": self.mesh_rows(),
            "publishTokens": round(self.pacer.tokens(self._clock()), 2),
            "counters": dict(self.counters()),
        }

    def counters(self) -> Mapping[str, int]:
        return dict(self.counters_)


def _spec_words(spec: ServiceSpec) -> str:
    return f"{spec.name} {spec.proto}/{spec.port}"


def _which(proto: Proto | None, port: int | None) -> str:
    if proto is None and port is None:
        return ""
    return f" {proto or '*'}/{port if port is not None else '*'}"


def _seen_row(s: Seen) -> dict[str, Any]:
    return {
        "node": s.node_name,
        "publicKey": s.public_key.hex(),
        "address": str(address_for_public_key(s.public_key)),
        "port": s.endpoint.port,
        "proto": s.endpoint.proto,
        "weight": s.endpoint.weight,
        "healthy": s.endpoint.healthy,
        "draining": s.endpoint.draining,
        "authorised": s.authorised,
        "reachable": s.reachable,
        "metric": s.metric,
        "self": s.is_self,
        "usable": s.usable,
    }


_CACHE: dict[bytes, tuple[PublishedService, ...]] = {}


def _decode_cached(extension: bytes) -> tuple[PublishedService, ...]:
    held = _CACHE.get(extension)
    if held is None:
        held = services_of(extension)
        if len(_CACHE) >= 4096:
            _CACHE.clear()
        _CACHE[extension] = held
    return held


def services_part(
    config: NodeConfig,
    identity: NodeIdentity,
    members: MembersPart,
    metric: Callable[[bytes], int | None],
    clock: Callable[[], float],
) -> ServicesPart:
    """The node's services part from its config (see :class:`hyphal.config.NodeConfig`)."""
    from hyphal.node.members import PUBLIC_NETWORK

    network = config.network_name.encode() if config.network_name else PUBLIC_NETWORK
    return ServicesPart(
        identity,
        network,
        members,
        metric,
        clock,
        specs=tuple(config.services),
        state_file=config.services_file,
        admins=frozenset(config.admin_keys),
        pins=dict(config.service_owners),
        extra_check_hosts=() if config.no_tun else (str(identity.address),),
    )


def _is_a_directory(part: ServicesPart) -> ServiceDirectory:
    return part  # mypy checks that the part implements the seam unchanged


def less_available(old: tuple[PublishedService, ...], new: tuple[PublishedService, ...]) -> bool:
    """Whether an endpoint that took new flows in ``old`` takes none in ``new`` (urgent)."""

    def open_ends(pubs: tuple[PublishedService, ...]) -> set[tuple[str, str, int]]:
        return {
            (s.name, e.proto, e.port)
            for s in pubs
            for e in s.endpoints
            if e.healthy and not e.draining
        }

    return bool(open_ends(old) - open_ends(new))


__all__ = ["ServiceError", "ServicesPart", "SpecError", "less_available", "services_part"]
