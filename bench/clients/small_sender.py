"""Small-message sender: POSTs ``COUNT`` messages of ``SIZE`` bytes, one every ``INTERVAL`` s.

``python bench/clients/small_sender.py DST_PK COUNT SIZE INTERVAL json|raw``; each payload starts
with ``CLOCK_MONOTONIC`` at the start of its POST. Prints JSON ``{"codes": {status: n},
"post": [seconds per POST round trip]}``.
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import time

from api import MODES, OCTET_STREAM, connect


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dst")
    parser.add_argument("count", type=int)
    parser.add_argument("size", type=int)
    parser.add_argument("interval", type=float)
    parser.add_argument("mode", choices=MODES)
    args = parser.parse_args(argv)
    conn = connect(60)
    codes: dict[int, int] = {}
    post: list[float] = []
    for _ in range(args.count):
        t0 = time.monotonic()
        payload = struct.pack("!d", t0) + bytes(max(0, args.size - 8))
        if args.mode == "raw":
            conn.request(
                "POST",
                "/api/v1/messages?dst_pk=" + args.dst,
                payload,
                {"content-type": OCTET_STREAM},
            )
        else:
            body = json.dumps(
                {"dst": {"pk": args.dst}, "payload": base64.b64encode(payload).decode()}
            )
            conn.request("POST", "/api/v1/messages", body, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        post.append(time.monotonic() - t0)
        codes[response.status] = codes.get(response.status, 0) + 1
        time.sleep(args.interval)
    print(json.dumps({"codes": codes, "post": post}))


if __name__ == "__main__":
    main()
