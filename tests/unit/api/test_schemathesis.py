"""Schema-driven tests of the HTTP API: schemathesis against a real daemon on loopback.

One real ``hyphal run --no-tun`` daemon (free loopback port, peer listener on loopback, no
peers) serves the API; the schemathesis CLI then generates requests from

* the API's own OpenAPI schema (``/api/v1/openapi.json``): no 5xx, every response body matches
  the schema, and every status code / content type the daemon answers with is documented;
* Mycelium's schema (``../shared/reference/mycelium-api.yaml`` or ``$MYCELIUM_API_SPEC``),
  restricted to the endpoints hyphal implements: no 5xx and responses that match Mycelium's
  documented shapes (a Mycelium client can parse them).

Excluded or constrained, and why:

* ``POST /api/v1/admin/peers`` is excluded: it makes the daemon dial whatever host a generated
  endpoint names, which must never leave loopback.
* ``POST /api/v1/ingress`` and ``POST /api/v1/ingress/unwrap`` are excluded: they open listeners
  on whatever address a generated body names, and the unwrap (as root) adds policy routing rules
  to the machine (tests/unit/api/test_ingress_api.py covers them on loopback).
* ``/api/v1/admin/proxy*`` (Mycelium only) is not implemented by hyphal.
* Long polls: a ``before_call`` hook clamps the ``timeout`` (GET /messages) and ``reply_timeout`` (POST /messages)
  query parameters to 1 s. The API accepts up to 3,600 s by design (a long poll may legitimately
  wait that long), so without the clamp one generated value would stall the run.

Examples per operation are bounded (``HYPHAL_SCHEMATHESIS_EXAMPLES``, default 12) so the file runs
in well under two minutes.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hyphal.testing.loopback import daemon_argv, free_port

ROOT = Path(__file__).resolve().parents[3]
# The repository's own virtualenv, else whichever schemathesis is on PATH.
_LOCAL = ROOT / ".venv" / "bin" / "schemathesis"
SCHEMATHESIS = str(_LOCAL) if _LOCAL.exists() else shutil.which("schemathesis")
# The shared/ folder sits beside the repository (in CI too).
MYCELIUM_SPEC = Path(
    os.environ.get("MYCELIUM_API_SPEC", ROOT.parent / "shared" / "reference" / "mycelium-api.yaml")
)
EXAMPLES = int(os.environ.get("HYPHAL_SCHEMATHESIS_EXAMPLES", "12"))

HOOKS = '''
"""Clamp long-poll parameters so a generated value cannot stall the run."""
from typing import Any

import schemathesis

LONG_POLL_PARAMS = ("timeout", "reply_timeout")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # before_call runs in every phase (examples, coverage, fuzzing); map_query does not.
    query = case.query
    if not isinstance(query, dict):
        return
    for key in LONG_POLL_PARAMS:
        value = query.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and value > 1:
            query[key] = 1
        elif isinstance(value, str):
            try:
                if float(value) > 1:
                    query[key] = "1"
            except ValueError:
                pass
'''

#: Checks on the API's own schema: it is ours, so it must describe every answer exactly.
OWN_SHAPE_CHECKS = "not_a_server_error,response_schema_conformance"
OWN_DOC_CHECKS = "status_code_conformance,content_type_conformance,response_headers_conformance"
#: Checks on Mycelium's schema: no 5xx and documented shapes. Status codes are not checked:
#: Mycelium's spec leaves most input errors (400/404/422) undocumented.
MYCELIUM_CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


def wait_for_api(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/api/v1/admin", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"daemon API not ready after {timeout}s:\n{log.read_text()[-3000:]}")


class Daemon:
    """A real daemon on loopback and the files around it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "daemon.log"
        self.hooks_dir = workdir / "hooks"
        self.hooks_dir.mkdir()
        (self.hooks_dir / "hyphal_st_hooks.py").write_text(HOOKS)
        argv = daemon_argv(workdir / "priv_key.bin", 0, self.port)
        env = {**os.environ, "HOME": str(workdir), "XDG_DATA_HOME": str(workdir)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def schemathesis(self, location: str, checks: str, *extra: str) -> tuple[int, str]:
        """Run the schemathesis CLI; return its exit code and output."""
        argv = [
            str(SCHEMATHESIS),
            "run",
            location,
            "--checks",
            checks,
            "--max-examples",
            str(EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",  # schemathesis' own generator is not reliably thread-safe here
            "--request-timeout",
            "10",
            "--no-shrink",
            "--seed",
            "4",
            "--suppress-health-check",
            "all",
            "--exclude-name",
            "POST /api/v1/admin/peers",
            "--exclude-name",
            "POST /api/v1/ingress",
            "--exclude-name",
            "POST /api/v1/ingress/unwrap",
            "--output-truncate",
            "false",
            *extra,
        ]
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "hyphal_st_hooks",
            "PYTHONPATH": str(self.hooks_dir),
            "NO_COLOR": "1",
        }
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=300, env=env, cwd=self.workdir
        )
        output = result.stdout + result.stderr
        if self.proc.poll() is not None:
            output += f"\n!!! daemon died ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}"
        return result.returncode, output


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    if SCHEMATHESIS is None:
        pytest.skip("schemathesis is not installed")
    node = Daemon(tmp_path_factory.mktemp("schemathesis"))
    try:
        wait_for_api(node.base, node.proc, node.log)
        yield node
    finally:
        node.stop()


def assert_clean(code: int, output: str, daemon: Daemon) -> None:
    assert daemon.proc.poll() is None, output
    assert code == 0, output[-20000:]
    assert "Network Error" not in output, output[-20000:]  # e.g. a stalled long poll


def test_own_schema_never_5xx_and_bodies_match(daemon: Daemon) -> None:
    code, output = daemon.schemathesis(daemon.base + "/api/v1/openapi.json", OWN_SHAPE_CHECKS)
    assert_clean(code, output, daemon)


def test_own_schema_documents_every_status_code_and_content_type(daemon: Daemon) -> None:
    code, output = daemon.schemathesis(daemon.base + "/api/v1/openapi.json", OWN_DOC_CHECKS)
    assert_clean(code, output, daemon)


def patched_mycelium_spec(workdir: Path) -> Path:
    """Mycelium's spec with its one defect fixed: ``DELETE /api/v1/admin/peers/{endpoint}``
    uses ``{endpoint}`` without declaring the path parameter (schemathesis rejects that)."""
    yaml = importlib.import_module("yaml")  # PyYAML (a schemathesis dependency; no stubs)
    spec: dict[str, Any] = yaml.safe_load(MYCELIUM_SPEC.read_text())
    operation = spec["paths"]["/api/v1/admin/peers/{endpoint}"]["delete"]
    params = operation.setdefault("parameters", [])
    if not any(p.get("name") == "endpoint" for p in params):
        params.append(
            {"name": "endpoint", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    out = workdir / "mycelium-api.json"
    out.write_text(json.dumps(spec))
    return out


def test_mycelium_schema_never_5xx_and_shapes_match(daemon: Daemon) -> None:
    if not MYCELIUM_SPEC.exists():
        pytest.skip(f"Mycelium's API spec not found at {MYCELIUM_SPEC}")
    code, output = daemon.schemathesis(
        str(patched_mycelium_spec(daemon.workdir)),
        MYCELIUM_CHECKS,
        "--url",
        daemon.base,
        "--exclude-path-regex",
        "^/api/v1/admin/proxy",
    )
    assert_clean(code, output, daemon)


def test_daemon_still_serves_after_the_runs(daemon: Daemon) -> None:
    with urllib.request.urlopen(daemon.base + "/api/v1/admin", timeout=5) as response:
        assert response.status == 200


# Explicit hostile examples the generators are unlikely to hit: a well-formed 64-hex public key
# that is not a usable X25519 key (all zeros is a low-order point).
LOW_ORDER_KEY = "00" * 32


def post_json(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def test_ping_to_a_low_order_public_key_is_a_4xx_not_500(daemon: Daemon) -> None:
    code, body = post_json(
        daemon.base + "/api/v1/admin/ping", {"dst": {"pk": LOW_ORDER_KEY}, "timeout": 1}
    )
    assert 400 <= code < 500, (code, body)


def test_message_to_a_low_order_public_key_is_rejected_up_front(daemon: Daemon) -> None:
    code, body = post_json(
        daemon.base + "/api/v1/messages", {"dst": {"pk": LOW_ORDER_KEY}, "payload": "aGk="}
    )
    assert code == 400, (code, body)


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_oversized_message_body_is_refused_without_buffering_it(daemon: Daemon) -> None:
    """A body far over the message cap (128 MiB -> ~171 MiB of base64) must get 413 without the
    daemon buffering, parsing and decoding all of it (peak RSS must not grow by the body size)."""
    import http.client

    payload_chars = 200 * 1024 * 1024  # base64 of a 150 MiB message
    head = b'{"dst": {"pk": "' + b"11" * 32 + b'"}, "payload": "'
    tail = b'"}'
    before = peak_rss_kb(daemon.proc.pid)
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    conn.putrequest("POST", "/api/v1/messages")
    conn.putheader("content-type", "application/json")
    conn.putheader("content-length", str(len(head) + payload_chars + len(tail)))
    conn.endheaders()
    block = b"A" * (1024 * 1024)
    try:
        conn.send(head)
        for _ in range(payload_chars // len(block)):
            conn.send(block)
        conn.send(tail)
    except OSError:
        pass  # the server may close early once it has refused the body: that is fine
    status = conn.getresponse().status
    conn.close()
    grown_mb = (peak_rss_kb(daemon.proc.pid) - before) / 1024
    assert status == 413, status
    assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB for a refused body"
