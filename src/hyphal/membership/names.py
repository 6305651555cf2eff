"""Name claims: when several members claim one name, every node picks the same winner.

The rule uses only what the records say, so every node that holds the same records computes the
same answer: the claim with the lowest ``(name_since, origin prefix)`` wins, where ``name_since``
is the origin's version at which it first claimed that name (kept across later updates, reset on
a rename). The member that had a name first keeps it; ties break on the /64 prefix (derived from
the public key). Both claims stay visible; the loser is flagged, and its own node logs it.
"""

from __future__ import annotations

from hyphal.membership.record import MemberRecord

Claim = tuple[int, bytes]
"""(name_since, prefix): claims compare as tuples, lowest wins."""


class NameIndex:
    """name -> its claims (one tuple, or a sorted list when contested), kept up to date."""

    def __init__(self) -> None:
        self._claims: dict[str, Claim | list[Claim]] = {}

    def copy(self) -> NameIndex:
        out = NameIndex()
        out._claims = {n: list(c) if isinstance(c, list) else c for n, c in self._claims.items()}
        return out

    def _list(self, name: str) -> list[Claim]:
        claims = self._claims.get(name)
        if claims is None:
            return []
        return list(claims) if isinstance(claims, list) else [claims]

    def _set(self, name: str, claims: list[Claim]) -> None:
        if not claims:
            self._claims.pop(name, None)
        elif len(claims) == 1:
            self._claims[name] = claims[0]
        else:
            self._claims[name] = sorted(claims)

    def update(self, prefix: bytes, old: MemberRecord | None, new: MemberRecord | None) -> None:
        if old is not None and old.name:
            self._set(old.name, [c for c in self._list(old.name) if c[1] != prefix])
        if new is not None and new.name:
            claims = [c for c in self._list(new.name) if c[1] != prefix]
            claims.append((new.name_since, prefix))
            self._set(new.name, claims)

    def winner(self, name: str) -> bytes | None:
        """The prefix that owns ``name``, or None if nobody claims it."""
        claims = self._claims.get(name)
        if claims is None:
            return None
        return claims[0][1] if isinstance(claims, list) else claims[1]

    def claimants(self, name: str) -> list[bytes]:
        """Every prefix claiming ``name``, winner first."""
        return [p for _, p in sorted(self._list(name))]

    def conflicted(self) -> dict[str, list[bytes]]:
        """Names with more than one claim: name -> claimants, winner first."""
        return {n: [p for _, p in c] for n, c in self._claims.items() if isinstance(c, list)}
