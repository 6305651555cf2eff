"""Bulk receiver: one long poll for one big message; prints when it arrived and its SHA-256.

``python bench/clients/bulk_receiver.py json|raw``. Prints JSON with ``status``, ``t_headers``
(response headers read) and ``t1`` (body read; the client's own JSON / base64 decoding is
outside the clock), and for a 200 the payload's ``len`` and ``sha``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from typing import Any

from api import MODES, connect, receive_headers, received_payload, say_ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=MODES)
    args = parser.parse_args(argv)
    raw = args.mode == "raw"
    conn = connect(300)
    say_ready()
    conn.request("GET", "/api/v1/messages?timeout=240", headers=receive_headers(raw))
    response = conn.getresponse()
    t_headers = time.monotonic()
    body = response.read()
    t1 = time.monotonic()
    out: dict[str, Any] = {"status": response.status, "t1": t1, "t_headers": t_headers}
    if response.status == 200:
        payload = received_payload(body, raw)
        out.update(len=len(payload), sha=hashlib.sha256(payload).hexdigest())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
