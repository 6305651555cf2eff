"""A small synchronous client of the daemon's HTTP API, used by the CLI's client commands.

It checks the address before using it, finds the API token by itself (``$HYPHAL_API_TOKEN``, else
the file the daemon writes next to the default key file), and turns every transport failure or
non-hyphal answer into an :class:`ApiError` with a message for people: no httpx traceback, no raw
HTML page. ``ApiError.unreachable`` marks "no hyphal daemon answered there" (its own exit code).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from hyphal.config import (
    DEFAULT_API_ADDR,
    DEFAULT_CONFIG_FILE,
    ConfigError,
    load_config_file,
    parse_host_port,
)
from hyphal.identity import DEFAULT_KEY_FILE

API_ADDR_ENV = "HYPHAL_API_ADDR"
TOKEN_ENV = "HYPHAL_API_TOKEN"
TOKEN_FILE_ENV = "HYPHAL_API_TOKEN_FILE"
DEFAULT_TOKEN_FILE = DEFAULT_KEY_FILE.parent / "api_token"  # where `hyphal run` writes it
_ERROR_TEXT_LIMIT = 300


def default_api_addr() -> str:
    return os.environ.get(API_ADDR_ENV) or DEFAULT_API_ADDR


def bearer_headers(token: str | None) -> dict[str, str]:
    """The ``Authorization`` header for ``token`` (none without one): the daemon's API and the
    mapping services take the same bearer form."""
    return {"Authorization": f"Bearer {token}"} if token else {}


class ApiError(Exception):
    """The daemon answered with an error, or could not be reached; the message says which."""

    def __init__(self, message: str, status: int | None = None, unreachable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.unreachable = unreachable


def check_api_addr(api_addr: str, source: str = "--api-addr") -> tuple[str, int]:
    """``host:port`` of the API, or ApiError naming where the bad value came from."""
    try:
        return parse_host_port(api_addr, source)
    except ConfigError as exc:
        raise ApiError(str(exc), status=None) from None


def default_token_file() -> Path:
    """Where the daemon keeps its token: ``$HYPHAL_API_TOKEN_FILE``, else what the default
    config file says (``api_token_file``, or next to its ``key_file``), else next to the default
    key file."""
    env = os.environ.get(TOKEN_FILE_ENV)
    if env:
        return Path(env)
    try:
        if DEFAULT_CONFIG_FILE.is_file():
            config = load_config_file(DEFAULT_CONFIG_FILE)
            return config.api_token_file or config.key_file.parent / "api_token"
    except (ConfigError, OSError):
        pass
    return DEFAULT_TOKEN_FILE


def find_token(token_file: Path | None = None) -> str | None:
    """The bearer token: ``$HYPHAL_API_TOKEN``, else the daemon's token file if we may read it."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token.strip()
    path = token_file or default_token_file()
    try:
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def is_local_host(host: str) -> bool:
    """True if ``host`` is an address of this machine (we can bind a socket to it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
    except OSError:
        return False
    return True


def _visible(text: str) -> str:
    """An error body fit for one terminal line (no control characters, bounded length)."""
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text if len(text) <= _ERROR_TEXT_LIMIT else text[:_ERROR_TEXT_LIMIT] + "..."


class Client:
    def __init__(self, api_addr: str, timeout: float = 10.0, source: str | None = None) -> None:
        self.api_addr = api_addr
        where = source or (
            f"${API_ADDR_ENV}" if os.environ.get(API_ADDR_ENV) == api_addr else "--api-addr"
        )
        host, port = check_api_addr(api_addr, where)
        # The token file is this machine's daemon's secret: only ever sent to this machine.
        token = (os.environ.get(TOKEN_ENV) or "").strip() or (
            find_token() if is_local_host(host) else None
        )
        headers = bearer_headers(token)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._http = httpx.Client(
            base_url=f"http://{netloc}/api/v1", timeout=timeout, headers=headers
        )

    def _not_hyphal(self, detail: str) -> ApiError:
        return ApiError(
            f"{self.api_addr} does not answer like a hyphal daemon ({detail}); "
            f"is --api-addr (or ${API_ADDR_ENV}) the address 'hyphal run' was given?",
            unreachable=True,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(
                f"cannot reach the hyphal daemon at {self.api_addr}: is 'hyphal run' running? "
                f"(pick the address with --api-addr or ${API_ADDR_ENV})",
                unreachable=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise ApiError(
                f"the daemon at {self.api_addr} did not answer in time", unreachable=True
            ) from exc
        except httpx.HTTPError as exc:  # protocol errors: something that is not an HTTP server
            raise self._not_hyphal(type(exc).__name__) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> ApiError:
        status = response.status_code
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        if kind == "application/json":
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                return ApiError(_visible(body["error"]), status)
            if isinstance(body, dict) and "detail" in body:
                return ApiError(_visible(str(body["detail"])), status)
        if status == 404 and kind != "text/plain":
            return self._not_hyphal(f"HTTP 404 for {response.request.url.path}")
        if kind == "text/plain":
            return ApiError(_visible(response.text) or f"HTTP {status}", status)
        return self._not_hyphal(f"HTTP {status}, {kind or 'no content type'}")

    def json(self, response: httpx.Response) -> Any:
        """The JSON body of a successful answer, or ApiError if it is not JSON."""
        try:
            return response.json()
        except ValueError:
            raise self._not_hyphal("the answer is not JSON") from None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.json(self.request("GET", path, **kwargs))

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=body, **kwargs)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)

    @staticmethod
    def quote(segment: str) -> str:
        return quote(segment, safe="")
