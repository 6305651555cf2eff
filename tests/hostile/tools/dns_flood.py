"""Floods one DNS server with queries from one socket for a bounded time; prints a JSON summary.

Usage: dns_flood.py SERVER PORT SECONDS RATE NAME
Sends RATE queries per second (in batches every 10 ms) for SECONDS, reads every
reply that comes back, and reports how many were full answers and how many truncated (TC) slips.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time

import dns.flags
import dns.message


def main() -> None:
    server, port, seconds, rate, name = (
        sys.argv[1],
        int(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5],
    )
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    wire = dns.message.make_query(name, "AAAA").to_wire()
    sent = full = slipped = 0
    start = time.monotonic()
    end = start + seconds

    def drain() -> None:
        nonlocal full, slipped
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return
            reply = dns.message.from_wire(data)
            if reply.flags & dns.flags.TC:
                slipped += 1
            elif reply.answer:
                full += 1

    while (now := time.monotonic()) < end:
        due = int((now - start) * rate)
        while sent < due:
            try:
                sock.sendto(wire, (server, port))
            except BlockingIOError:
                break
            sent += 1
        drain()
        select.select([sock], [], [], 0.01)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        select.select([sock], [], [], 0.1)
        drain()
    took = time.monotonic() - start
    print(json.dumps({"sent": sent, "full": full, "slipped": slipped, "seconds": took}))


if __name__ == "__main__":
    main()
