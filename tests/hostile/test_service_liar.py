"""A node that lies about serving a service never attracts it (real daemons in namespaces).

"A-B B-C B-L": A owns ``web`` and serves it, C serves it with A's grant, and L, a real hyphal
node one hop from B like A and C, publishes a healthy ``web`` of the highest weight with a
false proof: its own claim backdated to 1970, C's proof copied, or none. B's choice, B's DNS
and C's choice never name L, and B shows L as "not authorised".
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Node, Topology, kill_tree

pytestmark = pytest.mark.netns

LIAR = Path(__file__).resolve().parent / "tools" / "service_liar.py"
DOMAIN = "hyphal.internal"


def rows(node: Node) -> list[dict[str, object]]:
    response = node.api("GET", "/api/v1/services/web")
    return response.data["instances"] if response.status == 200 else []  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["backdated", "copied", "none"])
def test_a_liar_never_attracts_the_service(topology: Callable[..., Topology], mode: str) -> None:
    topo = topology("A-B B-C B-L", tun=True)
    for name in "ABC":
        node = topo.node(name)
        config = node.dir / "name.toml"
        config.write_text(f'member_name = "{name.lower()}"\n')
        node.extra_args = [*node.extra_args, "-c", str(config)]
    topo.start(["A", "B", "C"])
    a, b, c, liar_ns = topo.node("A"), topo.node("B"), topo.node("C"), topo.node("L")
    common = ["--port", "8080", "--check", "none"]
    assert a.cli("service", "add", "web", *common).returncode == 0
    grant = json.loads(
        a.cli(
            "service", "grant", "web", "--to", c.public_key, "-k", str(a.key_file), "--json"
        ).stdout
    )["grant"]
    assert c.cli("service", "add", "web", *common, "--grant", grant).returncode == 0
    topo.wait_until(
        lambda: all({r["node"] for r in rows(n) if r["usable"]} == {"a", "c"} for n in (b, c)),
        timeout=30,
        message="both honest instances usable at B and C",
    )
    liar: subprocess.Popen[bytes] = liar_ns.popen(
        [sys.executable, str(LIAR), mode, "60"], "liar.log"
    )
    try:
        topo.wait_until(
            lambda: any(r["node"] == "liar" for r in rows(b)),
            timeout=30,
            message="B holds the liar's record",
        )
        (lie,) = [r for r in rows(b) if r["node"] == "liar"]
        assert lie["authorised"] is False and lie["healthy"] is True and lie["reachable"], lie
        end = time.monotonic() + 3
        while time.monotonic() < end:
            for node in (b, c):
                chosen = node.api("GET", "/api/v1/services/web/choose").data
                assert chosen["node"] in ("a", "c"), chosen  # type: ignore[index]
            out = b.exec(["dig", "+short", "@127.0.0.1", f"web.svc.{DOMAIN}", "AAAA"]).stdout
            assert str(lie["address"]) not in out and out.strip(), out
            srv = b.exec(["dig", "+short", "@127.0.0.1", f"_web._tcp.svc.{DOMAIN}", "SRV"]).stdout
            assert "liar" not in srv and len(srv.splitlines()) == 2, srv
            time.sleep(0.3)
        listed = b.cli("service", "list").stdout
        assert "not authorised" in listed, listed
    finally:
        kill_tree(liar)
