"""What one ingress or unwrap listener is, as the CLI, the API and ``[[ingress]]`` /
``[[unwrap]]`` config tables give it: parsed and checked here, with errors that say what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any, Literal

from hyphal.ingress.limits import Limits

ProxyMode = Literal["v2", "v1", "none"]
PROXY_MODES: tuple[ProxyMode, ...] = ("v2", "v1", "none")
DEFAULT_ALLOW = ("400::/7", "::1/128", "127.0.0.0/8")
"""Who may send PROXY headers to an unwrap listener by default: overlay nodes and loopback."""

_LIMIT_KEYS: dict[str, type] = {
    "max_connections": int,
    "max_per_client": int,
    "connect_timeout": float,
    "connect_attempts": int,
    "idle_timeout": float,
    "buffer_bytes": int,
    "header_timeout": float,
}


class SpecError(ValueError):
    """An ingress/unwrap definition that cannot be used; the message names the field."""


def parse_endpoint(text: str, what: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[V6]:PORT`` with a literal IP -> (ip, port)."""
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    try:
        ip = ip_address(host)
    except ValueError:
        ip = None
    if not sep or ip is None or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(
            f"{what}: expected ADDR:PORT with a literal IP, e.g. 0.0.0.0:6697 or [::]:443, "
            f"got {text!r}"
        )
    if ip.version == 6 and not bracketed:
        raise SpecError(f"{what}: put an IPv6 address in brackets, e.g. [{host}]:{port}")
    return str(ip), int(port)


def show_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class IngressSpec:
    """Public TCP on ``listen`` -> the nearest healthy instance of ``service``."""

    listen: tuple[str, int]
    service: str
    proxy: ProxyMode = "v2"
    limits: Limits = field(default_factory=Limits)

    @property
    def key(self) -> str:
        return show_endpoint(*self.listen)


@dataclass(frozen=True, slots=True)
class UnwrapSpec:
    """PROXY-wrapped TCP on ``listen`` -> ``backend``, connected from the client's address."""

    listen: tuple[str, int]
    backend: tuple[str, int]
    allow: tuple[IPv4Network | IPv6Network, ...] = ()
    transparent: bool = True
    route_table: int = 1066
    limits: Limits = field(default_factory=Limits)

    @property
    def key(self) -> str:
        return show_endpoint(*self.listen)


def _limits(data: dict[str, Any], where: str) -> Limits:
    values: dict[str, Any] = {}
    for key, kind in _LIMIT_KEYS.items():
        if key not in data:
            continue
        value = data[key]
        ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
        if not ok or isinstance(value, bool):
            raise SpecError(f"{where}: {key} must be a {kind.__name__}")
        values[key] = kind(value)
    try:
        return replace(Limits(), **values).check()
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None


def _check_keys(data: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known - set(_LIMIT_KEYS))
    if unknown:
        raise SpecError(
            f"{where}: unknown keys {unknown}; known: {sorted(known | set(_LIMIT_KEYS))}"
        )


def ingress_from_dict(data: dict[str, Any], where: str = "ingress") -> IngressSpec:
    """An ``[[ingress]]`` table / API body: listen, service, proxy_protocol, limits."""
    _check_keys(data, {"listen", "service", "proxy_protocol"}, where)
    listen, service = data.get("listen"), data.get("service")
    if not isinstance(listen, str):
        raise SpecError(f"{where}: listen must be a string ADDR:PORT")
    if not isinstance(service, str) or not service or len(service) > 63:
        raise SpecError(f"{where}: service must be a service name (1..63 characters)")
    proxy = data.get("proxy_protocol", "v2")
    if proxy not in PROXY_MODES:
        raise SpecError(f"{where}: proxy_protocol must be one of {', '.join(PROXY_MODES)}")
    return IngressSpec(
        parse_endpoint(listen, f"{where}: listen"), service, proxy, _limits(data, where)
    )


def unwrap_from_dict(data: dict[str, Any], where: str = "unwrap") -> UnwrapSpec:
    """An ``[[unwrap]]`` table / API body: listen, backend, allow, transparent, route_table."""
    _check_keys(data, {"listen", "backend", "allow", "transparent", "route_table"}, where)
    listen, backend = data.get("listen"), data.get("backend")
    if not isinstance(listen, str) or not isinstance(backend, str):
        raise SpecError(f"{where}: listen and backend must be strings ADDR:PORT")
    allow_raw = data.get("allow", list(DEFAULT_ALLOW))
    if not isinstance(allow_raw, list) or not all(isinstance(a, str) for a in allow_raw):
        raise SpecError(f"{where}: allow must be a list of CIDR prefixes")
    try:
        allow = tuple(ip_network(a) for a in allow_raw)
    except ValueError as exc:
        raise SpecError(f"{where}: allow: {exc}") from None
    transparent = data.get("transparent", True)
    table = data.get("route_table", 1066)
    if not isinstance(transparent, bool):
        raise SpecError(f"{where}: transparent must be true or false")
    if (
        not isinstance(table, int)
        or isinstance(table, bool)
        or not 1 <= table < 1 << 31
        or table in (253, 254, 255)
    ):
        raise SpecError(
            f"{where}: route_table must be a free policy routing table id (1..2147483647, "
            "not 253-255: default, main, local)"
        )
    spec = UnwrapSpec(
        parse_endpoint(listen, f"{where}: listen"),
        parse_endpoint(backend, f"{where}: backend"),
        allow,
        transparent,
        table,
        _limits(data, where),
    )
    if ip_address(spec.backend[0]).is_unspecified:
        raise SpecError(f"{where}: backend must be a real address, e.g. 127.0.0.1:6668")
    return spec


def ingress_to_dict(spec: IngressSpec) -> dict[str, Any]:
    return {
        "listen": spec.key,
        "service": spec.service,
        "proxyProtocol": spec.proxy,
        **_limits_dict(spec.limits),
    }


def unwrap_to_dict(spec: UnwrapSpec) -> dict[str, Any]:
    return {
        "listen": spec.key,
        "backend": show_endpoint(*spec.backend),
        "allow": [str(a) for a in spec.allow],
        "transparent": spec.transparent,
        "routeTable": spec.route_table,
        **_limits_dict(spec.limits),
    }


def ingress_table(spec: IngressSpec) -> dict[str, Any]:
    """``spec`` as an ``[[ingress]]`` table (what :func:`ingress_from_dict` reads back)."""
    return {
        "listen": spec.key,
        "service": spec.service,
        "proxy_protocol": spec.proxy,
        **_limits_table(spec.limits),
    }


def unwrap_table(spec: UnwrapSpec) -> dict[str, Any]:
    """``spec`` as an ``[[unwrap]]`` table (what :func:`unwrap_from_dict` reads back)."""
    return {
        "listen": spec.key,
        "backend": show_endpoint(*spec.backend),
        "allow": [str(a) for a in spec.allow],
        "transparent": spec.transparent,
        "route_table": spec.route_table,
        **_limits_table(spec.limits),
    }


def _limits_table(limits: Limits) -> dict[str, Any]:
    return {key: getattr(limits, key) for key in _LIMIT_KEYS}


def _limits_dict(limits: Limits) -> dict[str, Any]:
    return {
        "limits": {
            "maxConnections": limits.max_connections,
            "maxPerClient": limits.max_per_client,
            "connectTimeout": limits.connect_timeout,
            "connectAttempts": limits.connect_attempts,
            "idleTimeout": limits.idle_timeout,
            "bufferBytes": limits.buffer_bytes,
            "headerTimeout": limits.header_timeout,
        }
    }
