"""Prometheus metrics for the whole node, collected from live state at scrape time.

Nothing is counted twice: the collector reads the counters the node keeps anyway (data-plane
stats, router counters, link byte counts, bus stats), so metrics cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from hyphal.node import Node


class NodeCollector(Collector):
    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        router, forwarder = node.router, node.forwarder
        if router is None or forwarder is None:
            return
        links = list(node.peers.links.values())
        yield _gauge("hyphal_peers", "Live peer links.", len(links))
        yield _gauge("hyphal_static_peers", "Configured static peers.", len(node.peers.static))
        yield _gauge(
            "hyphal_loop_lag_max_seconds",
            "Largest event-loop lag over the last minute.",
            node.loop_lag.max_lag(),
        )
        yield _gauge("hyphal_routes_selected", "Selected routes.", len(router.selected_routes()))
        yield _gauge("hyphal_routes_fallback", "Fallback routes.", len(router.fallback_routes()))

        rtt = GaugeMetricFamily(
            "hyphal_peer_rtt_seconds", "Smoothed RTT per neighbour.", labels=["peer"]
        )
        cost = GaugeMetricFamily(
            "hyphal_peer_link_cost", "Link cost per neighbour.", labels=["peer"]
        )
        keys = {link.id: (link.remote_public_key or b"").hex()[:16] for link in links}
        for info in router.neighbours():
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

        stats = forwarder.stats
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
        for event, count in router.counters.items():
            events.add_metric([event], count)
        yield events

        if node.messages is not None:
            messages = GaugeMetricFamily(
                "hyphal_message_bus", "Message bus state.", labels=["what"]
            )
            for what, value in node.messages.core.memory_usage().items():
                messages.add_metric([what], value)
            yield messages
            bus_events = CounterMetricFamily(
                "hyphal_message_bus_events", "Message bus event counters.", labels=["event"]
            )
            for event, count in node.messages.core.stats.items():
                bus_events.add_metric([event], count)
            yield bus_events


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def metrics_app(node: Node) -> Any:
    """An ASGI app serving the node's metrics in Prometheus text format at any path."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return make_asgi_app(registry)
