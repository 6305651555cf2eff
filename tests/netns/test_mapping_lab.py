"""The mapping worker in the namespace lab (hyphal.testing.maplab), with real probes.

One lab for the module: routers R1 (ECMP over R2a/R2b, hash policy 1), R3 (ICMP rate-limited),
S (silent), R4, the target host T, and two workers W1 ("fra", region eu) and W2 ("sgp", region
ap, a client-role hyphal node that only dials out), joined by hyphal daemons with TUNs.

Shown here: the lab is closed (no route out); Paris traces over ICMP, UDP and TCP, IPv4 and
IPv6, unprivileged and raw, match the lab's true hop list with the silent hop as timeouts;
Paris holds one path per flow id where classic UDP shows the ECMP diamond; a target list built
to break the rate caps cannot (counted by T's kernel); bogons and opt-outs never reach the
wire; ``hyphal map trace --from`` runs a trace on the other region's worker over the overlay.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyphal.testing.maplab import LAB_ALLOW, TARGET4, TARGET6, MapLab, local_trace_argv
from hyphal.testing.netlab import Topology
from hyphal.testing.netlab_pytest import netns_unavailable

pytestmark = pytest.mark.netns
ALLOW = list(LAB_ALLOW)
PY = [sys.executable, "-m", "hyphal"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Topology, MapLab]]:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    topo = Topology.build(
        "W2-W1",
        start=True,
        tun=True,
        workdir=tmp_path_factory.mktemp("maplab"),
        node_args={
            "W1": ["--name", "fra", "--region", "eu"],
            "W2": ["--name", "sgp", "--region", "ap", "--role", "client"],
        },
    )
    maplab = None
    try:
        maplab = MapLab.build({"W1": topo.node("W1").ns, "W2": topo.node("W2").ns})
        yield topo, maplab
    finally:
        if maplab is not None:
            maplab.close()
        topo.close()


def run_in(
    lab: MapLab, node: str, argv: list[str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", lab.ns(node), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def popen_in(lab: MapLab, node: str, argv: list[str], **popen: Any) -> subprocess.Popen[Any]:
    """``argv`` started in ``node``'s namespace (:func:`run_in` without waiting)."""
    return subprocess.Popen(["ip", "netns", "exec", lab.ns(node), *argv], **popen)


def trace_json(
    lab: MapLab, target: str, *extra: str, node: str = "W1", user: str | None = None
) -> dict[str, Any]:
    argv = local_trace_argv(target, *extra)
    if user is not None:
        argv = [
            "setpriv",
            f"--reuid={user}",
            f"--regid={user}",
            "--clear-groups",
            "--inh-caps=-all",
            *argv,
        ]
    result = run_in(lab, node, argv)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def start_store(
    lab: MapLab, db: Path, port: int, token: Path, **popen: Any
) -> subprocess.Popen[Any]:
    """``hyphal map store`` in W1's namespace on 127.0.0.1:PORT, SQLite files under ``db``."""
    return popen_in(
        lab,
        "W1",
        [
            *(*PY, "map", "store", "--db", str(db)),
            *("--listen", "127.0.0.1", "--port", str(port), "--token-file", str(token)),
        ],
        **popen,
    )


def routers(lab: MapLab, result: dict[str, Any]) -> list[set[str | None]]:
    """Per TTL, the lab nodes that answered (None for a timeout)."""
    return [
        {lab.owner(r["from"]) if "from" in r else None for r in hop["replies"]}
        for hop in result["hops"]
    ]


def test_the_lab_has_no_way_out(lab: tuple[Topology, MapLab]) -> None:
    _topo, maplab = lab
    maplab.assert_closed()
    for router in ("R1", "R3", "T"):
        unreachable = maplab.exec(router, ["ip", "route", "get", "8.8.8.8"], check=False)
        assert unreachable.returncode != 0


@pytest.mark.parametrize(
    ("target", "proto", "raw"),
    [
        (TARGET4, "icmp", False),
        (TARGET4, "icmp", True),
        (TARGET4, "udp", False),
        (TARGET4, "tcp", False),
        (TARGET6, "icmp", False),
        (TARGET6, "icmp", True),
        (TARGET6, "udp", False),
        (TARGET6, "tcp", False),
    ],
)
def test_paris_trace_matches_the_true_hops(
    lab: tuple[Topology, MapLab], target: str, proto: str, raw: bool
) -> None:
    _topo, maplab = lab
    result = trace_json(maplab, target, "--proto", proto, "-q", "2", *(["--raw"] if raw else []))
    truth = maplab.true_hops()
    seen = routers(maplab, result)
    assert len(seen) == len(truth), result["hops"]
    for ttl, (got, want) in enumerate(zip(seen, truth, strict=True), start=1):
        if want == {"S"}:
            assert got == {None}, f"the silent hop answered at TTL {ttl}: {result['hops']}"
            assert all(r == {"timeout": True} for r in result["hops"][ttl - 1]["replies"])
        else:
            answered = got - {None}  # one lost reply of two is the network's right
            assert len(answered) == 1 and answered <= want, f"TTL {ttl}: {got} not in {want}"
    assert result["stopReason"] == "completed" and result["destinationReplied"]
    assert result["af"] == (6 if ":" in target else 4) and result["proto"] == proto
    first = next(r for r in result["hops"][0]["replies"] if "from" in r)
    assert first["replyTtl"] == 64 and first["icmpType"] == (3 if ":" in target else 11)
    assert first["quotedTtl"] == (1 if raw and proto == "icmp" else None)


def test_unprivileged_user_traces_with_ping_sockets_and_recverr(
    lab: tuple[Topology, MapLab],
) -> None:
    _topo, maplab = lab
    for proto in ("icmp", "udp"):
        result = trace_json(maplab, TARGET4, "--proto", proto, user="65534")
        assert result["destinationReplied"], result
        assert routers(maplab, result)[0] == {"R1"}


def test_paris_one_path_per_flow_classic_shows_the_diamond(lab: tuple[Topology, MapLab]) -> None:
    _topo, maplab = lab
    second_hops: set[str] = set()
    for flow in range(1, 13):
        result = trace_json(
            maplab, TARGET4, "--proto", "udp", "--flow-id", str(flow), "-q", "2", "-m", "3"
        )
        hops = result["hops"]
        answered = [{r["from"] for r in h["replies"] if "from" in r} for h in hops]
        assert all(len(a) <= 1 for a in answered), f"flow {flow} saw several paths: {hops}"
        r2 = maplab.owner(next(iter(answered[1])))
        if answered[2]:  # R3 rate-limits its errors: it may stay silent for a flow
            # R3 answers from the interface the probe came in on: the same branch as hop 2
            r3 = next(iter(answered[2]))
            assert r3 == ("198.18.3.2" if r2 == "R2a" else "198.18.4.2"), (flow, r2, r3)
        assert result["srcPort"] == 40000 + flow and result["dstPort"] == 33434
        second_hops.add(str(r2))
    assert second_hops == {"R2a", "R2b"}, "12 flows should not all hash to one branch"
    classic = trace_json(maplab, TARGET4, "--proto", "udp", "--classic", "-q", "10", "-m", "3")
    diamond = {maplab.owner(r["from"]) for r in classic["hops"][1]["replies"] if "from" in r}
    assert diamond == {"R2a", "R2b"}, classic["hops"]
    assert result["flowId"] == 12 and classic["params"]["paris"] is False


def test_the_rate_limited_hop_shows_as_loss_not_as_the_end(lab: tuple[Topology, MapLab]) -> None:
    """Ten probes at R3 within half a second (our 20 pps cap), from W2 (Linux limits ICMP
    errors per destination: W2 has its own bucket at R3, one error per 500 ms after a burst of
    6): some are answered, the rest recorded as timeouts, and the trace goes on."""
    _topo, maplab = lab
    result = trace_json(maplab, TARGET4, "--proto", "icmp", "-q", "10", "-w", "0.1", node="W2")
    r3 = result["hops"][2]["replies"]
    assert len(r3) == 10
    answered = [r for r in r3 if "from" in r]
    assert 1 <= len(answered) < 10, r3
    assert {maplab.owner(r["from"]) for r in answered} == {"R3"}
    assert result["destinationReplied"] and result["stopReason"] == "completed"


def test_rate_caps_hold_and_filters_drop_before_the_wire(
    lab: tuple[Topology, MapLab], tmp_path: Path
) -> None:
    _topo, maplab = lab
    bogons = ["10.0.0.1", "127.0.0.1", "192.168.1.1", "224.0.0.1", "169.254.1.1", "::1", "fe80::1"]
    opted_out = [f"2001:db8:ff:1::{i:x}" for i in range(2, 20)]
    same_prefix = [f"198.19.0.{i}" for i in range(1, 41)]  # one /24, again and again
    hostile = []
    for i, target in enumerate(same_prefix * 2):  # bogons and opt-outs mixed in early
        hostile.append(target)
        if i < len(bogons):
            hostile.append(bogons[i])
        if i < len(opted_out):
            hostile.append(opted_out[i])
    (tmp_path / "targets.txt").write_text("\n".join(hostile) + "\n")
    (tmp_path / "optout.txt").write_text("2001:db8:ff:1::/64  # the v6 targets: never probed\n")
    before4 = maplab.count("T", "IcmpInEchos")
    before6 = maplab.count("T", "Icmp6InEchos")
    argv = [
        *PY,
        "map",
        "worker",
        "--targets",
        str(tmp_path / "targets.txt"),
        "--type",
        "ping",
        "--outbox",
        str(tmp_path / "outbox"),
        "--listen",
        "none",
        "--json",
        *ALLOW,
        "--opt-out",
        str(tmp_path / "optout.txt"),
        "--pps",
        "50",
        "--prefix-pps",
        "2",
        "--prefix-burst",
        "3",
        "--cooldown",
        "0",
        "--concurrency",
        "32",
        "--name",
        "fra",
        "--region",
        "eu",
        "--api-addr",
        "127.0.0.1:1",
    ]
    started = time.monotonic()
    proc = popen_in(
        maplab,
        "W1",
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    elapsed = time.monotonic() - started
    echoes4 = maplab.count("T", "IcmpInEchos") - before4
    echoes6 = maplab.count("T", "Icmp6InEchos") - before6
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    # the cap: 2 pkt/s into 198.19.0.0/24 plus a burst of 3, however the targets are ordered
    assert 0 < echoes4 <= 3 + 2 * elapsed, (echoes4, elapsed)
    assert echoes4 > 3, "past the burst, the worker kept sending at the capped rate"
    assert echoes6 == 0, "an opted-out prefix reached the wire"
    assert all(r["target"].startswith("198.19.0.") for r in results)
    for refused in ("10.0.0.1", "127.0.0.1", "224.0.0.1", "2001:db8:ff:1::2"):
        assert refused in err, err[-2000:]
    sent = sum(r["ping"]["sent"] for r in results)
    assert sent <= echoes4  # every counted probe reached T: nothing left the lab elsewhere


def test_map_trace_from_the_other_region_over_the_overlay(
    lab: tuple[Topology, MapLab], tmp_path: Path
) -> None:
    topo, _maplab = lab
    w1, w2 = topo.node("W1"), topo.node("W2")
    topo.wait_until(lambda: len(w2.get("/api/v1/members")) == 2, timeout=30)
    worker = w1.popen(
        [
            *PY,
            "map",
            "worker",
            "--feeder",
            "http://[::1]:1",
            "--outbox",
            str(tmp_path / "ob1"),
            *ALLOW,
            "--pps",
            "50",
            "--prefix-pps",
            "5",
        ],
        "map-worker.log",
    )
    try:

        def announced() -> bool:
            rows = w2.get("/api/v1/members")
            return any("map-worker" in (r.get("tags") or {}) for r in rows)

        topo.wait_until(announced, timeout=30)
        # by region, from the client-role node that only dials out
        report = w2.cli("map", "trace", TARGET4, "--from", "eu", "-q", "2", "-w", "0.4", timeout=60)
        assert report.returncode == 0, report.stderr + (tmp_path / "x").as_posix()
        lines = report.stdout.splitlines()
        assert "fra" in lines[1] and "Paris" in lines[1]
        assert any("198.18.0.1" in line for line in lines)  # R1, as W1 sees it
        assert any("???" in line for line in lines)  # the silent hop
        assert "destination answered" in lines[-1]
        by_name = w2.cli(
            "map", "trace", TARGET6, "--from", "fra", "--json", "-q", "1", "-w", "0.4", timeout=60
        )
        assert by_name.returncode == 0, by_name.stderr
        result = json.loads(by_name.stdout)
        assert (
            result["worker"] == "fra" and result["region"] == "eu" and result["destinationReplied"]
        )
        assert result["workerKey"] == w1.public_key
    finally:
        worker.terminate()
        worker.wait(timeout=10)


def test_a_worker_cut_off_from_the_store_delivers_everything_exactly_once(
    lab: tuple[Topology, MapLab], tmp_path: Path
) -> None:
    """The store is down while the worker measures; results wait in the outbox (on disk), go
    to the store when it comes up, and each is stored once."""
    _topo, maplab = lab
    token = tmp_path / "token"
    token.write_text("lab-token-" + "x" * 24 + "\n")
    token.chmod(0o600)
    port = 9690
    targets = [f"198.19.{net}.{i}" for i in range(2, 14) for net in (0, 1)]
    worker = popen_in(
        maplab,
        "W1",
        [
            *PY,
            "map",
            "worker",
            *[arg for t in targets for arg in ("--target", t)],
            "--type",
            "ping",
            "--count",
            "1",
            "--wait",
            "0.5",
            "--store",
            f"http://127.0.0.1:{port}",
            "--token-file",
            str(token),
            "--outbox",
            str(tmp_path / "outbox"),
            "--listen",
            "none",
            "--once",
            "--json",
            *ALLOW,
            "--prefix-pps",
            "20",
            "--prefix-burst",
            "5",
            "--pps",
            "50",
            "--cooldown",
            "0",
            "--name",
            "fra",
            "--region",
            "eu",
            "--api-addr",
            "127.0.0.1:1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = None
    try:
        produced: list[dict[str, Any]] = []
        assert worker.stdout is not None
        while len(produced) < len(targets):
            line = worker.stdout.readline()
            assert line, f"the worker ended early: {worker.stderr.read() if worker.stderr else ''}"
            if line.startswith("{"):
                produced.append(json.loads(line))
        time.sleep(1.5)  # at least one failed shipping attempt while the store is away
        assert worker.poll() is None, "the worker must wait for the store, not give up"
        files = list((tmp_path / "outbox").glob("outbox-*.sqlite"))
        assert files, "results wait on disk"
        store = start_store(
            maplab,
            tmp_path / "store",
            port,
            token,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        _out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err[-2000:]
        assert "store unreachable" in err
        query = run_in(
            maplab,
            "W1",
            [
                "curl",
                "-sS",
                "-H",
                f"Authorization: Bearer {token.read_text().strip()}",
                f"http://127.0.0.1:{port}/results?worker=fra&limit=1000",
            ],
        )
        stored = json.loads(query.stdout)
        rows = stored["results"] if isinstance(stored, dict) else stored
        ids = [r["id"] for r in rows]
        assert sorted(ids) == sorted(r["id"] for r in produced), (len(ids), len(produced))
        assert len(set(ids)) == len(ids) == len(targets)
        lost = [
            (r["target"], r["ping"], r.get("error")) for r in produced if r["ping"]["received"] != 1
        ]
        assert not lost, lost  # T answered every one
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if store is not None:
            store.terminate()
            store.wait(timeout=10)


def test_map_trace_through_the_store_found_by_service_name(
    lab: tuple[Topology, MapLab], tmp_path: Path
) -> None:
    """`hyphal map trace --store svc:map-store --from fra` from the other region's client-role
    node: the store advertised itself as hyphal service map-store on W1, the worker (which only
    dials out) found it by that name too, claimed the request, ran it and shipped the result
    back. When the store stops, it withdraws the service."""
    topo, maplab = lab
    w1, w2 = topo.node("W1"), topo.node("W2")
    token = tmp_path / "token"
    token.write_text("lab-token-" + "y" * 24 + "\n")
    token.chmod(0o600)
    store = popen_in(
        maplab,
        "W1",
        [
            *(*PY, "map", "store", "--db", str(tmp_path / "store")),
            *("--port", "9691", "--token-file", str(token)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = popen_in(
        maplab,
        "W1",
        [
            *PY,
            "map",
            "worker",
            "--feeder",
            "http://[::1]:1",
            "--store",
            "svc:map-store",
            "--token-file",
            str(token),
            "--outbox",
            str(tmp_path / "outbox"),
            "--listen",
            "none",
            *ALLOW,
            "--name",
            "fra",
            "--region",
            "eu",
            "--prefix-pps",
            "5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def found_from_w2() -> bool:
            assert store.poll() is None, store.stdout.read() if store.stdout else ""
            return w2.api("GET", "/api/v1/services/map-store/choose").status == 200

        topo.wait_until(found_from_w2, timeout=30, message="W2's directory names the store")
        chosen = w2.api("GET", "/api/v1/services/map-store/choose").data
        assert chosen["publicKey"] == w1.public_key and chosen["port"] == 9691, chosen
        report = w2.cli(
            *("map", "trace", TARGET4, "--store", "svc:map-store", "--from", "fra"),
            *("-q", "1", "-w", "0.4", "--proto", "udp"),
            timeout=90,
        )
        assert report.returncode == 0, report.stderr
        lines = report.stdout.splitlines()
        assert "fra" in lines[1] and "Paris udp flow 1" in lines[1], lines
        assert any("198.18.0.1" in line for line in lines) and "destination answered" in lines[-1]
    finally:
        worker.terminate()
        store.terminate()
        worker.wait(timeout=15)
        store.wait(timeout=15)
    local = w1.api("GET", "/api/v1/services").data["local"]
    assert not [i for i in local if i.get("name") == "map-store"], local


def test_feeder_store_and_worker_find_each_other_by_name_and_hops_grow_the_pool(
    lab: tuple[Topology, MapLab], tmp_path: Path
) -> None:
    """The whole plane by service names: the feeder and the store on W1 advertise themselves,
    the store sends hops to svc:map-feeder, and a worker on the client-role node in the other
    region takes targets from svc:map-feeder and ships to svc:map-store. Its trace's hops past
    its own neighbourhood become feeder targets, and `hyphal map status` (no address given)
    reports them."""
    topo, maplab = lab
    w1, w2 = topo.node("W1"), topo.node("W2")
    token = tmp_path / "token"
    token.write_text("lab-token-" + "z" * 24 + "\n")
    token.chmod(0o600)
    sources = tmp_path / "sources.txt"
    sources.write_text(f"{TARGET4}/32\n")
    hyphal_map = (*PY, "map")
    services = [
        popen_in(
            maplab,
            "W1",
            [
                *(
                    *hyphal_map,
                    "feeder",
                    "--sources",
                    str(sources),
                    "--db",
                    str(tmp_path / "feeder.db"),
                ),
                *(*ALLOW, "--port", "9692", "--token-file", str(token)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        popen_in(
            maplab,
            "W1",
            [
                *(
                    *hyphal_map,
                    "store",
                    "--db",
                    str(tmp_path / "store"),
                    "--feeder",
                    "svc:map-feeder",
                ),
                *("--port", "9691", "--token-file", str(token), "--feeder-token-file", str(token)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
    ]
    worker = None
    try:

        def named(service: str, port: int) -> bool:
            for proc in services:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            answer = w2.api("GET", f"/api/v1/services/{service}/choose")
            return answer.status == 200 and answer.data["port"] == port

        topo.wait_until(lambda: named("map-feeder", 9692) and named("map-store", 9691), timeout=30)
        worker = w2.popen(
            [
                *(*PY, "map", "worker", "--feeder", "svc:map-feeder", "--store", "svc:map-store"),
                *("--token-file", str(token), "--outbox", str(tmp_path / "outbox"), *ALLOW),
                *("--listen", "none", "--pps", "50", "--prefix-pps", "5", "--attempts", "1"),
            ],
            "map-worker.log",
        )

        def status() -> dict[str, Any]:
            out = w2.cli("map", "status", "--feeder", "svc:map-feeder", "--json")
            assert out.returncode == 0, out.stderr
            return dict(json.loads(out.stdout))

        def grown() -> dict[str, Any] | None:
            assert worker is not None and worker.poll() is None, w2.log_tail()
            body = status()
            return body if body["results"] >= 1 and (body["hopsDiscovered"] or 0) >= 2 else None

        body = topo.wait_until(grown, timeout=60, message="a result and the hops it found")
        assert body["targetsServed"] >= 1, body
        assert [w["name"] for w in body["workers"]] == ["sgp"], body  # W2's member name
    finally:
        for proc in [*services, *([worker] if worker else [])]:
            proc.terminate()
        for proc in [*services, *([worker] if worker else [])]:
            proc.wait(timeout=15)
    names = {i.get("name") for i in w1.api("GET", "/api/v1/services").data["local"]}
    assert not names & {"map-feeder", "map-store"}, names
