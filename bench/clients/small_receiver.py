"""Small-message receiver: long-polls ``COUNT`` messages and prints their one-way latencies.

``python bench/clients/small_receiver.py COUNT json|raw``; each payload starts with the sender's
``CLOCK_MONOTONIC`` (network namespaces share it) as a big-endian double. Prints one JSON list
of latencies in seconds.
"""

from __future__ import annotations

import argparse
import json
import struct
import time

from api import MODES, connect, receive_headers, received_payload, say_ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int)
    parser.add_argument("mode", choices=MODES)
    args = parser.parse_args(argv)
    raw = args.mode == "raw"
    conn = connect(60)
    lat: list[float] = []
    say_ready()
    while len(lat) < args.count:
        conn.request("GET", "/api/v1/messages?timeout=20", headers=receive_headers(raw))
        response = conn.getresponse()
        body = response.read()
        t1 = time.monotonic()
        if response.status != 200:
            break
        (t0,) = struct.unpack_from("!d", received_payload(body, raw))
        lat.append(t1 - t0)
    print(json.dumps(lat))


if __name__ == "__main__":
    main()
