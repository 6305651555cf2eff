"""Bearer-token protection for an API bound beyond loopback.

On loopback the API is open to local processes (as Mycelium's is). Bound anywhere else, every
request must carry ``Authorization: Bearer <token>``; the token is generated on first start,
stored with mode 0600 next to the key file, and its path is logged with how to use it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from pathlib import Path

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

log = logging.getLogger("hyphal.api")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_or_create_token(path: Path) -> str:
    """The API token stored at ``path``, created (mode 0600) when missing."""
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    log.warning("created API token file %s", path)
    return token


class BearerTokenMiddleware(BaseHTTPMiddleware):
    """Rejects requests without the right bearer token with 401 and a JSON error."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        super().__init__(app)
        self._expected = f"Bearer {token}".encode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self._expected):
            return JSONResponse(
                status_code=401,
                content={"error": "missing or wrong bearer token (set HYPHAL_API_TOKEN)"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await call_next(request)
