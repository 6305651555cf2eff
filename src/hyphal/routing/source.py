"""The source table: feasibility distances per (prefix, router id), RFC 8966 section 3.5.

A route is feasible when no source entry exists, or its seqno is newer than the entry's, or the
seqno is equal and its advertised metric is strictly smaller than the feasibility distance. The
distance only ever decreases for a given seqno, which is what keeps selection loop-free.

Nearly every prefix has one router id (its origin's), so the table maps a prefix straight to its
:class:`Source`; only a prefix announced under several router ids gets a dict of them.
"""

from __future__ import annotations

from hyphal.routing.metric import INFINITY, seqno_newer


class Source:
    __slots__ = ("expires", "issued", "metric", "router_id", "seqno")

    def __init__(
        self, router_id: bytes, seqno: int, metric: int, expires: float, issued: int
    ) -> None:
        self.router_id = router_id
        self.seqno = seqno
        self.metric = metric
        self.expires = expires
        self.issued = issued  # signed freshness of the announcement carrying ``seqno``


class SourceTable:
    """Bounded map prefix -> router id -> Source, swept for expired entries on demand."""

    def __init__(self, max_prefixes: int, max_per_prefix: int) -> None:
        self._by_prefix: dict[bytes, Source | dict[bytes, Source]] = {}
        self._max_prefixes = max_prefixes
        self._max_per_prefix = max_per_prefix

    def __len__(self) -> int:
        return len(self._by_prefix)

    def get(self, prefix: bytes, router_id: bytes) -> Source | None:
        held = self._by_prefix.get(prefix)
        if held is None:
            return None
        if isinstance(held, Source):
            return held if held.router_id == router_id else None
        return held.get(router_id)

    def feasible(self, prefix: bytes, router_id: bytes, seqno: int, metric: int) -> bool:
        if metric >= INFINITY:
            return True
        source = self.get(prefix, router_id)
        if source is None:
            return True
        if seqno == source.seqno:
            return metric < source.metric
        return seqno_newer(seqno, source.seqno)

    def advertised(
        self,
        prefix: bytes,
        router_id: bytes,
        seqno: int,
        metric: int,
        expires: float,
        issued: int = 0,
    ) -> None:
        """Record that we advertised (seqno, metric): lower the feasibility distance if needed."""
        if metric >= INFINITY:
            return
        source = self.get(prefix, router_id)
        if source is None:
            self._add(prefix, Source(router_id, seqno, metric, expires, issued))
            return
        if seqno_newer(seqno, source.seqno):
            source.seqno = seqno
            source.metric = metric
            source.issued = max(source.issued, issued)
        elif seqno == source.seqno and metric < source.metric:
            source.metric = metric
        source.expires = expires

    def _add(self, prefix: bytes, source: Source) -> None:
        by_prefix = self._by_prefix
        held = by_prefix.get(prefix)
        if held is None:
            if len(by_prefix) >= self._max_prefixes:
                # Evict the oldest inserted prefix; only reachable under churn beyond the bound.
                del by_prefix[next(iter(by_prefix))]
            by_prefix[prefix] = source
            return
        if isinstance(held, Source):
            held = by_prefix[prefix] = {held.router_id: held}
        if len(held) >= self._max_per_prefix:
            del held[min(held, key=lambda rid: held[rid].expires)]
        held[source.router_id] = source

    def sweep(self, now: float) -> int:
        """Drop expired entries; returns how many were dropped."""
        dropped = 0
        by_prefix = self._by_prefix
        for prefix in list(by_prefix):
            held = by_prefix[prefix]
            if isinstance(held, Source):
                if held.expires <= now:
                    del by_prefix[prefix]
                    dropped += 1
                continue
            for rid in [rid for rid, s in held.items() if s.expires <= now]:
                del held[rid]
                dropped += 1
            if len(held) == 1:
                by_prefix[prefix] = next(iter(held.values()))
            elif not held:
                del by_prefix[prefix]
        return dropped
