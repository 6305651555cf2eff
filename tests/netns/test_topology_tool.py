"""Tests of the topology builder itself, with real namespaces, veths and processes.

The workload is real but does not need the hyphal daemon: ping between link addresses, a
stand-in daemon (``fake_daemon.py``) that dials its peers and serves the admin API, and the
cleanup guarantees (namespaces, veths and processes gone even after failures).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from hyphal.testing.netlab import (
    Node,
    Topology,
    TopologyError,
    TopologyFactory,
    TopologyTimeout,
    line_spec,
    list_namespaces,
    mesh_spec,
    parse_description,
    reap_stale_namespaces,
    ring_spec,
)

HERE = Path(__file__).resolve().parent
FAKE_DAEMON = [sys.executable, str(HERE / "fake_daemon.py")]
REPO = HERE.parent.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); check its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _root_ifnames() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def assert_gone(namespaces: Sequence[str], pids: Sequence[int] = ()) -> None:
    left = set(namespaces) & set(list_namespaces())
    assert not left, f"namespaces left behind: {left}"
    for pid in pids:
        assert not _alive(pid), f"process {pid} left behind"


# --- description parsing (no root needed) -------------------------------------------------


def test_parse_string_description() -> None:
    nodes, links = parse_description("A-B B-D A-D:slow C B-C:delay=10,jitter=2,up=5")
    assert nodes == ["A", "B", "D", "C"]
    assert [(link.a, link.b) for link in links] == [("A", "B"), ("B", "D"), ("A", "D"), ("B", "C")]
    assert links[2].options == {"delay_ms": 40.0}
    assert links[3].options == {"delay_ms": 10.0, "jitter_ms": 2.0, "up_delay_ms": 5.0}
    assert parse_description("A-B:25ms")[1][0].options == {"delay_ms": 25.0}


def test_parse_dict_description() -> None:
    nodes, links = parse_description(
        {
            "nodes": ["A", "B", "C", "D"],
            "links": [("A", "B"), ("B", "D"), ("A", "D", {"delay_ms": 40})],
        }
    )
    assert nodes == ["A", "B", "C", "D"]
    assert links[2].options == {"delay_ms": 40.0}


@pytest.mark.parametrize(
    "bad", ["", "A-A", "A-B:bogus", "A-B:nope=1", "A:slow", "averyveryverylongname-B", "A.x-B"]
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_description(bad)


def test_shape_helpers() -> None:
    assert line_spec(3) == "N1-N2 N2-N3"
    assert ring_spec(3) == "N1-N2 N2-N3 N3-N1"
    assert len(parse_description(mesh_spec(4))[1]) == 6


# --- real namespaces ------------------------------------------------------------------------


@pytest.mark.netns
def test_line_ping_and_cleanup(topology: TopologyFactory) -> None:
    topo: Topology = topology("A-B B-C")
    ab, bc = topo.link("A", "B"), topo.link("C", "B")
    assert ab.a.name == "A" and bc.a.name == "B"
    assert len({n.ns for n in topo.nodes.values()}) == 3
    assert set(topo.namespaces) <= set(list_namespaces())
    # Every link works in IPv6 and IPv4, both ways.
    for link in (ab, bc):
        assert link.a.ping(link.addr6_b).returncode == 0, link
        assert link.b.ping(link.addr6_a).returncode == 0, link
        assert link.a.exec(["ping", "-4", "-c1", "-W5", link.addr4_b]).returncode == 0
    # Isolation: no forwarding, so A has no route to C's link address.
    assert topo.node("A").ping(bc.addr6_b, timeout=1).returncode != 0
    # Veths live only inside the namespaces.
    assert ab.ifname_a not in _root_ifnames()
    assert ab.ifname_a in topo.node("A").exec(["ip", "-o", "link"]).stdout
    topo.close()
    assert_gone(topo.namespaces)
    topo.close()  # idempotent


@pytest.mark.netns
def test_link_down_is_a_silent_cut_and_up_restores(topology: TopologyFactory) -> None:
    topo: Topology = topology("A-B")
    link, a = topo.link("A", "B"), topo.node("A")
    assert a.ping(link.addr6_b).returncode == 0
    link.down()
    assert not link.is_up
    assert a.ping(link.addr6_b, timeout=1).returncode != 0
    link.up()
    topo.wait_until(
        lambda: a.ping(link.addr6_b, timeout=1).returncode == 0,
        timeout=20,
        message="ping after link up",
    )
    assert a.exec(["ping", "-4", "-c1", "-W5", link.addr4_b]).returncode == 0  # IPv4 kept too


@pytest.mark.netns
def test_exception_in_with_block_cleans_up(tmp_path: Path, topology: TopologyFactory) -> None:
    topology("A")  # only to get the skip-if-unavailable check
    namespaces: list[str] = []
    pids: list[int] = []
    with (
        pytest.raises(RuntimeError, match="boom"),
        Topology.build("A-B:delay=10", workdir=tmp_path / "t") as topo,
    ):
        namespaces = topo.namespaces
        link = topo.link("A", "B")
        assert link.proxy is not None
        pids.append(link.proxy.pid)
        pids.append(topo.node("B").popen(["sleep", "300"], "sleep.log").pid)
        raise RuntimeError("boom")
    assert_gone(namespaces, pids)


@pytest.mark.netns
def test_failing_test_body_still_cleans_up_and_prints_logs(
    tmp_path: Path, topology: TopologyFactory
) -> None:
    topology("A")  # skip check
    record = tmp_path / "record.txt"
    env = dict(os.environ, HYPHAL_TOPO_SELFTEST=str(record))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / "failing_case.py"),
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-x",
            "-q",
            "--basetemp",
            str(tmp_path / "inner"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "deliberate failure in the test body" in out
    assert "hyphal node logs" in out and "api ready" in out, out
    lines = record.read_text().splitlines()
    namespaces = [line for line in lines if not line.startswith("#")]
    pids = [int(p) for p in lines[-1].split()[1:]]
    assert len(namespaces) == 3 and len(pids) == 4
    assert_gone(namespaces, pids)


@pytest.mark.netns
def test_keyboard_interrupt_cleans_up_via_atexit(tmp_path: Path, topology: TopologyFactory) -> None:
    topology("A")  # skip check
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(HERE)!r})
        from hyphal.testing.netlab import Topology
        topo = Topology.build("A-B:delay=5", workdir={str(tmp_path / "t")!r})
        pid = topo.link("A", "B").proxy.pid
        print(" ".join(topo.namespaces), pid, flush=True)
        os.kill(os.getpid(), signal.SIGINT)   # KeyboardInterrupt, no close() called
        time.sleep(30)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert "KeyboardInterrupt" in result.stderr
    *namespaces, pid = result.stdout.split()
    assert len(namespaces) == 2
    assert_gone(namespaces, [int(pid)])


@pytest.mark.netns
def test_reap_stale_namespaces(topology: TopologyFactory) -> None:
    topology("A")  # skip check
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = f"hyt-{dead.pid}-dead-X"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert name in reap_stale_namespaces()
        assert name not in list_namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


# --- daemons (stand-in) --------------------------------------------------------------------


@pytest.mark.netns
def test_start_daemons_api_signals_restart(topology: TopologyFactory) -> None:
    topo: Topology = topology("A-B B-C A-C:delay=40", start=True, daemon_cmd=FAKE_DAEMON)
    a, b, c = (topo.node(n) for n in "ABC")
    # Identity known up front matches what the daemon serves.
    for node in (a, b, c):
        status, data = node.api("GET", "/api/v1/admin")[:2]
        assert status == 200
        assert data == {"nodePubkey": node.public_key, "nodeSubnet": str(node.subnet)}
        assert node.address in node.subnet and node.address.packed[0] in (4, 5)
    # Flags: A dials B directly and C through the delay line on its own link address.
    argv = a.daemon_argv()
    assert argv.count("--peers") == 2 and "--no-tun" in argv
    assert topo.link("A", "C").peer_uri == f"tcp://[{topo.link('A', 'C').addr6_a}]:9702"

    def peer_keys(node: Node) -> set[str]:
        return {p["pubkey"] for p in node.get("/api/v1/admin/peers")}

    topo.wait_until(lambda: peer_keys(a) == {b.public_key, c.public_key}, message="A's peers")
    topo.wait_until(lambda: peer_keys(c) == {a.public_key, b.public_key}, message="C's peers")

    # The delay line between A and C is in the path: RTT >= up + down delay.
    def rtt_to_c() -> float | None:
        return next(
            (p["rttMs"] for p in a.get("/api/v1/admin/peers") if p["pubkey"] == c.public_key), None
        )

    rtt = topo.wait_until(rtt_to_c, message="rtt A-C")
    assert rtt is not None and rtt >= 80.0
    assert a.api("GET", "/nope").status == 404

    # Silent death: SIGSTOP keeps the process but the API stops answering.
    b.stop()
    assert b.running and b.api("GET", "/api/v1/admin", timeout=1).status == 0
    b.cont()
    topo.wait_until(b.ready, message="B answers after SIGCONT")

    # Kill and restart with the same key.
    old_pid = b.pid
    b.kill()
    assert not b.running
    topo.wait_until(lambda: b.public_key not in peer_keys(a), message="A notices B gone")
    b.restart()
    assert b.pid != old_pid and b.get("/api/v1/admin")["nodePubkey"] == b.public_key
    topo.wait_until(lambda: b.public_key in peer_keys(a), message="A redials B")
    assert b.log_tail().count("api ready") >= 1 and "=== start #2" in b.log_tail(200)
    assert "--- A" in topo.log_tails()

    # exec/cli run inside the namespace.
    assert a.exec("ip -6 -o addr show").stdout.count("fd00:") == 2
    assert a.cli("run", "--help").returncode == 0


@pytest.mark.netns
def test_start_failure_reports_log_tail(tmp_path: Path, topology: TopologyFactory) -> None:
    topology("A")  # skip check
    before = set(list_namespaces())
    with pytest.raises(TopologyError, match=r"(?s)exited with code 3.*failing on purpose"):
        Topology.build(
            "A-B",
            start=True,
            daemon_cmd=FAKE_DAEMON,
            node_args={"B": ["--fail"]},
            workdir=tmp_path / "t",
        )
    assert not {ns for ns in set(list_namespaces()) - before if re.match(r"hyt-", ns)}


@pytest.mark.netns
def test_ready_timeout_reports_log_tail(tmp_path: Path, topology: TopologyFactory) -> None:
    topology("A")  # skip check
    stuck = [
        sys.executable,
        "-c",
        "import time; print('stuck daemon', flush=True); time.sleep(120)",
    ]
    with pytest.raises(TopologyError, match=r"(?s)not ready.*after 2.0s.*stuck daemon"):
        Topology.build("A", start=True, daemon_cmd=stuck, ready_timeout=2.0, workdir=tmp_path / "t")


@pytest.mark.netns
def test_wait_until_timeout_message(topology: TopologyFactory) -> None:
    topo: Topology = topology("A")
    with pytest.raises(TopologyTimeout, match=r"(?s)the impossible.*last: ZeroDivisionError"):
        topo.wait_until(lambda: 1 / 0, timeout=0.5, interval=0.1, message="the impossible")
    assert topo.wait_until(lambda: 7, timeout=1) == 7


@pytest.mark.netns
def test_real_daemon_contract(topology: TopologyFactory) -> None:
    """The builder's contract with the real ``hyphal run``: flags accepted, API identity known
    up front, peers connected (one through a delay line)."""
    pytest.importorskip("hyphal.cli", reason="daemon CLI not present yet")
    topo = topology("A-B A-C:delay=20", start=True)
    a, b, c = (topo.node(n) for n in "ABC")
    for node in (a, b, c):
        admin = node.get("/api/v1/admin")
        assert admin["nodePubkey"] == node.public_key
        assert admin["nodeSubnet"] == str(node.subnet)

    def peer_count(node: Node) -> int:
        return len(node.get("/api/v1/admin/peers"))

    topo.wait_until(lambda: peer_count(a) == 2, message="A connected to B and C")
    topo.wait_until(lambda: peer_count(c) == 1, message="C accepted A through the delay line")
    assert "connected to" in topo.link("A", "C").proxy_log_tail(50)


@pytest.mark.netns
def test_serve_waits_for_the_port_and_fails_fast_with_the_programs_log(
    topology: TopologyFactory,
) -> None:
    topo: Topology = topology("A")
    a = topo.node("A")
    server = [sys.executable, "-m", "http.server", "8099", "--bind", "127.0.0.1"]
    proc = a.serve(server, "web.log", 8099)
    assert proc.poll() is None and a.listening(8099)
    broken = [sys.executable, "-c", "import sys; print('bad config line 3'); sys.exit(2)"]
    started = time.monotonic()
    with pytest.raises(TopologyError, match=r"(?s)exited with 2 before listening on 8098.*line 3"):
        a.serve(broken, "broken.log", 8098, timeout=60)
    assert time.monotonic() - started < 30  # it did not sit out the timeout
    with pytest.raises(TopologyError, match="not installed"):
        a.serve(["no-such-server-program"], "none.log", 8097)
