"""Issue 10, "What it must show" item 2, in real namespaces: `hyphal network create` and
`hyphal invite` on a running member A of a three-node private mesh; `hyphal join TOKEN
--foreground` in a fresh namespace J; J shows up in every member's GET /api/v1/members and
answers pings through the mesh. The same token in another fresh namespace K is refused by the
network (the invite is already redeemed), an expired token is refused, and `hyphal network
revoke` takes J's links away everywhere within seconds."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.config import load_config_file
from hyphal.identity import NodeIdentity
from hyphal.membership import invites
from hyphal.membership import token as token_mod
from hyphal.testing.netlab import API_ADDR, DAEMON_PORT, Node, Topology, has_route

pytestmark = pytest.mark.netns
NETWORK = "fleet"


def _admit(a_cfg: Path, node: Node, name: str) -> None:
    """Admit ``node`` with a token from A's admin key (what `hyphal join` would write)."""
    admin = NodeIdentity.load(a_cfg.parent / "admin" / f"{NETWORK}.admin.key")
    cfg_text = a_cfg.read_text()
    net_key_file = load_config_file(a_cfg).network_key_file
    assert net_key_file is not None
    net_key = net_key_file.read_bytes()
    t = invites.new_token(
        admin,
        network_name=NETWORK,
        network_key=net_key,
        admin_keys=(admin.public_key,),
        peers=(),
        expires=int(time.time()) + 600,
    )
    adm = node.dir / "admission"
    adm.write_bytes(invites.redeem_token(t, node.public_key_bytes, int(time.time())))
    keyline = next(line for line in cfg_text.splitlines() if line.startswith("admin_keys"))
    cfg = node.dir / "hyphal.toml"
    cfg.write_text(
        f'network_name = "{NETWORK}"\n'
        f'network_key_file = "{net_key_file}"\n'
        f'admission_file = "{adm}"\n{keyline}\nmember_name = "{name}"\n'
    )
    node.extra_args = ["--config-file", str(cfg)]


def _join_argv(topo: Topology, node: Node, token: str, wait: float = 40) -> list[str]:
    return [
        *topo.daemon_cmd,
        "join",
        token,
        "--foreground",
        "--config-dir",
        str(node.dir / "cfg"),
        "--api-addr",
        API_ADDR,
        "--tcp-listen-port",
        str(DAEMON_PORT),
        "--no-tun",
        "--wait",
        str(wait),
    ]


def _member_keys(node: Node) -> set[str]:
    return {m["publicKey"] for m in node.get("/api/v1/members")}


def test_invite_join_refuse_and_revoke(topology: Callable[..., Topology]) -> None:
    topo = topology("A-B B-C J-A K-A")
    a, b, c, j, k = (topo.node(n) for n in "ABCJK")
    a_cfg = a.dir / "cfg" / "hyphal.toml"
    created = a.cli(
        "network", "create", NETWORK, "--config-dir", str(a_cfg.parent),
        "--key-file", str(a.key_file), "--name", "alpha",
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    assert "Back up the admin key" in created.stderr
    a.extra_args = ["--config-file", str(a_cfg)]
    _admit(a_cfg, b, "beta")
    _admit(a_cfg, c, "gamma")
    for n in (a, b, c):
        n.start()
    topo.wait_ready(["A", "B", "C"])
    topo.wait_until(lambda: has_route(a, c) and has_route(c, a), timeout=30)

    peers = [topo.link("J", "A").peer_uri, topo.link("K", "A").peer_uri]
    inv = a.cli(
        "invite", "--config-file", str(a_cfg), "--name", "db1", "--region", "fra",
        "--expires", "1h", *[arg for p in peers for arg in ("--peer", p)],
    )  # fmt: skip
    assert inv.returncode == 0, inv.stdout + inv.stderr
    assert "secret" in inv.stderr
    token = inv.stdout.strip()
    assert token.startswith("hyphal1-")

    # J joins with one command and runs in the foreground.
    joined_at = time.monotonic()
    j.proc = j.popen(_join_argv(topo, j, token), "join.log")
    join_log = j.dir / "join.log"
    topo.wait_until(lambda: "joined: db1" in join_log.read_text(), timeout=45)
    print(f"join took {time.monotonic() - joined_at:.1f} s")
    j_key = NodeIdentity.load(j.dir / "cfg" / "priv_key.bin")
    j_hex = j_key.public_key.hex()
    assert str(j_key.address) in join_log.read_text()
    topo.wait_until(lambda: all(j_hex in _member_keys(n) for n in (a, b, c)), timeout=20)
    (row,) = [m for m in c.get("/api/v1/members") if m["publicKey"] == j_hex]
    assert row["name"] == "db1" and row["region"] == "fra"
    pong = c.cli("ping", str(j_key.address), "-c", "2", "-i", "0.2")
    assert pong.returncode == 0 and "2 received" in pong.stdout, pong.stdout + pong.stderr

    # Re-running join is harmless: the key, the admission and the config are kept.
    admission_before = (j.dir / "cfg" / f"{NETWORK}.admission").read_bytes()
    again = j.exec([*_join_argv(topo, j, token, wait=1), "--json"], timeout=30)
    assert again.returncode == 0 and "kept" in again.stderr, again.stdout + again.stderr
    assert json.loads(again.stdout)["address"] == str(j_key.address)
    assert (j.dir / "cfg" / f"{NETWORK}.admission").read_bytes() == admission_before
    assert NodeIdentity.load(j.dir / "cfg" / "priv_key.bin").public_key == j_key.public_key

    # The same token on K: the network holds J's earlier redemption, so K is refused.
    used = k.exec(_join_argv(topo, k, token, wait=30), timeout=60)
    assert used.returncode == 1, used.stdout + used.stderr
    assert "already used" in used.stderr
    assert not has_route(a, k)
    # While on probation, K's routing frames reached A and were dropped and counted.
    drops = a.get("/api/v1/admin/stats/packets")["drops"]
    assert drops.get("not-admitted-frame", 0) > 0, drops
    assert a.get("/api/v1/admission")["admitted"] is True

    # An expired token is refused (the network's rule: past the expiry plus the skew grace).
    admin = NodeIdentity.load(a_cfg.parent / "admin" / f"{NETWORK}.admin.key")
    old = token_mod.decode(token)
    stale = invites.new_token(
        admin,
        network_name=NETWORK,
        network_key=old.network_key,
        admin_keys=old.admin_keys,
        peers=old.peers,
        expires=int(time.time()) - 3600,
    )
    expired = k.exec(
        [*topo.daemon_cmd, "join", token_mod.encode(stale), "--foreground",
         "--config-dir", str(k.dir / "cfg2")],
        timeout=30,
    )  # fmt: skip
    assert expired.returncode == 1 and "expired" in expired.stderr, expired.stderr

    # Revoked: every member closes and refuses J's links within seconds.
    rev = a.cli("network", "revoke", "db1", "--config-file", str(a_cfg))
    assert rev.returncode == 0, rev.stdout + rev.stderr
    revoked_at = time.monotonic()
    topo.wait_until(
        lambda: not has_route(a, j) and not has_route(c, j) and not has_route(j, a), timeout=10
    )
    took = time.monotonic() - revoked_at
    print(f"revocation: links gone in {took:.2f} s")
    topo.wait_until(lambda: all(j_hex not in _member_keys(n) for n in (a, b, c)), timeout=10)
    time.sleep(2)  # J keeps redialling A; every new link is refused after the handshake
    assert not has_route(a, j) and not has_route(j, a)
    assert "revoked" in a.log_tail(200)
