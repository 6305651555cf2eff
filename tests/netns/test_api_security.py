"""The API needs a bearer token when bound beyond loopback; metrics serve Prometheus text."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hyphal.testing.netlab import Topology

pytestmark = pytest.mark.netns


def test_api_beyond_loopback_requires_the_token_and_metrics_are_served(
    topology: Callable[..., Topology],
) -> None:
    topo = topology("A-B", start=False)
    a = topo.node("A")
    api = f"[{topo.link('A', 'B').addr6_a}]:8990"
    a.extra_args = ["--metrics-api-address", "127.0.0.1:9100", "--api-addr", api]
    topo.start(["B"])
    a.start()
    token_file = a.key_file.parent / "api_token"
    topo.wait_until(token_file.exists, timeout=20)
    token = token_file.read_text().strip()
    url = f"http://{api}/api/v1/admin"

    def curl(*extra: str) -> str:
        return a.exec(
            ["curl", "-g", "-s", "-o", "/dev/null", "-w", "%{http_code}", *extra, url]
        ).stdout

    topo.wait_until(lambda: curl() == "401", timeout=20)
    assert curl("-H", "Authorization: Bearer wrong") == "401"
    assert curl("-H", f"Authorization: Bearer {token}") == "200"
    assert "api_token" in a.log_tail(200)  # the log says where the token is and how to use it

    topo.wait_until(
        lambda: (
            "hyphal_peers 1.0" in a.exec(["curl", "-s", "http://127.0.0.1:9100/metrics"]).stdout
        ),
        timeout=20,
    )
    metrics = a.exec(["curl", "-s", "http://127.0.0.1:9100/metrics"]).stdout
    assert "hyphal_peer_rtt_seconds{" in metrics and "hyphal_routes_selected 1.0" in metrics
    assert 'hyphal_message_bus{what="inbox_count"} 0.0' in metrics
    assert 'hyphal_message_bus_events_total{event="retransmits"}' in metrics
