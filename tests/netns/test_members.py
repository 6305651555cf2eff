"""Issue 10 in real namespaces: four real daemons in a square know each other by name.

Driven only through the real CLI inside each namespace: ``hyphal members --json`` on every node
lists all four with their names (one of them from the ``{region}-{hostname}`` template);
``hyphal ping NAME`` crosses two hops; a live rename (``hyphal set name``) reaches every node and
the old name stops resolving; a second claim of a name loses on every node alike and is flagged;
a killed node shows unreachable at once and is gone once its record expires (a short
``member_record_lifetime`` from the config file).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hyphal.config import hostname_label
from hyphal.testing.netlab import Node, Topology

pytestmark = pytest.mark.netns

LIFETIME = 15  # seconds a record lives unless refreshed (refreshed every third of it)


def members(node: Node) -> list[dict[str, Any]]:
    result = node.cli("members", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def resolve(node: Node, name: str) -> tuple[int, str]:
    result = node.cli("resolve", name, "--json")
    if result.returncode != 0:
        return result.returncode, json.loads(result.stderr.strip().splitlines()[-1])["error"]
    return 0, json.loads(result.stdout)["address"]


def names_on(node: Node) -> dict[str, tuple[str, bool, bool]]:
    """address -> (name, ownsName, reachable) as ``node``'s API lists its members (the waits
    poll this; a CLI process per poll cost most of this test's minute and a half)."""
    rows: list[dict[str, Any]] = node.get("/api/v1/members")
    return {r["address"]: (r["name"], r["ownsName"], r["reachable"]) for r in rows}


def test_members_names_rename_duplicate_and_expiry(
    topology: Callable[..., Topology],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    config = tmp_path / "members.toml"
    config.write_text(f"member_record_lifetime = {LIFETIME}\n")
    templated = f"fra-{hostname_label(socket.gethostname())}"
    topo = topology(
        "A-B B-C C-D D-A",
        start=True,
        daemon_args=["-c", str(config)],
        node_args={
            "A": ["--name", "{region}-{hostname}", "--region", "fra"],
            "B": ["--name", "web1", "--region", "ams"],
            "C": ["--name", "db1", "--region", "ams"],
            "D": ["--name", "cache1"],
        },
    )
    nodes = [topo.node(n) for n in "ABCD"]
    a, b, c, d = nodes
    expected = {
        str(a.address): templated,
        str(b.address): "web1",
        str(c.address): "db1",
        str(d.address): "cache1",
    }

    # Every node lists all four, by name, reachable.
    for node in nodes:
        topo.wait_until(
            lambda n=node: {k: v[0] for k, v in names_on(n).items() if v[2]} == expected,
            timeout=30,
            message=f"{node.name} lists every member by name",
        )
    rows = {r["name"]: r for r in members(b)}
    assert rows["db1"]["region"] == "ams" and rows["db1"]["software"].startswith("hyphal ")
    assert rows["db1"]["metric"] > 0 and rows["web1"]["self"] and rows["web1"]["metric"] == 0
    table = a.cli("members")
    assert table.returncode == 0 and "db1" in table.stdout and f"{templated} *" in table.stdout
    status = json.loads(a.cli("status", "--json").stdout)
    assert status["self"]["name"] == templated and status["counts"]["members"] == 4
    assert {p["name"] for p in status["peers"]} == {"web1", "cache1"}

    # Ping by name, two hops away.
    ping = a.cli("ping", "db1", "-c", "2", "-i", "0.2")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "2 received" in ping.stdout and "hops=2" in ping.stdout
    for node in nodes:
        assert resolve(node, "db1") == (0, str(c.address))

    # A live rename reaches every node; the old name stops resolving.
    renamed = c.cli("set", "name", "db2")
    assert renamed.returncode == 0, renamed.stderr
    started = time.monotonic()
    for node in nodes:
        topo.wait_until(lambda n=node: resolve(n, "db2") == (0, str(c.address)), timeout=15)
        code, error = resolve(node, "db1")
        assert code == 1 and "no member is named 'db1'" in error
    record_property("rename_everywhere_s", round(time.monotonic() - started, 2))

    # D claims db2 too: C had it first, so C keeps it on every node and D is flagged.
    claim = d.cli("set", "name", "db2")
    assert claim.returncode == 0 and "another member claimed 'db2' first" in claim.stdout
    for node in nodes:
        topo.wait_until(
            lambda n=node: (
                names_on(n).get(str(d.address)) == ("db2", False, True)
                and names_on(n).get(str(c.address)) == ("db2", True, True)
            ),
            timeout=15,
            message=f"{node.name} flags D's claim of db2 as lost",
        )
        assert resolve(node, "db2") == (0, str(c.address))
    assert "(name taken: lost)" in b.cli("members").stdout
    assert "our name is taken" in d.log_tail(200)
    ping_winner = b.cli("ping", "db2", "-c", "1")
    assert ping_winner.returncode == 0 and "1 received" in ping_winner.stdout

    # B is killed: unreachable at once everywhere, gone once its record expired.
    b.kill()
    started = time.monotonic()
    for node in (a, c, d):
        topo.wait_until(
            lambda n=node: names_on(n).get(str(b.address)) == ("web1", True, False),
            timeout=5,
            message=f"{node.name} shows web1 unreachable",
        )
    record_property("unreachable_after_kill_s", round(time.monotonic() - started, 2))
    assert resolve(a, "web1") == (0, str(b.address))  # still known, marked, until it expires
    for node in (a, c, d):
        topo.wait_until(
            lambda n=node: str(b.address) not in names_on(n),
            timeout=LIFETIME + 10,
            message=f"{node.name} drops web1 after its record expired",
        )
    record_property("gone_after_kill_s", round(time.monotonic() - started, 2))
    assert resolve(d, "web1")[0] == 1
    metrics_ok = json.loads(a.cli("status", "--json").stdout)["counts"]
    assert metrics_ok["members"] == 3 and metrics_ok["membersReachable"] == 3
