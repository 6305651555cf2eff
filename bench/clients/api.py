"""What the message-bench clients share: the node's API inside this namespace and its two paths.

The clients run by path inside a namespace (``python bench/clients/<name>.py ...``), so this
module is imported as ``api``. ``json`` mode carries the payload base64 in a JSON body; ``raw``
mode sends and receives ``application/octet-stream``.
"""

from __future__ import annotations

import base64
import http.client
import json
import sys

API_HOST, API_PORT = "127.0.0.1", 8989
OCTET_STREAM = "application/octet-stream"
MODES = ("json", "raw")


def connect(timeout: float) -> http.client.HTTPConnection:
    """One keep-alive connection to the API of the node in this namespace."""
    return http.client.HTTPConnection(API_HOST, API_PORT, timeout=timeout)


def receive_headers(raw: bool) -> dict[str, str]:
    """Headers of a long-poll ``GET /api/v1/messages`` in the given mode."""
    return {"accept": OCTET_STREAM} if raw else {}


def received_payload(body: bytes, raw: bool) -> bytes:
    """The message payload of a 200 answer to a long poll."""
    return body if raw else base64.b64decode(json.loads(body)["payload"])


def say_ready() -> None:
    """Tell the bench (which watches the log) that the client is about to poll."""
    print("ready", file=sys.stderr, flush=True)
