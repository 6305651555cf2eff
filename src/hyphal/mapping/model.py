"""The mapping plane's result: what a worker produces and what the store ingests.

One canonical JSON shape (camelCase keys, see docs/mapping.md "Result model"), validated here
with strict bounds so a hostile or broken worker cannot make the store hold unbounded data:
ids are 32 hex chars, addresses are IP literals of the declared family, TTLs and counts have
ceilings, and a traceroute carries ``hops`` while a ping carries ``ping``.

:func:`parse_result` turns one decoded JSON object into a :class:`Result` (or raises
:class:`ResultError` saying which field is wrong); :meth:`Result.to_json` gives the canonical
object back. :func:`hop_addresses` and :func:`edges_of` are the two derived views the store
and the feeder need: every responding interface with its TTL, and the links between
consecutive TTLs of the same flow.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

MAX_TTL = 255
MAX_HOPS = 64
"""Hop entries in one traceroute (max TTL is usually 30-32; 64 leaves room)."""
MAX_REPLIES = 64
"""Replies (or timeouts) at one TTL: attempts, plus MDA's extra flows, capped."""
MAX_RTTS = 1000
MAX_PARAMS = 32
MAX_TEXT = 200
MAX_RTT_MS = 600_000.0
MAX_FLOW_ID = 2**32 - 1
RESULT_ID = re.compile(r"^[0-9a-f]{32}$")
HEX_KEY = re.compile(r"^[0-9a-f]{1,128}$")

Text = Annotated[str, Field(max_length=MAX_TEXT)]
Rtt = Annotated[float, Field(ge=0.0, le=MAX_RTT_MS, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=0, le=65535)]
Seconds = Annotated[float, Field(ge=0.0, le=2**40, allow_inf_nan=False)]


class ResultError(ValueError):
    """A result that does not match the model; the message names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )


class Reply(_Model):
    """One answer at a TTL: who sent it, how long it took, and what it quoted."""

    from_: str = Field(alias="from", max_length=64)
    rtt: Rtt
    reply_ttl: int | None = Field(default=None, ge=0, le=255)
    icmp_type: int | None = Field(default=None, ge=0, le=255)
    icmp_code: int | None = Field(default=None, ge=0, le=255)
    quoted_ttl: int | None = Field(default=None, ge=0, le=255)
    flow_id: int | None = Field(default=None, ge=0, le=MAX_FLOW_ID)

    @field_validator("from_")
    @classmethod
    def _ip(cls, value: str) -> str:
        return _ip_literal(value)


class Timeout(_Model):
    """A probe at this TTL that got no answer (RIPE Atlas writes it ``{"x": "*"}``)."""

    timeout: Literal[True]


class Hop(_Model):
    ttl: int = Field(ge=1, le=MAX_TTL)
    replies: list[Reply | Timeout] = Field(max_length=MAX_REPLIES)


class Ping(_Model):
    sent: int = Field(ge=0, le=MAX_RTTS)
    received: int = Field(ge=0, le=MAX_RTTS)
    rtts: list[Rtt] = Field(default_factory=list, max_length=MAX_RTTS)

    @model_validator(mode="after")
    def _counts(self) -> Ping:
        if self.received > self.sent:
            raise ValueError("ping.received is larger than ping.sent")
        if len(self.rtts) > self.received:
            raise ValueError("ping.rtts has more entries than ping.received")
        return self


class Result(_Model):
    """One measurement: a traceroute (``hops``) or a ping (``ping``) from one worker."""

    id: str
    type: Literal["traceroute", "ping"]
    worker: Text = Field(min_length=1)
    worker_key: str | None = None
    region: Text | None = None
    target: str = Field(max_length=64)
    af: Literal[4, 6]
    proto: Literal["icmp", "udp", "tcp"]
    flow_id: int = Field(default=0, ge=0, le=MAX_FLOW_ID)
    src_port: Port | None = None
    dst_port: Port | None = None
    started: Seconds
    ended: Seconds
    cycle_id: Text | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    ping: Ping | None = None
    hops: list[Hop] | None = Field(default=None, max_length=MAX_HOPS)
    destination_replied: bool = False
    stop_reason: Literal["completed", "gaplimit", "maxttl", "error"] = "completed"

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not RESULT_ID.match(value):
            raise ValueError("id must be 32 lowercase hex characters")
        return value

    @field_validator("worker_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not HEX_KEY.match(value):
            raise ValueError("workerKey must be lowercase hex")
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        return _ip_literal(value)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_PARAMS:
            raise ValueError(f"params has more than {MAX_PARAMS} keys")
        for key, item in value.items():
            if len(key) > 64:
                raise ValueError("a params key is longer than 64 characters")
            if not isinstance(item, str | int | float | bool) and item is not None:
                raise ValueError(f"params[{key!r}] must be a string, number, boolean or null")
            if isinstance(item, str) and len(item) > MAX_TEXT:
                raise ValueError(f"params[{key!r}] is longer than {MAX_TEXT} characters")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Result:
        if ipaddress.ip_address(self.target).version != self.af:
            raise ValueError(f"target {self.target} is not an IPv{self.af} address")
        if self.ended < self.started:
            raise ValueError("ended is before started")
        if self.type == "traceroute":
            if self.hops is None:
                raise ValueError("a traceroute has hops")
            if self.ping is not None:
                raise ValueError("a traceroute has no ping section")
            ttls = [h.ttl for h in self.hops]
            if len(set(ttls)) != len(ttls):
                raise ValueError("hops repeat a ttl")
            for hop in self.hops:
                for reply in hop.replies:
                    if isinstance(reply, Reply) and _version(reply.from_) != self.af:
                        raise ValueError(f"hop {hop.ttl}: {reply.from_} is not IPv{self.af}")
        else:
            if self.ping is None:
                raise ValueError("a ping has a ping section")
            if self.hops is not None:
                raise ValueError("a ping has no hops")
        return self

    @property
    def measurement_id(self) -> str | None:
        """The store's measurement this result answers (``params.measurementId``), if any."""
        value = self.params.get("measurementId")
        return value if isinstance(value, str) else None

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON object (camelCase, no absent optional sections)."""
        data = self.model_dump(by_alias=True, mode="json")
        if self.type == "traceroute":
            data.pop("ping", None)
        else:
            data.pop("hops", None)
        return data


def _version(text: str) -> int:
    return ipaddress.ip_address(text).version


def _ip_literal(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value[:64]!r} is not an IP address") from None


def parse_result(data: object) -> Result:
    """Validate one decoded JSON object as a :class:`Result`."""
    if not isinstance(data, dict):
        raise ResultError("a result is a JSON object")
    try:
        return Result.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "result"
        raise ResultError(f"{where}: {first['msg']}") from None


@dataclass(frozen=True, slots=True)
class HopAddress:
    """A responding interface on a trace: what the feeder's ``/hops`` takes."""

    ip: str
    ttl: int
    target: str
    worker: str


def hop_addresses(result: Result) -> list[HopAddress]:
    """Every distinct responding interface of a traceroute (the target itself excluded)."""
    seen: dict[str, HopAddress] = {}
    for hop in result.hops or []:
        for reply in hop.replies:
            if (
                isinstance(reply, Reply)
                and reply.from_ != result.target
                and reply.from_ not in seen
            ):
                seen[reply.from_] = HopAddress(reply.from_, hop.ttl, result.target, result.worker)
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class Edge:
    """A link seen on one flow: ``a`` answered at some TTL and ``b`` at the next."""

    a: str
    b: str
    flow_id: int


def edges_of(result: Result) -> list[Edge]:
    """Links between consecutive TTLs of a traceroute's flow (none across a silent hop: we do
    not know what lies between). Per-reply flow ids (MDA) give per-flow edges."""
    by_ttl: dict[int, set[tuple[str, int]]] = {}
    for hop in result.hops or []:
        for reply in hop.replies:
            if isinstance(reply, Reply):
                flow = result.flow_id if reply.flow_id is None else reply.flow_id
                by_ttl.setdefault(hop.ttl, set()).add((reply.from_, flow))
    edges: set[Edge] = set()
    for ttl, here in by_ttl.items():
        for a, flow_a in here:
            for b, flow_b in by_ttl.get(ttl + 1, ()):
                if flow_a == flow_b and a != b:
                    edges.add(Edge(a, b, flow_a))
    return sorted(edges, key=lambda e: (e.a, e.b, e.flow_id))
