"""Every error path of the first-use review ends in a message and a documented exit code, never a
Python traceback; under --json the error is one JSON object on stderr (docs/cli.md).

The CLI runs in-process through ``hyphal.cli.main`` (the console script's entry point, which owns
error handling), against real sockets: nothing listening, a plain HTTP server, a TCP server that
hangs up. ``hyphal run`` paths that start the daemon run as subprocesses.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyphal.cli import main
from hyphal.config import read_network_key
from hyphal.testing.loopback import free_port

SRC = str(Path(__file__).resolve().parents[3] / "src")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.out, captured.err


def json_error(err: str) -> dict[str, object]:
    body = json.loads(err)
    assert set(body) == {"error", "kind", "exitCode"}, body
    return body  # type: ignore[no-any-return]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain_http() -> Iterator[str]:
    """A web server that is not hyphal (404 HTML for every API path)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A TCP server that reads the request and closes without answering."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.recv(1000)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join()
    sock.close()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HYPHAL_API_ADDR", "HYPHAL_API_TOKEN", "HYPHAL_API_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("as_json", [False, True])
def test_no_daemon_is_exit_3(capsys: pytest.CaptureFixture[str], as_json: bool) -> None:
    addr = f"127.0.0.1:{free_port()}"
    flags = ["--json"] if as_json else []
    for command in (["status"], ["ip"], ["peers", "list"], ["routes", "selected"], ["stats"]):
        code, out, err = run_cli(capsys, *command, "--api-addr", addr, *flags)
        assert code == 3, command
        assert out == ""
        if as_json:
            body = json_error(err)
            assert body["kind"] == "unreachable" and body["exitCode"] == 3
        else:
            assert "cannot reach the hyphal daemon" in err and "is 'hyphal run' running?" in err


@pytest.mark.parametrize("server", ["plain_http", "hangs_up"])
def test_a_server_that_is_not_hyphal_gets_a_clean_message(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, server: str
) -> None:
    addr = request.getfixturevalue(server)
    code, out, err = run_cli(capsys, "peers", "list", "--api-addr", addr)
    assert code == 3 and out == ""
    assert "does not answer like a hyphal daemon" in err
    assert "<html" not in err.lower() and "<!doctype" not in err.lower()
    code, _, err = run_cli(capsys, "status", "--json", "--api-addr", addr)
    assert code == 3 and json_error(err)["kind"] == "unreachable"


def test_a_bad_api_address_is_a_usage_error_naming_its_source(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(capsys, "peers", "list", "--api-addr", "bogus")
    assert code == 2 and "--api-addr" in err and "'bogus'" in err
    monkeypatch.setenv("HYPHAL_API_ADDR", "bogus")
    code, _, err = run_cli(capsys, "peers", "list")
    assert code == 2 and "$HYPHAL_API_ADDR" in err
    code, _, err = run_cli(capsys, "status", "--json")
    assert code == 2 and json_error(err)["kind"] == "usage"


def test_usage_errors_are_exit_2_and_json_under_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "status", "--bogus")
    assert code == 2 and "--bogus" in err
    code, out, err = run_cli(capsys, "status", "--bogus", "--json")
    assert code == 2 and out == "" and json_error(err)["exitCode"] == 2
    code, _, err = run_cli(capsys, "ping", "--json")  # missing DEST
    assert code == 2 and json_error(err)["kind"] == "usage"


def test_ping_outside_the_overlay_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "ping", "2001:db8::1", "--api-addr", f"127.0.0.1:{free_port()}")
    assert code == 2 and "not in 400::/7" in err
    code, _, err = run_cli(capsys, "ping", "2001:db8::1", "--json")
    assert code == 2 and "not in 400::/7" in str(json_error(err)["error"])


def test_peer_without_scheme_suggests_the_uri(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "peers", "add", "127.0.0.1:9651")
    assert code == 2 and "did you mean tcp://127.0.0.1:9651" in err
    code, out, _ = run_cli(capsys, "peers", "add", "127.0.0.1:9651", "--json")
    assert code == 2
    [result] = json.loads(out)["results"]
    assert result["ok"] is False and "tcp://127.0.0.1:9651" in result["error"]
    code, _, err = run_cli(capsys, "run", "--no-tun", "--peers", "127.0.0.1:9651")
    assert code == 2 and "--peers" in err and "did you mean tcp://127.0.0.1:9651" in err
    assert "unexpected extra argument" not in err


def test_errors_name_the_flag_typed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "run", "--no-tun", "--tun-mtu", "1000")
    assert code == 2 and "--tun-mtu must be 1280..65535" in err
    code, _, err = run_cli(capsys, "run", "--no-tun", "--max-links", "0")
    assert code == 2 and "--max-links" in err
    config = tmp_path / "bad.toml"
    config.write_text("tun_mtu = 1000\n")
    code, _, err = run_cli(capsys, "run", "--no-tun", "-c", str(config))
    assert code == 2 and "tun_mtu" in err and str(config) in err


def test_unreadable_default_config_is_a_message(tmp_path: Path) -> None:
    """As the review did: a user who cannot even stat the default config path (HOME=/root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    home = tmp_path / "home"
    (home / ".config" / "hyphal").mkdir(parents=True)
    (home / ".config" / "hyphal" / "hyphal.toml").write_text("")
    home.chmod(0o700)  # root's, so nobody cannot look inside
    tmp_path.chmod(0o755)
    proc = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         sys.executable, "-m", "hyphal", "run", "--no-tun", "-k", "/tmp/x-never.key"],
        env={"HOME": str(home), "PYTHONPATH": SRC, "PATH": os.environ["PATH"]},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2
    assert "cannot look at the default config file" in proc.stderr and "-c FILE" in proc.stderr


def test_wrong_listen_address_is_not_called_a_port_in_use(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hyphal", "run", "--no-tun", "-k", str(tmp_path / "k"),
         "-t", "0", "--api-addr", "127.0.0.1:0", "--listen-address", "192.0.2.99"],
        env={**os.environ, "PYTHONPATH": SRC, "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    assert "--listen-address" in proc.stderr and "address of this machine" in proc.stderr
    assert "port" not in proc.stderr.split("ERROR")[-1].split("(")[0]


def test_help_shows_defaults_and_no_bool_metavar(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0
    for default in ("[default: 9651]", "[default: 127.0.0.1:8989]", "[default: hyphal0]"):
        assert default in " ".join(out.split()), default
    assert "<bool>" not in out and "-c is --count in 'hyphal ping'" in " ".join(out.split())
    code, out, _ = run_cli(capsys, "message", "send", "--help")
    assert code == 0 and "[default: 300" in " ".join(out.split()) and "<bool>" not in out
    code, out, _ = run_cli(capsys, "sim", "--help")
    assert code == 0 and "[default: 10]" in " ".join(out.split())
    code, out, _ = run_cli(capsys, "routes", "selected", "--help")
    assert code == 0 and "at least 10 (1 ms) per hop" in " ".join(out.split())


def test_version_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    from hyphal import __version__

    for args in (["--version"], ["-V"], ["version"]):
        code, out, _ = run_cli(capsys, *args)
        assert (code, out.strip()) == (0, f"hyphal {__version__}")
    code, out, _ = run_cli(capsys, "version", "--json")
    assert json.loads(out) == {"version": __version__}


def test_generate_keys_does_not_create_directories(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "dir" / "x.key"
    code, _, err = run_cli(capsys, "generate-keys", "-k", str(target))
    assert code == 1 and "does not exist" in err
    assert not (tmp_path / "missing").exists()
    code, out, _ = run_cli(capsys, "generate-keys", "-k", str(tmp_path / "x.key"), "--json")
    assert code == 0 and set(json.loads(out)) == {"keyFile", "publicKey", "address", "subnet"}


def test_generate_network_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "net.key"
    code, out, _ = run_cli(capsys, "generate-network-key", str(path), "--json")
    assert code == 0 and json.loads(out) == {"networkKeyFile": str(path)}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_network_key(path)
    assert len(key) == 32
    code, _, err = run_cli(capsys, "generate-network-key", str(path))
    assert code == 1 and "--force" in err and read_network_key(path) == key
    code, _, _ = run_cli(capsys, "generate-network-key", str(path), "--force")
    assert code == 0 and read_network_key(path) != key
    code, _, err = run_cli(capsys, "generate-network-key", str(tmp_path / "no" / "k"))
    assert code == 1 and not (tmp_path / "no").exists()


def test_config_check_and_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    net = tmp_path / "net.key"
    assert main(["generate-network-key", str(net)]) == 0
    good = tmp_path / "good.toml"
    good.write_text(
        f'tcp_listen_port = 9700\nnetwork_name = "fleet"\nnetwork_key_file = "{net}"\n'
        'peers = ["tcp://192.0.2.7:9651"]\n'
    )
    capsys.readouterr()
    code, out, _ = run_cli(capsys, "config", "check", str(good), "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = run_cli(capsys, "config", "check", str(good))
    assert code == 0 and "ok" in out

    bad = tmp_path / "bad.toml"
    bad.write_text("tcp_listen_prot = 1\n")
    code, _, err = run_cli(capsys, "config", "check", str(bad))
    assert code == 2 and "tcp_listen_prot" in err
    code, _, err = run_cli(capsys, "config", "check", str(bad), "--json")
    assert code == 2 and json_error(err)["kind"] == "usage"
    code, _, err = run_cli(capsys, "config", "check", str(tmp_path / "none.toml"))
    assert code == 2 and "does not exist" in err

    code, out, _ = run_cli(capsys, "config", "show", "-c", str(good), "--json", "-t", "9800")
    shown = json.loads(out)
    assert code == 0 and shown["configFile"] == str(good)
    assert shown["config"]["tcpListenPort"] == 9800 and shown["sources"]["tcpListenPort"] == "flag"
    assert shown["config"]["networkName"] == "fleet" and shown["sources"]["networkName"] == "file"
    assert shown["config"]["networkKeyFile"] == str(net)  # the path, never the key
    assert net.read_text().strip() not in out
    assert shown["sources"]["maxLinks"] == "default"
    code, out, _ = run_cli(capsys, "config", "show", "-c", str(good))
    assert code == 0 and "tcp_listen_port = 9700" in out and "# file" in out
    code, _, err = run_cli(capsys, "config", "show", "-c", str(good), "--tun-mtu", "5")
    assert code == 2 and "--tun-mtu" in err
