"""The common FastAPI frame of every mapping service (feeder, store): the four standard endpoints,
access control, overload shedding and the bind-address rule.

- ``/health`` (liveness, open to any caller that reaches the socket), ``/ready`` (runs the
  service's dependency checks: database, feeder, store; 503 naming the failing one),
  ``/metrics`` (Prometheus text) and ``/service-info`` (``serviceType``, ``version``, ``name``,
  ``instanceId``, ``capabilities``; the snake_case names ping_service uses are there too).
- Access: a request passes with ``Authorization: Bearer <token>``, or when its source address
  is in the overlay /64 of a mesh member whose roles (or ``map-role`` tag) include one of the
  service's allowed roles. Members come from the local hyphal API (``/api/v1/members``), cached
  for a few seconds; an unreachable API fails closed (403 with what to do).
- Overload: at most ``max_inflight`` requests at once; beyond that 429 with ``Retry-After``.
- Bind: the node's overlay address by default (:func:`overlay_address`); a public address only
  when the operator says so (:func:`check_bind`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from hyphal import __version__
from hyphal.client import bearer_headers
from hyphal.identity import OVERLAY_NETWORK

log = logging.getLogger("hyphal.mapping")

ReadyCheck = Callable[[], Awaitable[None]]
"""A dependency check: returns when the dependency is usable, raises saying why not."""

OPEN_PATHS = frozenset({"/health"})
MEMBER_CACHE_SECONDS = 5.0
MAX_MEMBERS = 100_000
ROLE_TAG = "map-role"


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    service_type: str
    """``map-store`` or ``map-feeder``."""
    name: str
    """This instance's name (the member name by default)."""
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    capabilities: tuple[str, ...] = ()
    version: str = __version__

    def to_json(self) -> dict[str, Any]:
        caps = list(self.capabilities)
        return {
            "serviceType": self.service_type,
            "version": self.version,
            "name": self.name,
            "instanceId": self.instance_id,
            "capabilities": caps,
            # ping_service's spelling, for its existing clients
            "service_type": self.service_type,
            "instance_id": self.instance_id,
        }


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: a member (name, key) or a token holder."""

    name: str
    public_key: str | None = None
    via: str = "member"


class MemberResolver:
    """Maps an overlay source address to a member (name, key, roles, tags) by asking the local
    hyphal API, cached for :data:`MEMBER_CACHE_SECONDS`."""

    def __init__(
        self,
        api_url: str,
        token: str | None = None,
        fetch: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self._fetch = fetch or self._fetch_http
        self._clock = clock
        self._by_prefix: dict[int, dict[str, Any]] = {}
        self._at = -1e18
        self._lock = asyncio.Lock()

    async def _fetch_http(self) -> list[dict[str, Any]]:
        headers = bearer_headers(self.token)
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"{self.api_url}/api/v1/members", headers=headers)
            response.raise_for_status()
            rows = response.json()
        if not isinstance(rows, list):
            raise ValueError("the hyphal API's member list is not a list")
        return [r for r in rows[:MAX_MEMBERS] if isinstance(r, dict)]

    async def refresh(self) -> None:
        rows = await self._fetch()
        table: dict[int, dict[str, Any]] = {}
        for row in rows:
            try:
                address = ipaddress.IPv6Address(str(row.get("address")))
            except ValueError:
                continue
            if row.get("left"):
                continue
            table[int(address) >> 64] = row
        self._by_prefix = table
        self._at = self._clock()

    async def lookup(self, source: str) -> dict[str, Any] | None:
        """The member whose overlay /64 holds ``source`` (None: not a member). Raises when the
        hyphal API cannot be asked."""
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return None
        if not isinstance(address, ipaddress.IPv6Address) or address not in OVERLAY_NETWORK:
            return None
        async with self._lock:
            if self._clock() - self._at > MEMBER_CACHE_SECONDS:
                await self.refresh()
        return self._by_prefix.get(int(address) >> 64)


def member_roles(row: dict[str, Any]) -> set[str]:
    """A member's roles for the mapping plane: its mesh roles plus its ``map-role`` tag
    (comma-separated, e.g. ``map-role=worker,operator``)."""
    roles = {str(r) for r in row.get("roles") or [] if isinstance(r, str)}
    tags = row.get("tags") or {}
    if isinstance(tags, dict) and isinstance(tags.get(ROLE_TAG), str):
        roles.update(r.strip() for r in tags[ROLE_TAG].split(",") if r.strip())
    return roles


@dataclass
class Access:
    """Who may call a service: a bearer token, and/or members holding one of ``roles``."""

    token: str | None = None
    members: MemberResolver | None = None
    roles: frozenset[str] = frozenset({"peer", "client"})
    """Members let in; empty: every member (the map worker's default)."""
    allow_loopback: bool = False
    """Trust callers on 127.0.0.1/::1 (local tools, tests); off unless configured."""

    async def check(self, request: Request) -> Caller | str:
        """The caller, or the reason it is refused."""
        header = request.headers.get("authorization", "")
        if self.token and header.startswith("Bearer "):
            if hmac.compare_digest(header[7:].strip().encode(), self.token.encode()):
                return Caller(name="token", via="token")
            return "bad bearer token"
        source = request.client.host if request.client else ""
        if self.allow_loopback and source in ("127.0.0.1", "::1"):
            return Caller(name="local", via="loopback")
        if self.members is None:
            return "a bearer token is required (Authorization: Bearer <token>)"
        try:
            row = await self.members.lookup(source)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("cannot ask the hyphal API who %s is: %s", source, exc)
            return (
                "cannot check membership: the local hyphal API did not answer (is hyphal running?)"
            )
        if row is None:
            return f"{source} is not a member of this mesh"
        if self.roles and not member_roles(row) & self.roles:
            wanted = ", ".join(sorted(self.roles))
            return f"member {row.get('name') or source} has none of the roles {wanted}"
        return Caller(name=str(row.get("name") or source), public_key=row.get("publicKey"))


class ServiceMetrics:
    """The counters every mapping service exports; services add their own to ``registry``."""

    def __init__(self, registry: CollectorRegistry, service_type: str) -> None:
        prefix = "hyphal_" + service_type.replace("-", "_")
        self.registry = registry
        self.requests = Counter(
            f"{prefix}_requests",
            "HTTP requests by path and status.",
            ["path", "status"],
            registry=registry,
        )
        self.refused = Counter(
            f"{prefix}_refused", "Requests refused by access control.", registry=registry
        )
        self.shed = Counter(
            f"{prefix}_shed", "Requests shed with 429 (overload).", registry=registry
        )
        self.inflight = Gauge(f"{prefix}_inflight", "Requests being served.", registry=registry)


class _Frame(BaseHTTPMiddleware):
    def __init__(
        self,
        app: Any,
        access: Access,
        metrics: ServiceMetrics,
        max_inflight: int,
        retry_after: int,
        max_body: int,
    ) -> None:
        super().__init__(app)
        self.max_body = max_body
        self.access = access
        self.metrics = metrics
        self.max_inflight = max_inflight
        self.retry_after = retry_after
        self.inflight = 0

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        route = path if path in _KNOWN_PATHS else "other"
        if path not in OPEN_PATHS:
            verdict = await self.access.check(request)
            if isinstance(verdict, str):
                self.metrics.refused.inc()
                self.metrics.requests.labels(route, "403").inc()
                return JSONResponse({"error": verdict}, status_code=403)
            request.state.caller = verdict
        if request.method in ("POST", "PUT", "PATCH"):
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return JSONResponse({"error": "a Content-Length header is required"}, 411)
            if int(length) > self.max_body:
                return JSONResponse(
                    {"error": f"request body over {self.max_body} bytes; send smaller batches"},
                    413,
                )
        if self.inflight >= self.max_inflight:
            self.metrics.shed.inc()
            self.metrics.requests.labels(route, "429").inc()
            return JSONResponse(
                {"error": "overloaded; retry later"},
                status_code=429,
                headers={"Retry-After": str(self.retry_after)},
            )
        self.inflight += 1
        self.metrics.inflight.inc()
        try:
            response = await call_next(request)
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()
        self.metrics.requests.labels(route, str(response.status_code)).inc()
        return response


_KNOWN_PATHS: set[str] = set()


class Overloaded(Exception):
    """Raised by a handler whose own queue is full: answered 429 with ``Retry-After``."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def make_service_app(
    info: ServiceInfo,
    access: Access,
    checks: dict[str, ReadyCheck] | None = None,
    registry: CollectorRegistry | None = None,
    max_inflight: int = 256,
    retry_after: int = 1,
    description: str = "",
    max_body: int = 4 * 1024 * 1024,
    lifespan: Any = None,
) -> FastAPI:
    """A FastAPI app with /health, /ready, /metrics, /service-info, access control and
    overload shedding; the service adds its routes to it."""
    registry = registry or CollectorRegistry()
    metrics = ServiceMetrics(registry, info.service_type)
    checks = dict(checks or {})
    app = FastAPI(
        title=f"hyphal {info.service_type}",
        version=info.version,
        description=description,
        lifespan=lifespan,
    )
    app.state.info = info
    app.state.metrics = metrics
    app.state.registry = registry
    app.add_middleware(
        _Frame,
        access=access,
        metrics=metrics,
        max_inflight=max_inflight,
        retry_after=retry_after,
        max_body=max_body,
    )

    @app.exception_handler(Overloaded)
    async def _overloaded(_request: Request, exc: Overloaded) -> JSONResponse:
        metrics.shed.inc()
        return JSONResponse(
            {"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )

    @app.get("/health", tags=["Service"])
    async def health() -> dict[str, Any]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok", "serviceType": info.service_type, "instanceId": info.instance_id}

    @app.get("/ready", tags=["Service"], responses={503: {"description": "a dependency fails"}})
    async def ready() -> JSONResponse:
        """Readiness: every dependency check passes (database, feeder, store)."""
        results: dict[str, str] = {}
        ok = True
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=5.0)
                results[name] = "ok"
            except Exception as exc:  # a failing dependency of any kind is reported, not raised
                ok = False
                results[name] = f"failing: {exc}"[:300]
        return JSONResponse({"ready": ok, "checks": results}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["Service"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text exposition."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/service-info", tags=["Service"])
    async def service_info() -> dict[str, Any]:
        """What this service is: type, version, instance name and id, capabilities."""
        return info.to_json()

    _KNOWN_PATHS.update({"/health", "/ready", "/metrics", "/service-info"})
    return app


def register_paths(paths: Iterable[str]) -> None:
    """Paths that get their own label in the request counter (others count as "other")."""
    _KNOWN_PATHS.update(paths)


def overlay_address(api_url: str, token: str | None = None, timeout: float = 5.0) -> str:
    """This node's overlay address, from the local hyphal API (``GET /api/v1/admin``)."""
    headers = bearer_headers(token)
    response = httpx.get(f"{api_url.rstrip('/')}/api/v1/admin", headers=headers, timeout=timeout)
    response.raise_for_status()
    return str(response.json()["nodeIp"])


class BindError(ValueError):
    pass


def check_bind(host: str, allow_public: bool) -> None:
    """Refuse to listen on a public address unless the operator allowed it: overlay, loopback,
    private and link-local addresses are fine."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise BindError(f"--listen needs an IP address, got {host!r}") from None
    if address.is_unspecified:
        if allow_public:
            return
        raise BindError(
            f"{host} listens on every address, public ones too; bind the overlay address "
            "(the default) or pass --public"
        )
    if isinstance(address, ipaddress.IPv6Address) and address in OVERLAY_NETWORK:
        return
    if address.is_loopback or address.is_private or address.is_link_local:
        return
    if not allow_public:
        raise BindError(f"{host} is a public address; pass --public to listen on it")
