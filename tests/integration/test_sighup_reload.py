"""SIGHUP reloads the config of a real `hyphal run` process (static peers), logs it, and refuses a
bad config with a log line while the daemon keeps running. Two daemons on loopback, no TUN."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyphal.testing.loopback import daemon_argv, free_port

STARTUP = 30.0  # generous on a shared 2-core machine; not a performance bound


class Daemon:
    def __init__(self, workdir: Path, name: str, config: str) -> None:
        self.port, self.api_port = free_port(), free_port()
        self.config = workdir / f"{name}.toml"
        self.config.write_text(config)
        self.log = workdir / f"{name}.log"
        argv = daemon_argv(workdir / f"{name}.key", self.port, self.api_port, config=self.config)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait(lambda: self.api("/admin") is not None, STARTUP, self)

    def api(self, path: str) -> Any:
        try:
            response = httpx.get(f"http://127.0.0.1:{self.api_port}/api/v1{path}", timeout=2)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def peer_endpoints(self) -> list[str]:
        rows = self.api("/admin/peers") or []
        return [row["endpoint"]["socketAddr"] for row in rows if row["type"] == "static"]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def hup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait(cond: Callable[[], bool], within: float, daemon: Daemon) -> None:
    end = time.monotonic() + within
    while not cond():
        if daemon.proc.poll() is not None:
            pytest.fail(f"daemon exited with {daemon.proc.returncode}:\n{daemon.text()}")
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s; log:\n{daemon.text()}")
        time.sleep(0.05)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    started: list[Daemon] = []
    try:
        b = Daemon(tmp_path, "b", "")
        started.append(b)
        a = Daemon(tmp_path, "a", "peers = []\n")
        started.append(a)
        yield a, b
    finally:
        for d in reversed(started):
            d.stop()


def test_sighup_adds_and_removes_peers_and_refuses_a_bad_config(
    daemons: tuple[Daemon, Daemon],
) -> None:
    a, b = daemons
    peer = f"127.0.0.1:{b.port}"
    assert a.peer_endpoints() == []

    a.config.write_text(f'peers = ["tcp://{peer}"]\n')
    a.hup()
    wait(lambda: a.peer_endpoints() == [peer], 10, a)
    wait(lambda: "SIGHUP: reloaded" in a.text(), 5, a)
    assert f"added: tcp://{peer}" in a.text()
    # The link really comes up: B sees A as an inbound peer.
    wait(lambda: any(row["type"] == "inbound" for row in b.api("/admin/peers") or []), 15, a)

    a.config.write_text("peers = [\n")  # not TOML
    a.hup()
    wait(lambda: "reload of" in a.text() and "refused" in a.text(), 5, a)
    assert "not valid TOML" in a.text()
    time.sleep(0.3)
    assert a.proc.poll() is None  # still running
    assert a.peer_endpoints() == [peer]  # with what it had

    a.config.write_text(f'peers = ["tcp://{peer}"]\ntcp_listen_prot = 1\n')  # a typo
    a.hup()
    wait(lambda: "unknown keys ['tcp_listen_prot']" in a.text(), 5, a)
    assert a.proc.poll() is None

    a.config.write_text("peers = []\n")
    a.hup()
    wait(lambda: a.peer_endpoints() == [], 10, a)
    wait(lambda: f"removed: tcp://{peer}" in a.text(), 5, a)
    assert "Traceback" not in a.text()
    a.stop()
    assert a.proc.returncode == 0


def test_sighup_follows_service_and_unwrap_tables(tmp_path: Path) -> None:
    web, chat, old_unwrap, new_unwrap = (free_port() for _ in range(4))

    def config(service: str, port: int, unwrap: int) -> str:
        return (
            f'[[service]]\nname = "{service}"\nport = {port}\n\n'
            f'[[unwrap]]\nlisten = "127.0.0.1:{unwrap}"\nbackend = "127.0.0.1:6668"\n'
            "transparent = false\n"
        )

    a = Daemon(tmp_path, "a", config("web", web, old_unwrap))
    try:

        def local() -> set[tuple[str, int, bool]]:
            rows = (a.api("/services") or {}).get("local", [])
            return {(r["name"], r["port"], r["fromConfig"]) for r in rows}

        def listening() -> list[str]:
            return [r["listen"] for r in (a.api("/ingress") or {}).get("listeners", [])]

        wait(lambda: local() == {("web", web, True)}, 10, a)
        assert listening() == [f"127.0.0.1:{old_unwrap}"]

        a.config.write_text(config("chat", chat, new_unwrap))
        a.hup()
        wait(lambda: local() == {("chat", chat, True)}, 10, a)
        wait(lambda: listening() == [f"127.0.0.1:{new_unwrap}"], 10, a)
        socket.create_connection(("127.0.0.1", new_unwrap), timeout=2).close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", old_unwrap), timeout=2)
        (line,) = [ln for ln in a.text().splitlines() if "SIGHUP: reloaded" in ln]
        assert f"services: adding chat tcp/{chat}; removing web tcp/{web}" in line, line
        assert f"ingress: opening 127.0.0.1:{new_unwrap}; closing 127.0.0.1:{old_unwrap}" in line
        assert "restart to apply" not in line, line
        assert "Traceback" not in a.text()
    finally:
        a.stop()
