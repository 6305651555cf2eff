"""Logs that tell the story, with real daemons in namespaces (issue 13): one INFO line per
failover naming both next hops, one WARNING for a wrong network key over 30 s, a pinned peer
presenting another key refused, and a clean stop with no WARNING."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from hyphal.identity import NodeIdentity
from hyphal.testing.netlab import Node, Topology, has_route, next_hop

pytestmark = pytest.mark.netns


def log_since(node: Node, mark: int) -> list[str]:
    return node.log_path.read_bytes()[mark:].decode(errors="replace").splitlines()


def log_mark(node: Node) -> int:
    return node.log_path.stat().st_size


def warnings_in(lines: list[str]) -> list[str]:
    return [line for line in lines if " WARNING " in line or " ERROR " in line]


def test_failover_logs_exactly_one_info_line_naming_old_and_new_next_hop(
    topology: Callable[..., Topology],
) -> None:
    topo = topology("A-B B-D A-D:delay=40", start=True)
    a, b, d = topo.node("A"), topo.node("B"), topo.node("D")
    topo.wait_until(lambda: next_hop(a, d) == b.public_key, timeout=20)
    time.sleep(1.0)  # let start-up route changes settle
    mark = log_mark(a)
    b.kill()  # SIGKILL the middle of the triangle's fast path
    topo.wait_until(lambda: next_hop(a, d) == d.public_key, timeout=10)
    lost_b = f"node {b.address} ({b.public_key[:16]}…) unreachable"
    topo.wait_until(lambda: any(lost_b in line for line in log_since(a, mark)), timeout=10)
    time.sleep(2.0)  # room for a second (wrong) failover line to show up
    lines = log_since(a, mark)
    failovers = [line for line in lines if f"failover for node {d.address} " in line]
    assert len(failovers) == 1, "\n".join(lines)
    line = failovers[0]
    assert " INFO " in line and " hyphal.routing: " in line
    assert f"next hop {b.public_key[:16]}… at " in line
    assert f" -> {d.public_key[:16]}… at " in line
    assert "the link to the old next hop went down" in line
    assert [ln for ln in lines if lost_b in ln and " INFO " in ln]


def test_wrong_network_key_logs_one_warning_per_end_over_30_s(
    topology: Callable[..., Topology], tmp_path: Path
) -> None:
    other_key = tmp_path / "other.key"
    other_key.write_bytes(b"O" * 32)
    other_key.chmod(0o600)
    topo = topology(
        "A-B",
        start=True,
        network_name="fleet",
        network_key=b"K" * 32,
        node_args={
            "A": ["--network-key-file", str(other_key), "--log-level", "info,hyphal.links=debug"]
        },
    )
    a, b = topo.node("A"), topo.node("B")
    started = time.monotonic()
    peers = topo.wait_until(  # (a first dial may find B not listening yet)
        lambda: [
            p for p in a.get("/api/v1/admin/peers") if "network key" in (p["lastError"] or "")
        ],
        timeout=20,
    )
    assert "network key differs" in peers[0]["lastError"]
    assert peers[0]["connectionState"] != "alive"
    # (backoff from 0.25 s doubling: at least 4 attempts fit in 4 s even at its slowest)
    time.sleep(max(0.0, 30.0 - (time.monotonic() - started)))
    a_lines = log_since(a, 0)
    b_lines = log_since(b, 0)
    a_warn = [line for line in warnings_in(a_lines) if "wrong-network-key" in line]
    b_warn = [line for line in warnings_in(b_lines) if "wrong-network-key" in line]
    assert len(a_warn) == 1, "\n".join(a_warn)
    assert len(b_warn) == 1, "\n".join(b_warn)
    assert "same --network-key-file" in a_warn[0]  # says what to do
    attempts = [ln for ln in a_lines if "wrong-network-key" in ln and "(attempt " in ln]
    assert len(attempts) >= 4, "A kept retrying (with backoff) without repeating the WARNING"


def test_pinned_peer_with_another_key_is_refused_and_a_clean_stop_logs_no_warning(
    topology: Callable[..., Topology],
) -> None:
    topo = topology("A-B", start=True)
    a, b = topo.node("A"), topo.node("B")
    topo.wait_until(lambda: has_route(a, b), timeout=20)
    (uri,) = a.peer_uris
    assert a.api("DELETE", f"/api/v1/admin/peers/{quote(uri, safe='')}").status == 204
    topo.wait_until(lambda: not has_route(a, b), timeout=10)
    mark_a = log_mark(a)
    wrong = NodeIdentity.generate().public_key.hex()
    response = a.api("POST", "/api/v1/admin/peers", {"endpoint": f"{uri}?key={wrong}"})
    assert response.status == 204, response.text
    peers = topo.wait_until(
        lambda: [p for p in a.get("/api/v1/admin/peers") if "pinned" in (p["lastError"] or "")],
        timeout=20,
    )
    assert peers[0]["connectionState"] != "alive"
    time.sleep(3.0)  # several retries
    refused = [ln for ln in warnings_in(log_since(a, mark_a)) if "pinned to" in ln]
    assert len(refused) == 1, refused
    assert f"presents key {b.public_key[:16]}…" in refused[0]
    assert f"pinned to {wrong[:16]}…" in refused[0]
    assert not has_route(a, b)

    # pinned to B's real key, the same endpoint connects
    assert a.api("DELETE", f"/api/v1/admin/peers/{quote(uri, safe='')}").status == 204
    right = a.api("POST", "/api/v1/admin/peers", {"endpoint": f"{uri}?key={b.public_key}"})
    assert right.status == 204, right.text
    topo.wait_until(lambda: has_route(a, b) and has_route(b, a), timeout=20)

    marks = {node.name: log_mark(node) for node in (a, b)}
    a.kill(signal.SIGTERM)
    b.kill(signal.SIGTERM)
    for node in (a, b):
        lines = log_since(node, marks[node.name])
        assert warnings_in(lines) == [], "\n".join(lines)
        assert any("shutting down" in ln for ln in lines)
        assert any(ln.endswith("hyphal: stopped") for ln in lines), "\n".join(lines)


def test_a_running_daemon_keeps_its_message_store_private_and_warns_about_a_loose_key(
    topology: Callable[..., Topology], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    topo = topology("A-B", node_args={"A": ["--message-store", str(store)]})
    a, b = topo.node("A"), topo.node("B")
    a.key_file.chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        topo.start()
    finally:
        os.umask(old_umask)
    topo.wait_until(lambda: has_route(b, a), timeout=20)
    sent = b.cli("message", "send", str(a.address), "secret-payload")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    topo.wait_until(lambda: (store / "messages.sqlite3-wal").exists(), timeout=10)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in store.iterdir()}
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert modes == dict.fromkeys(
        ["messages.sqlite3", "messages.sqlite3-wal", "messages.sqlite3-shm"], 0o600
    ), modes
    lines = log_since(a, 0)
    loose = [ln for ln in warnings_in(lines) if f"node key file {a.key_file} has mode 0644" in ln]
    assert len(loose) == 1 and f"chmod 600 {a.key_file}" in loose[0]
    assert any(f"node key {a.key_file} (from --key-file)" in ln for ln in lines)
    assert any("network: the public hyphal network" in ln for ln in lines)
    assert any("listening for peers on 0.0.0.0:9651, [::]:9651" in ln for ln in lines)
