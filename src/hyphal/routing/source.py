"""The source table: feasibility distances per (prefix, router id), RFC 8966 section 3.5.

A route is feasible when no source entry exists, or its seqno is newer than the entry's, or the
seqno is equal and its advertised metric is strictly smaller than the feasibility distance. The
distance only ever decreases for a given seqno, which is what keeps selection loop-free.
"""

from __future__ import annotations

from hyphal.routing.metric import INFINITY, seqno_newer


class Source:
    __slots__ = ("expires", "issued", "metric", "seqno")

    def __init__(self, seqno: int, metric: int, expires: float, issued: int) -> None:
        self.seqno = seqno
        self.metric = metric
        self.expires = expires
        self.issued = issued  # signed freshness of the announcement carrying ``seqno``


class SourceTable:
    """Bounded map prefix -> router id -> Source, swept for expired entries on demand."""

    def __init__(self, max_prefixes: int, max_per_prefix: int) -> None:
        self._by_prefix: dict[bytes, dict[bytes, Source]] = {}
        self._max_prefixes = max_prefixes
        self._max_per_prefix = max_per_prefix

    def __len__(self) -> int:
        return len(self._by_prefix)

    def get(self, prefix: bytes, router_id: bytes) -> Source | None:
        sources = self._by_prefix.get(prefix)
        return None if sources is None else sources.get(router_id)

    def feasible(self, prefix: bytes, router_id: bytes, seqno: int, metric: int) -> bool:
        if metric >= INFINITY:
            return True
        sources = self._by_prefix.get(prefix)
        if sources is None:
            return True
        source = sources.get(router_id)
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
        sources = self._by_prefix.get(prefix)
        if sources is None:
            if len(self._by_prefix) >= self._max_prefixes:
                # Evict the oldest inserted prefix; only reachable under churn beyond the bound.
                del self._by_prefix[next(iter(self._by_prefix))]
            sources = self._by_prefix[prefix] = {}
        source = sources.get(router_id)
        if source is None:
            if len(sources) >= self._max_per_prefix:
                del sources[min(sources, key=lambda rid: sources[rid].expires)]
            sources[router_id] = Source(seqno, metric, expires, issued)
            return
        if seqno_newer(seqno, source.seqno):
            source.seqno = seqno
            source.metric = metric
            source.issued = max(source.issued, issued)
        elif seqno == source.seqno and metric < source.metric:
            source.metric = metric
        source.expires = expires

    def sweep(self, now: float) -> int:
        """Drop expired entries; returns how many were dropped."""
        dropped = 0
        for prefix in list(self._by_prefix):
            sources = self._by_prefix[prefix]
            for rid in [rid for rid, s in sources.items() if s.expires <= now]:
                del sources[rid]
                dropped += 1
            if not sources:
                del self._by_prefix[prefix]
        return dropped
