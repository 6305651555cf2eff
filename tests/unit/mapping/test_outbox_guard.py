"""The worker's outbox (rotation, restart, acknowledged deletes, rejects) and target guard."""

from __future__ import annotations

import secrets
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from hyphal.mapping.worker.guard import TargetGuard, TargetRefused
from hyphal.mapping.worker.outbox import Outbox


def result(n: int) -> dict[str, Any]:
    return {"id": secrets.token_hex(16), "type": "ping", "n": n, "pad": "x" * 2000}


def test_rotates_at_a_small_size_and_removes_drained_files(tmp_path: Path) -> None:
    box = Outbox(tmp_path, max_file_bytes=64 * 1024)
    items = [result(i) for i in range(200)]
    for item in items:
        assert box.add(item)
    assert not box.add(items[0])  # idempotent on the id
    assert box.rotations >= 3 and len(box.files()) == box.rotations + 1
    assert len(box) == 200
    first = box.peek(50)
    assert [r["n"] for r in first] == list(range(50))  # oldest first, across files
    assert box.delete([r["id"] for r in first] + ["not-an-id"]) == 50
    for _ in range(10):
        batch = box.peek(100)
        if not batch:
            break
        box.delete([r["id"] for r in batch])
    assert len(box) == 0 and len(box.files()) == 1  # closed files went when drained


def test_survives_a_restart_and_deletes_only_acknowledged(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    items = [result(i) for i in range(10)]
    for item in items:
        box.add(item)
    box.delete([items[3]["id"]])
    box.close()
    again = Outbox(tmp_path)
    assert len(again) == 9
    assert {r["id"] for r in again.peek(100)} == {i["id"] for i in items} - {items[3]["id"]}


def test_rejected_results_are_set_aside(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    bad, good = result(1), result(2)
    box.add(bad)
    box.add(good)
    assert box.reject({bad["id"]: "workerKey must be lowercase hex"}) == 1
    assert [r["id"] for r in box.peek(10)] == [good["id"]] and box.rejected() == 1


def test_full_when_every_file_is_full(tmp_path: Path) -> None:
    box = Outbox(tmp_path, max_file_bytes=16 * 1024, max_files=2)
    for i in range(40):
        box.add(result(i))
        if box.full():
            break
    assert box.full()


@pytest.mark.parametrize(
    "target",
    [
        "10.1.2.3",
        "192.168.0.1",
        "127.0.0.1",
        "224.0.0.5",
        "0.1.2.3",
        "100.64.0.1",
        "198.18.0.1",
        "2001:db8::1",
        "fe80::1",
        "::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "fc00::1",
        "2002::1",
        "junk",
    ],
)
def test_guard_refuses_bogons(target: str) -> None:
    with pytest.raises(TargetRefused):
        TargetGuard().check(target)


def test_guard_exceptions_and_opt_out() -> None:
    guard = TargetGuard(
        [ip_network("198.18.0.0/15")], [ip_network("198.18.5.0/24"), ip_network("8.8.8.0/24")]
    )
    assert guard.check("198.18.0.1") == "198.18.0.1"
    assert guard.check("::ffff:198.18.0.1") == "198.18.0.1"
    assert guard.check("9.9.9.9") == "9.9.9.9"
    for refused in ("198.18.5.7", "8.8.8.8"):
        with pytest.raises(TargetRefused, match="opt-out"):
            guard.check(refused)
