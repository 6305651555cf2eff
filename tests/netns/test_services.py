"""Services with real daemons in namespaces, real HTTP backends, the real CLI and `dig`.

A - B - C named a, b, c. A and C each run a web backend (python's http.server) and serve it as
service ``web``: A owns the name (its first claim), C serves it with a grant A signed offline
(`hyphal service grant`). Every node answers ``_web._tcp.svc`` SRV with both instances and
``web.svc`` AAAA with its own nearest one; when C's backend dies, C's answer moves to A; a
restarted daemon keeps its runtime-added service (the state file).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from hyphal.testing.netlab import Node, Topology, kill_tree

from .test_dns import DOMAIN, answers, dig, named_topology, status_of

pytestmark = pytest.mark.netns

PORT = 8080


def usable(node: Node, service: str = "web") -> set[str]:
    response = node.api("GET", f"/api/v1/services/{service}")
    if response.status != 200:
        return set()
    return {r["node"] for r in response.data["instances"] if r["usable"]}


def backend(node: Node) -> subprocess.Popen[bytes]:
    return node.popen([sys.executable, "-m", "http.server", str(PORT), "--bind", "::"], "web.log")


def test_srv_aaaa_failover_and_a_restart_with_dig(topology: Callable[..., Topology]) -> None:
    topo = named_topology(topology)
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    backend(a)
    c_backend = backend(c)
    topo.wait_until(lambda: a.listening(PORT) and c.listening(PORT), timeout=20)
    common = ["--port", str(PORT), "--check", "http://", "--interval", "0.5"]
    added = a.cli("service", "add", "web", *common, "--json")
    assert added.returncode == 0, added.stdout + added.stderr
    granted = a.cli(
        "service", "grant", "web", "--to", c.public_key, "-k", str(a.key_file), "--json"
    )
    assert granted.returncode == 0, granted.stderr
    grant = json.loads(granted.stdout)["grant"]
    refused = c.cli("service", "add", "web", *common)  # A owns the name: C needs the grant
    assert refused.returncode == 1 and "owned by key" in refused.stderr, refused.stderr
    added = c.cli("service", "add", "web", *common, "--grant", grant)
    assert added.returncode == 0, added.stdout + added.stderr
    topo.wait_until(
        lambda: all(usable(n) == {"a", "c"} for n in (a, b, c)),
        timeout=30,
        message="both instances usable everywhere",
    )

    out = dig(b, "@127.0.0.1", f"_web._tcp.svc.{DOMAIN}", "SRV")
    assert status_of(out) == "NOERROR", out
    srv = sorted(answers_srv(out))
    assert [(port, target) for _, _, port, target in srv] == [
        (PORT, f"a.{DOMAIN}."),
        (PORT, f"c.{DOMAIN}."),
    ], out
    assert f"a.{DOMAIN}." in out.split("ADDITIONAL SECTION")[1], out  # targets' AAAA included
    for node in (a, c):  # each node's own server answers with its own, nearest, instance
        out = dig(node, f"@{node.address}", f"web.svc.{DOMAIN}", "AAAA")
        assert answers(out, "AAAA") == [str(node.address)], out
    out = dig(b, "@127.0.0.1", f"web.vip.{DOMAIN}", "AAAA")
    vip = a.get("/api/v1/services/web")["address"]
    assert answers(out, "AAAA") == [vip], out
    assert answers(dig(a, "@127.0.0.1", "-x", vip), "PTR") == [f"web.vip.{DOMAIN}."]

    # C's backend dies: C's own answer moves to A (fall interval + propagation)
    kill_tree(c_backend)  # by its handle: namespaces share one process table
    died = time.monotonic()
    topo.wait_until(
        lambda: (
            answers(dig(c, "@127.0.0.1", f"web.svc.{DOMAIN}", "AAAA"), "AAAA") == [str(a.address)]
        ),
        timeout=15,
        message="C's DNS sends web to A",
    )
    print(f"backend death to C answering A: {time.monotonic() - died:.2f} s")
    topo.wait_until(lambda: usable(b) == {"a"}, timeout=15, message="B sees C unhealthy")
    out = dig(b, "@127.0.0.1", f"_web._tcp.svc.{DOMAIN}", "SRV")
    assert [t for *_, t in answers_srv(out)] == [f"a.{DOMAIN}."], out

    # a restarted daemon serves its runtime-added service again (services.json)
    c.restart()
    listed = json.loads(c.cli("service", "list", "--json").stdout)
    assert [row["name"] for row in listed["local"]] == ["web"], listed
    assert listed["local"][0]["owner"] == a.public_key
    human = c.cli("service", "list").stdout
    assert "web" in human and "unhealthy" in human, human


def answers_srv(output: str) -> list[tuple[int, int, int, str]]:
    return [
        (int(p), int(w), int(port), target)
        for p, w, port, target in re.findall(
            r"^\S+\s+\d+\s+IN\s+SRV\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)$", output, re.MULTILINE
        )
    ]
