"""`hyphal map feeder`, `hyphal map store` and `hyphal map status` as real processes on
loopback: a worker's round trip (targets, results, hops back), token access, and the status
report people read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mapping_results import ATLAS, trace

from hyphal.cli import main
from hyphal.testing.loopback import free_port


def hyphal(*args: str) -> list[str]:
    return [sys.executable, "-m", "hyphal", *args]


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HYPHAL_API_ADDR": "127.0.0.1:1"}


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"{url} exited: {proc.stdout.read().decode() if proc.stdout else ''}"
            )
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    sources = tmp_path / "cloud-provider-ip-addresses"
    sources.mkdir()
    (sources / "lab.txt").write_text("198.18.0.0/22\n10.0.0.0/8\n")
    optout = tmp_path / "optout.txt"
    optout.write_text("198.18.3.0/24\n")
    token = tmp_path / "token"
    token.write_text("lab-token-" + os.urandom(8).hex() + "\n")
    fport, sport = free_port(), free_port()
    feeder = subprocess.Popen(
        hyphal(
            "map",
            "feeder",
            "--sources",
            str(sources),
            "--optout",
            str(optout),
            "--allow",
            "198.18.0.0/15",
            "--db",
            str(tmp_path / "feeder.db"),
            "--listen",
            "127.0.0.1",
            "--port",
            str(fport),
            "--token-file",
            str(token),
        ),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    furl = f"http://127.0.0.1:{fport}"
    procs = [feeder]
    try:
        store = subprocess.Popen(
            hyphal(
                "map",
                "store",
                "--db",
                str(tmp_path / "store"),
                "--feeder",
                furl,
                "--feeder-token-file",
                str(token),
                "--listen",
                "127.0.0.1",
                "--port",
                str(sport),
                "--token-file",
                str(token),
                "--rotate-size",
                "1MB",
            ),
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs.append(store)
        surl = f"http://127.0.0.1:{sport}"
        wait_up(furl, feeder)  # both start at once; the store's hops wait for the feeder
        wait_up(surl, store)
        yield furl, surl, token.read_text().strip()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def test_a_worker_round_trip_and_status(
    services: tuple[str, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    furl, surl, token = services
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(furl + "/targets", params={"worker": "sg1"}).status_code == 403
    got = httpx.get(furl + "/targets", params={"worker": "sg1", "n": 10}, headers=auth).json()
    assert got["cycleId"] == "c1"
    ips = [t["ip"] for t in got["targets"]]
    assert len(ips) == 3 and not any(ip.startswith(("198.18.3.", "10.")) for ip in ips)
    results = [trace(target=ip, path=("198.18.0.1", "198.18.0.2", "198.19.7.1")) for ip in ips]
    r = httpx.post(surl + "/results", json={"worker": "sg1", "results": results}, headers=auth)
    assert r.json()["accepted"] == 3
    # The store passes the hop on; the feeder's pool grows by one (dedupe across 3 traces).
    deadline = time.monotonic() + 20
    while httpx.get(furl + "/stats", headers=auth).json()["hopTargets"] < 1:
        assert time.monotonic() < deadline, "the hop never reached the feeder"
        time.sleep(0.1)
    info = httpx.get(surl + "/service-info", headers=auth).json()
    assert info["serviceType"] == "map-store" and "sqlite" in info["capabilities"]
    assert httpx.get(surl + "/ready", headers=auth).json()["ready"] is True
    tokfile = tmp_path / "tok"
    tokfile.write_text(token)
    common = [
        "map",
        "status",
        "--store",
        surl,
        "--feeder",
        furl,
        "--token-file",
        str(tokfile),
        "--api-addr",
        "127.0.0.1:1",
    ]
    assert main([*common, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["workers"][0]["name"] == "sg1" and body["workers"][0]["reachable"] is None
    assert body["results"] == 3 and body["targetsServed"] == 3 and body["hopsDiscovered"] == 1
    assert body["workers"][0]["probesPerSecond"] > 0
    assert main(common) == 0
    human = capsys.readouterr().out
    assert "sg1" in human and "hops discovered 1" in human
    assert "reachability unknown" in human
    assert main(["map", "status", "--store", surl]) == 1
    assert "403" in capsys.readouterr().err
    # RIPE Atlas data loads beside ours, once.
    atlas = tmp_path / "atlas.ndjson"
    atlas.write_text("\n".join(json.dumps(x) for x in (ATLAS, {**ATLAS, "dst_addr": None})))
    imp = ["map", "import", "--store", surl, "--token-file", str(tokfile), "--atlas", str(atlas)]
    assert main([*imp, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["accepted"], report["duplicates"], len(report["skipped"])) == (1, 0, 1)
    assert main(imp) == 0
    assert "imported 0 results (1 already stored, 1 skipped)" in capsys.readouterr().out
    recent = httpx.get(surl + "/recent", params={"ip": "198.18.9.1"}, headers=auth).json()
    assert [r["worker"] for r in recent] == ["atlas-6001"]


def test_refuses_a_public_address_and_an_empty_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lst = tmp_path / "l.txt"
    lst.write_text("10.0.0.0/8\n")
    db = ["--db", str(tmp_path / "f.db")]
    assert main(["map", "feeder", "--sources", str(lst), *db, "--listen", "127.0.0.1"]) == 2
    assert "no target left" in capsys.readouterr().err
    lst.write_text("198.18.0.0/24\n")
    assert (
        main(
            [
                "map",
                "feeder",
                "--sources",
                str(lst),
                "--allow",
                "198.18.0.0/15",
                *db,
                "--listen",
                "8.8.8.8",
            ]
        )
        == 2
    )
    assert "--public" in capsys.readouterr().err
    assert main(["map", "store", "--db", str(tmp_path / "s"), "--api-addr", "127.0.0.1:1"]) == 1
    assert "--listen" in capsys.readouterr().err
