"""A small synchronous client of the daemon's HTTP API, used by the CLI's client commands."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx

from hyphal.config import DEFAULT_API_ADDR

API_ADDR_ENV = "HYPHAL_API_ADDR"
TOKEN_ENV = "HYPHAL_API_TOKEN"


def default_api_addr() -> str:
    return os.environ.get(API_ADDR_ENV, DEFAULT_API_ADDR)


class ApiError(Exception):
    """The daemon answered with an error, or could not be reached; the message says which."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Client:
    def __init__(self, api_addr: str, timeout: float = 10.0) -> None:
        self.api_addr = api_addr
        headers = {}
        token = os.environ.get(TOKEN_ENV)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=f"http://{api_addr}/api/v1", timeout=timeout, headers=headers
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(
                f"cannot reach the hyphal daemon at {self.api_addr}: is 'hyphal run' running? "
                f"(pick the address with --api-addr or ${API_ADDR_ENV})"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ApiError(f"the daemon at {self.api_addr} did not answer in time") from exc
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise ApiError(message or f"HTTP {response.status_code}", response.status_code)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=body, **kwargs)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)

    @staticmethod
    def quote(segment: str) -> str:
        return quote(segment, safe="")
