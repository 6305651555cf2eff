"""The request guard in front of every HTTP app of the daemon (the API and Prometheus metrics).

The local API serves its operator's tools, not web pages the operator happens to visit:

* ``Host`` must name loopback (``localhost``, a loopback address) or the configured bind address;
  when bound to a wildcard address, any IP literal. A DNS-rebinding page sends its own name.
* A request a browser marks as coming from another site (``Sec-Fetch-Site: cross-site`` or
  ``same-site``), or whose ``Origin`` is not the API's own, is refused.
* A request body must be JSON (``application/json`` or ``*/*+json``) or raw bytes
  (``application/octet-stream``); anything else, or no content type, is 415. This shuts out the
  "simple" requests a page may send cross-site without asking (forms, ``text/plain``).
* Bound beyond loopback, every request needs ``Authorization: Bearer <token>``.

Every refusal is a JSON ``{"error": ...}`` saying why. The guard is a plain ASGI wrapper, so it
never buffers or touches the bodies it lets through.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("hyphal.api")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CROSS_SITE = frozenset({"cross-site", "same-site"})
OCTET_STREAM = "application/octet-stream"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _canonical(host: str) -> str:
    """An IP literal in its one canonical spelling (``fd00:0::1`` -> ``fd00::1``); names as given."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def split_host(authority: str) -> str:
    """The host part of a ``Host`` header value (``[v6]:port``, ``name:port``, ``name``)."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    if authority.count(":") == 1:
        return authority.partition(":")[0]
    return authority


def is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class RequestGuard:
    """ASGI middleware refusing requests that are not from the operator's own tools."""

    def __init__(self, app: ASGIApp, bind_host: str, token: str | None = None) -> None:
        self.app = app
        bind = _canonical(split_host(bind_host))
        self._bind = bind
        self._any_ip = _is_wildcard(bind)
        self._expected = None if token is None else f"Bearer {token}".encode()

    def _host_allowed(self, host: str) -> bool:
        return (
            is_loopback(host) or _canonical(host) == self._bind or (self._any_ip and _is_ip(host))
        )

    def refusal(self, method: str, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, reason) when the request must be refused, None when it may pass."""
        host_header = headers.get("host", "")
        if not self._host_allowed(split_host(host_header)):
            return 403, (
                f"refused: Host {host_header!r} is not this API's address "
                "(use 127.0.0.1, localhost or the configured bind address)"
            )
        fetch_site = headers.get("sec-fetch-site", "").lower()
        if fetch_site in _CROSS_SITE:
            return 403, f"refused: the browser marks this request {fetch_site}"
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host_header.lower():
            return 403, f"refused: requests from web pages ({origin}) are not served"
        if self._expected is not None:
            given = headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, self._expected):
                return 401, "missing or wrong bearer token (set HYPHAL_API_TOKEN)"
        has_body = headers.get("content-length", "0") not in ("", "0") or (
            "transfer-encoding" in headers
        )
        if method in _BODY_METHODS and has_body:
            ctype = headers.get("content-type", "")
            media = ctype.split(";", 1)[0].strip().lower()
            if not (is_json_type(ctype) or media == OCTET_STREAM):
                shown = ctype or "none"
                return 415, (
                    f"unsupported content type {shown!r}: send application/json "
                    f"(or {OCTET_STREAM} where raw bytes are accepted)"
                )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _decode_headers(scope["headers"])
        refused = self.refusal(scope["method"], headers)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, reason = refused
        log.info("refused %s %s: %s", scope["method"], scope.get("path", ""), reason)
        body = json.dumps({"error": reason}).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            response_headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


def _decode_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    # A repeated header keeps its first value; latin-1 maps every byte, so decoding never fails.
    headers: dict[str, str] = {}
    for name, value in raw:
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers
