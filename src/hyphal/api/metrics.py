"""Prometheus metrics for the whole node, collected from live state at scrape time.

Nothing is counted twice: the collector reads the counters the node keeps anyway (data-plane
stats, router counters, link byte counts, bus stats, membership counters) through its
:class:`NodeView`, so metrics cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from hyphal.node.view import NodeView, ViewSource


class NodeCollector(Collector):
    def __init__(self, view: NodeView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        view = self.view
        links = view.links()
        yield _gauge("hyphal_peers", "Live peer links.", len(links))
        yield _gauge("hyphal_static_peers", "Configured static peers.", view.static_peer_count())
        yield _gauge(
            "hyphal_loop_lag_max_seconds",
            "Largest event-loop lag over the last minute.",
            view.loop_lag(),
        )
        buckets, lag_sum = view.loop_lag_histogram()
        yield HistogramMetricFamily(
            "hyphal_loop_lag_seconds",
            "Event-loop lag, sampled every 100 ms since the start.",
            buckets=buckets,
            sum_value=lag_sum,
        )
        yield _gauge("hyphal_routes_selected", "Selected routes.", len(view.selected_routes()))
        yield _gauge("hyphal_routes_fallback", "Fallback routes.", len(view.fallback_routes()))

        rtt = GaugeMetricFamily(
            "hyphal_peer_rtt_seconds", "Smoothed RTT per neighbour.", labels=["peer"]
        )
        cost = GaugeMetricFamily(
            "hyphal_peer_link_cost", "Link cost per neighbour.", labels=["peer"]
        )
        keys = {link.id: (link.public_key or b"").hex()[:16] for link in links}
        for info in view.neighbours():
            label = keys.get(info.peer, str(info.peer))
            if info.rtt is not None:
                rtt.add_metric([label], info.rtt)
            cost.add_metric([label], info.link_cost)
        yield rtt
        yield cost

        link_bytes = CounterMetricFamily(
            "hyphal_link_bytes", "Bytes on live links (encrypted).", labels=["peer", "direction"]
        )
        for link in links:
            label = keys[link.id]
            link_bytes.add_metric([label, "tx"], link.tx_bytes)
            link_bytes.add_metric([label, "rx"], link.rx_bytes)
        yield link_bytes

        stats = view.traffic()
        packets = CounterMetricFamily(
            "hyphal_packets", "Data packets.", labels=["path", "direction"]
        )
        octets = CounterMetricFamily(
            "hyphal_packet_bytes", "Data packet bytes.", labels=["path", "direction"]
        )
        for path, direction, traffic in (
            ("local", "tx", stats.local_tx),
            ("local", "rx", stats.local_rx),
            ("relayed", "tx", stats.forwarded),
        ):
            packets.add_metric([path, direction], traffic.packets)
            octets.add_metric([path, direction], traffic.bytes)
        yield packets
        yield octets

        drops = CounterMetricFamily(
            "hyphal_packet_drops", "Dropped packets by reason.", labels=["reason"]
        )
        for reason, count in stats.drops.items():
            drops.add_metric([reason], count)
        yield drops

        events = CounterMetricFamily(
            "hyphal_router_events", "Router event counters.", labels=["event"]
        )
        for event, count in view.router_counters().items():
            events.add_metric([event], count)
        yield events

        reachable, unreachable = view.member_counts()
        members = GaugeMetricFamily(
            "hyphal_members", "Members with a live record, by reachability.", labels=["state"]
        )
        members.add_metric(["reachable"], reachable)
        members.add_metric(["unreachable"], unreachable)
        yield members
        member_events = CounterMetricFamily(
            "hyphal_membership_events",
            "Membership gossip and record counters (accepted, refused by reason, ...).",
            labels=["event"],
        )
        for event, count in view.membership_counters().items():
            member_events.add_metric([event], count)
        yield member_events

        bus = view.bus()
        messages = GaugeMetricFamily("hyphal_message_bus", "Message bus state.", labels=["what"])
        for what, value in bus.memory.items():
            messages.add_metric([what], value)
        yield messages
        bus_events = CounterMetricFamily(
            "hyphal_message_bus_events", "Message bus event counters.", labels=["event"]
        )
        for event, count in bus.stats.items():
            bus_events.add_metric([event], count)
        yield bus_events

        for part, counters in view.part_counters().items():
            family = CounterMetricFamily(
                f"hyphal_{part}_events", f"Event counters of the {part} part.", labels=["event"]
            )
            for event, count in counters.items():
                family.add_metric([event], count)
            yield family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def metrics_app(node: ViewSource) -> Any:
    """An ASGI app serving the node's metrics in Prometheus text format at any path."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node.view))
    return make_asgi_app(registry)
