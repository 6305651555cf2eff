"""What an operator declares about one local service instance: name, port, check and counters.

A :class:`ServiceSpec` comes from ``hyphal service add``, the API or a ``[[service]]`` table in
the config file; :func:`parse_spec` checks a plain mapping (camelCase or snake_case keys) and
raises :class:`SpecError` with a message naming the field. Checks are written as
``tcp`` (connect to the port), ``http://PATH`` or ``http:PATH`` (GET on the port, 2xx/3xx is
healthy), ``exec:CMD`` (run CMD, exit 0 is healthy) or ``none`` (always healthy once added).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hyphal.membership.record import is_label
from hyphal.services.directory import Proto

CheckKind = Literal["tcp", "http", "exec", "none"]

DEFAULT_INTERVAL = 1.0
DEFAULT_TIMEOUT = 1.0
DEFAULT_RISE = 2
DEFAULT_FALL = 2
DEFAULT_WEIGHT = 100
MAX_WEIGHT = 255
MAX_EXEC_LEN = 1024
MAX_HTTP_PATH = 512


class SpecError(ValueError):
    """A service declaration that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class Check:
    kind: CheckKind = "tcp"
    target: str = ""
    """The HTTP path (``/health``) or the command line (exec); empty for tcp and none."""

    def text(self) -> str:
        if self.kind == "http":
            return f"http:{self.target}"
        if self.kind == "exec":
            return f"exec:{self.target}"
        return self.kind

    def argv(self) -> list[str]:
        return shlex.split(self.target)


def parse_check(text: str) -> Check:
    """``tcp``, ``http://PATH``, ``http:PATH``, ``exec:CMD`` or ``none``."""
    raw = text.strip()
    if raw == "tcp":
        return Check("tcp")
    if raw == "none":
        return Check("none")
    if raw.startswith("http:"):
        path = raw[len("http:") :]
        path = "/" + path.lstrip("/")  # http://health, http:/health and http:health: /health
        if len(path) > MAX_HTTP_PATH or not path.isascii() or not path.isprintable() or " " in path:
            raise SpecError(f"check {text!r}: the HTTP path must be printable ASCII, no spaces")
        return Check("http", path)
    if raw.startswith("exec:"):
        cmd = raw[len("exec:") :].strip()
        if not cmd or len(cmd) > MAX_EXEC_LEN or not cmd.isprintable():
            raise SpecError(f"check {text!r}: exec needs a command line, e.g. exec:/bin/true")
        try:
            if not shlex.split(cmd):
                raise ValueError("empty")
        except ValueError as exc:
            raise SpecError(f"check {text!r}: cannot split the command line: {exc}") from None
        return Check("exec", cmd)
    raise SpecError(
        f"check {text!r}: use tcp, http://PATH, exec:CMD or none (docs/services.md, 'Checks')"
    )


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One local instance of service ``name`` on ``port``/``proto``."""

    name: str
    port: int
    proto: Proto = "tcp"
    check: Check = field(default_factory=Check)
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    rise: int = DEFAULT_RISE
    fall: int = DEFAULT_FALL
    weight: int = DEFAULT_WEIGHT
    grant: str | None = None
    """The owner's grant in text form (``hyphal service grant``); None: none given."""

    @property
    def key(self) -> tuple[str, Proto, int]:
        return (self.name, self.proto, self.port)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "port": self.port,
            "proto": self.proto,
            "check": self.check.text(),
            "interval": self.interval,
            "timeout": self.timeout,
            "rise": self.rise,
            "fall": self.fall,
            "weight": self.weight,
            "grant": self.grant,
        }


_KEYS = {
    "name": "name",
    "port": "port",
    "proto": "proto",
    "check": "check",
    "interval": "interval",
    "timeout": "timeout",
    "rise": "rise",
    "fall": "fall",
    "weight": "weight",
    "grant": "grant",
}


def parse_spec(data: Mapping[str, object], where: str = "service") -> ServiceSpec:
    """A checked :class:`ServiceSpec` from a mapping (a TOML table, a JSON body)."""
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown keys {unknown}; known keys: {sorted(_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not is_label(name):
        raise SpecError(
            f"{where}: name must be a DNS label (lowercase a-z, 0-9, inner '-', at most 63), "
            f"got {name!r}"
        )
    port = data.get("port")
    if type(port) is not int or not 1 <= port <= 65535:
        raise SpecError(f"{where} {name}: port must be an integer 1..65535, got {port!r}")
    proto = data.get("proto", "tcp")
    if proto not in ("tcp", "udp"):
        raise SpecError(f"{where} {name}: proto must be tcp or udp, got {proto!r}")
    check_text = data.get("check", "tcp" if proto == "tcp" else "none")
    if not isinstance(check_text, str):
        raise SpecError(f"{where} {name}: check must be a string such as tcp or http:/health")
    try:
        check = parse_check(check_text)
    except SpecError as exc:
        raise SpecError(f"{where} {name}: {exc}") from None
    if proto == "udp" and check.kind in ("tcp", "http"):
        raise SpecError(
            f"{where} {name}: a udp service cannot take a {check.kind} check; use exec:CMD or none"
        )
    interval = _number(data, "interval", DEFAULT_INTERVAL, 0.1, 3600.0, where, name)
    timeout = _number(data, "timeout", min(DEFAULT_TIMEOUT, interval), 0.05, 600.0, where, name)
    rise = _integer(data, "rise", DEFAULT_RISE, 1, 100, where, name)
    fall = _integer(data, "fall", DEFAULT_FALL, 1, 100, where, name)
    weight = _integer(data, "weight", DEFAULT_WEIGHT, 1, MAX_WEIGHT, where, name)
    grant = data.get("grant")
    if grant is not None and (not isinstance(grant, str) or not grant.strip()):
        raise SpecError(f"{where} {name}: grant must be the text 'hyphal service grant' printed")
    return ServiceSpec(
        name,
        port,
        proto,
        check,
        interval,
        timeout,
        rise,
        fall,
        weight,
        None if grant is None else grant.strip(),
    )


def _number(
    data: Mapping[str, object],
    key: str,
    default: float,
    low: float,
    high: float,
    where: str,
    name: str,
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SpecError(f"{where} {name}: {key} must be a number of seconds {low}..{high}")
    return float(value)


def _integer(
    data: Mapping[str, object], key: str, default: int, low: int, high: int, where: str, name: str
) -> int:
    value = data.get(key, default)
    if type(value) is not int or not low <= value <= high:
        raise SpecError(f"{where} {name}: {key} must be an integer {low}..{high}")
    return value
