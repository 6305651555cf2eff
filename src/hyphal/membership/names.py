"""Name claims: when several members claim one name, every node picks the same winner.

The rule uses only what the records say, so every node that holds the same records computes the
same answer: the claim with the lowest ``(name_since, origin public key)`` wins, where
``name_since`` is the origin's version at which it first claimed that name (kept across later
updates, reset on a rename). The member that had a name first keeps it; ties break on the key.
Both claims stay visible; the loser is flagged, and its own node logs it.
"""

from __future__ import annotations

from hyphal.membership.record import MemberRecord


def claim_key(record: MemberRecord) -> tuple[int, bytes]:
    return (record.name_since, record.origin)


class NameIndex:
    """name -> prefixes claiming it, and the winner of each name, kept up to date incrementally."""

    def __init__(self) -> None:
        self._claims: dict[str, dict[bytes, tuple[int, bytes]]] = {}

    def copy(self) -> NameIndex:
        out = NameIndex()
        out._claims = {name: dict(c) for name, c in self._claims.items()}
        return out

    def update(self, prefix: bytes, old: MemberRecord | None, new: MemberRecord | None) -> None:
        if old is not None and old.name:
            claims = self._claims.get(old.name)
            if claims is not None:
                claims.pop(prefix, None)
                if not claims:
                    del self._claims[old.name]
        if new is not None and new.name:
            self._claims.setdefault(new.name, {})[prefix] = claim_key(new)

    def winner(self, name: str) -> bytes | None:
        """The prefix that owns ``name``, or None if nobody claims it."""
        claims = self._claims.get(name)
        if not claims:
            return None
        return min(claims.items(), key=lambda kv: kv[1])[0]

    def claimants(self, name: str) -> list[bytes]:
        """Every prefix claiming ``name``, winner first."""
        claims = self._claims.get(name, {})
        return [p for p, _ in sorted(claims.items(), key=lambda kv: kv[1])]

    def conflicted(self) -> dict[str, list[bytes]]:
        """Names with more than one claim: name -> claimants, winner first."""
        return {name: self.claimants(name) for name, c in self._claims.items() if len(c) > 1}
