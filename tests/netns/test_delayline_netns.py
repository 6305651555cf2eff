"""The delay line between namespaces: the topology puts it in the dialer's namespace.

Real tools as workload: a Python echo client/server pair, curl against ``http.server`` and
iperf3, all through the proxy over a veth. Lower-bound timing checks only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from hyphal.testing.netlab import Link, Node, Topology, TopologyFactory

pytestmark = pytest.mark.netns

ECHO_SERVER = textwrap.dedent("""
    import socket, sys, threading
    srv = socket.create_server((sys.argv[1], int(sys.argv[2])), family=socket.AF_INET6)
    print("echo listening", flush=True)
    def serve(conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
""")

ECHO_CLIENT = textwrap.dedent("""
    import hashlib, json, os, socket, sys, threading, time
    host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.create_connection((host, port), timeout=60)
    rtts = []
    for i in range(5):
        msg = f"ping {i}".encode()
        t = time.monotonic(); s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(100)
        rtts.append(time.monotonic() - t)
        assert got == msg, got
    payload = os.urandom(size)
    sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
    sender.start()
    chunks = []
    while data := s.recv(1 << 20):
        chunks.append(data)
    sender.join()
    back = b"".join(chunks)
    print(json.dumps({"rtts": rtts, "intact": back == payload, "len": len(back)}))
""")


def _wait_listening(topo: Topology, node: Node, log: str, text: str) -> None:
    topo.wait_until(
        lambda: text in (node.dir / log).read_text(), timeout=30, message=f"{text!r} in {log}"
    )


def _start_echo(topo: Topology, link: Link) -> None:
    host, port = link.target
    link.b.popen([sys.executable, "-c", ECHO_SERVER, host, str(port)], "echo.log")
    _wait_listening(topo, link.b, "echo.log", "echo listening")


def test_delay_line_between_namespaces_adds_latency(topology: TopologyFactory) -> None:
    topo: Topology = topology("A-B:up=30,down=20 A-C")
    slow, fast = topo.link("A", "B"), topo.link("A", "C")
    assert slow.delayed and not fast.delayed and fast.proxy is None
    assert slow.proxy is not None and slow.proxy.poll() is None
    assert slow.peer_uri == f"tcp://[{slow.addr6_a}]:{slow.proxy_port}"
    assert fast.peer_uri == f"tcp://[{fast.addr6_b}]:9651"
    # The proxy runs inside A's namespace, not in the host's.
    assert str(slow.proxy_port) in topo.node("A").exec(["ss", "-ltnH"]).stdout
    for link in (slow, fast):
        _start_echo(topo, link)
    a = topo.node("A")
    results = {}
    for link in (slow, fast):
        host, port = link.dial_endpoint
        out = a.exec(
            [sys.executable, "-c", ECHO_CLIENT, host, str(port), str(8 << 20)],
            timeout=120,
            check=True,
        )
        results[link.b.name] = json.loads(out.stdout)
    assert results["B"]["intact"] and results["B"]["len"] == 8 << 20
    assert results["C"]["intact"]
    assert min(results["B"]["rtts"]) >= 0.050  # up 30 ms + down 20 ms


def test_curl_through_delay_line(topology: TopologyFactory, tmp_path: Path) -> None:
    topo: Topology = topology("A-B:delay=25")
    link = topo.link("A", "B")
    www = link.b.dir / "www"
    www.mkdir()
    blob = os.urandom(3 << 20)
    (www / "blob.bin").write_bytes(blob)
    host, port = link.target
    link.b.popen(
        [
            sys.executable,
            "-u",
            "-m",
            "http.server",
            str(port),
            "--bind",
            host,
            "--directory",
            str(www),
        ],
        "http.log",
    )
    _wait_listening(topo, link.b, "http.log", "Serving HTTP")
    phost, pport = link.dial_endpoint
    out = link.a.exec(
        [
            "curl",
            "-sS",
            "-g",
            "-o",
            str(tmp_path / "got.bin"),
            "-w",
            "%{http_code} %{time_connect} %{time_starttransfer}",
            f"http://[{phost}]:{pport}/blob.bin",
        ],
        timeout=120,
        check=True,
    )
    code, _, ttfb = out.stdout.split()
    assert code == "200"
    assert float(ttfb) >= 0.050  # request (25 ms up) + response (25 ms down)
    got = (tmp_path / "got.bin").read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()


def test_iperf3_through_delay_line(topology: TopologyFactory) -> None:
    topo: Topology = topology("A-B:delay=5,max_buffer=262144")
    link = topo.link("A", "B")
    host, port = link.target
    link.b.popen(["iperf3", "-s", "-B", host, "-p", str(port), "-1"], "iperf3.log")
    topo.wait_until(lambda: link.b.listening(port), message="iperf3 server listening")
    phost, pport = link.dial_endpoint
    out = link.a.exec(
        ["iperf3", "-c", phost, "-p", str(pport), "-t", "2", "-J"], timeout=60, check=True
    )
    report = json.loads(out.stdout)
    assert report["end"]["sum_received"]["bytes"] > 0
    assert "connected to" in link.proxy_log_tail(50)
