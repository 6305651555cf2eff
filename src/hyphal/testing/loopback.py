"""A hyphal daemon on loopback, for tests, benchmarks and the demo: a free TCP port and the
``hyphal run`` command line (no TUN, everything on 127.0.0.1)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_argv(
    key_file: Path,
    port: int,
    api_port: int,
    *,
    config: Path | None = None,
    metrics_port: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """``python -m hyphal run --no-tun`` listening for links on 127.0.0.1:``port`` (0: any) with
    its API on 127.0.0.1:``api_port``, then ``extra``."""
    argv = [
        sys.executable,
        "-m",
        "hyphal",
        "run",
        "--no-tun",
        "-k",
        str(key_file),
        "--listen-address",
        "127.0.0.1",
        "-t",
        str(port),
        "--api-addr",
        f"127.0.0.1:{api_port}",
    ]
    if config is not None:
        argv += ["-c", str(config)]
    if metrics_port is not None:
        argv += ["--metrics-api-address", f"127.0.0.1:{metrics_port}"]
    return argv + list(extra)
