"""Who may serve a service: the policy that turns a published grant proof into yes or no.

* **Private network** (admin keys): the network's admins own every service; an instance is
  authorised by a grant signed by any admin key (an admin's own node signs its own).
* **Public network**: a service is owned by one key. A ``service_owners`` pin in the config
  (name = owner key) decides outright. Without a pin the owner is the *first claim*: of every
  grant for the name this node holds, the lowest ``(since, owner key)`` wins, the same rule as
  member names, so every node holding the same records agrees. ``since`` is the claimant's
  word, so a node also remembers the owner it has seen (*sticky*, kept in the state file):
  while that owner still publishes a valid grant it stays the owner here, and a later claim
  that backdates ``since`` takes nothing from a node that knew the service before.

Either way the grant must verify (XEdDSA, context + network id), name this instance's key (it is
implied by the record it travels in, so a copied proof fails) and not have expired. Signature
checks are cached by their bytes; a cache entry costs about 200 bytes and the cache is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hyphal.crypto.signing import Verifier
from hyphal.services.grant import Grant, grant_from_proof
from hyphal.wire.errors import DecodeError

MAX_CACHE = 4096


@dataclass(frozen=True, slots=True)
class Claim:
    service: str
    instance: bytes
    proof: bytes | None


class Authority:
    def __init__(
        self,
        network: bytes,
        verifier: Verifier,
        admins: frozenset[bytes] = frozenset(),
        pins: Mapping[str, bytes] | None = None,
    ) -> None:
        self.network = network
        self.verifier = verifier
        self.admins = admins
        self.pins = dict(pins or {})
        self._sig_cache: dict[tuple[str, bytes, bytes], bool] = {}

    @property
    def private(self) -> bool:
        return bool(self.admins)

    def grant_of(self, claim: Claim) -> Grant | None:
        """The claim's grant if its signature holds (expiry and owner not checked here)."""
        if claim.proof is None:
            return None
        try:
            grant = grant_from_proof(claim.service, claim.instance, claim.proof)
        except DecodeError:
            return None
        key = (claim.service, claim.instance, claim.proof)
        ok = self._sig_cache.get(key)
        if ok is None:
            ok = grant.verify(self.verifier, self.network)
            if len(self._sig_cache) >= MAX_CACHE:
                self._sig_cache.clear()
            self._sig_cache[key] = ok
        return grant if ok else None

    def owners(
        self,
        claims: Iterable[Claim],
        wall: float,
        sticky: Mapping[str, bytes] | None = None,
    ) -> dict[str, bytes]:
        """The owner of every service named in ``claims`` (public network: pin, else the
        ``sticky`` owner this node already knew while it still holds a valid claim, else the
        first claim; a private network's services are owned by its admins and not listed)."""
        if self.private:
            return {}
        best: dict[str, tuple[int, bytes]] = {}
        known = sticky or {}
        for claim in claims:
            if claim.service in self.pins:
                continue
            grant = self.grant_of(claim)
            if grant is None or not grant.valid_at(wall):
                continue
            rank = (-1 if known.get(claim.service) == grant.owner else grant.since, grant.owner)
            held = best.get(claim.service)
            if held is None or rank < held:
                best[claim.service] = rank
        out = {name: owner for name, (_, owner) in best.items()}
        out.update(self.pins)
        return out

    def allows(self, claim: Claim, owners: Mapping[str, bytes], wall: float) -> bool:
        """Whether ``claim`` is an authorised instance (``owners`` from :meth:`owners`)."""
        grant = self.grant_of(claim)
        if grant is None or not grant.valid_at(wall):
            return False
        if self.private:
            return grant.owner in self.admins
        return owners.get(claim.service) == grant.owner
