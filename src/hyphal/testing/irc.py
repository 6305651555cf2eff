"""Real IRC daemons and a raw-socket IRC client for the ingress tests.

:func:`ngircd_config` writes an ngircd config that listens on one address and port and never
resolves names (so WHOIS shows the peer address exactly as the server saw it); :func:`whois_host`
registers a nick over a plain socket and returns the host WHOIS reports for it.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

WHOIS_USER = re.compile(r" 311 \S+ (\S+) (\S+) (\S+) ")


def ngircd_config(path: Path, listen: str, port: int, name: str = "irc.hyphal.test") -> Path:
    path.write_text(
        f"""[Global]
Name = {name}
Info = hyphal ingress test server
Listen = {listen}
Ports = {port}
[Limits]
MaxConnectionsIP = 0
[Options]
DNS = no
Ident = no
PAM = no
[SSL]
"""
    )
    return path


def whois_host(
    host: str, port: int, nick: str, timeout: float = 15.0, preamble: bytes = b""
) -> str:
    """Connect, register ``nick``, WHOIS it, and return the host field of the 311 reply
    (``preamble``: bytes sent first, e.g. a PROXY header when playing the sender)."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(preamble + f"NICK {nick}\r\nUSER {nick} 0 * :hyphal test\r\n".encode())
        buf = b""
        asked = False
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
            text = buf.decode("utf-8", "replace")
            for line in text.split("\r\n"):
                if line.startswith("PING "):
                    sock.sendall(b"PONG " + line[5:].encode() + b"\r\n")
            if not asked and f" 001 {nick} " in text:
                sock.sendall(f"WHOIS {nick}\r\n".encode())
                asked = True
            match = WHOIS_USER.search(text)
            if match and match.group(1) == nick:
                sock.sendall(b"QUIT :done\r\n")
                return match.group(3)
    raise AssertionError(f"no WHOIS reply for {nick} from {host}:{port}: {buf[-500:]!r}")
