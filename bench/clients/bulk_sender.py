"""Bulk sender: POSTs one random message of ``SIZE`` bytes, then polls its delivery status.

``python bench/clients/bulk_sender.py DST_PK SIZE json|raw``. Prints JSON with ``t0`` (POST
started), ``t_posted`` (answer read), the payload's ``sha``, the API's ``answer`` and, once the
status poll (every 20 ms) sees ``received``, ``read`` or ``aborted``, ``t_received`` and
``final``: the bench splits API ingress, bus transfer and API egress with them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import time
from typing import Any

from api import MODES, OCTET_STREAM, connect

FINAL_STATES = ("received", "read", "aborted")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dst")
    parser.add_argument("size", type=int)
    parser.add_argument("mode", choices=MODES)
    args = parser.parse_args(argv)
    payload = os.urandom(args.size)
    sha = hashlib.sha256(payload).hexdigest()
    url = "/api/v1/messages?deadline=600"
    if args.mode == "raw":
        url, body, ctype = url + "&dst_pk=" + args.dst, payload, OCTET_STREAM
    else:
        # the client's own JSON + base64 encoding is outside the clock
        body = (
            b'{"dst": {"pk": "'
            + args.dst.encode()
            + b'"}, "payload": "'
            + base64.b64encode(payload)
            + b'"}'
        )
        ctype = "application/json"
    del payload
    conn = connect(300)
    t0 = time.monotonic()
    conn.request("POST", url, body, {"content-type": ctype})
    response = conn.getresponse()
    answer = response.read()
    t_posted = time.monotonic()
    out: dict[str, Any] = {
        "status": response.status,
        "t0": t0,
        "t_posted": t_posted,
        "sha": sha,
        "answer": answer.decode(),
    }
    if response.status == 201:
        path = "/api/v1/messages/status/" + json.loads(answer)["id"]
        while time.monotonic() - t0 < 300:
            conn.request("GET", path)
            state = json.loads(conn.getresponse().read())["state"]
            if state in FINAL_STATES:
                out["t_received"] = time.monotonic()
                out["final"] = state
                break
            time.sleep(0.02)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
