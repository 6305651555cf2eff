"""Per-topic access control with Mycelium's semantics.

* Topics without configuration get the default action (accept unless changed).
* A configured topic accepts a message only from a source address inside one of its subnets; a
  configured topic with no subnets rejects every (non-reply) message.
* Replies to messages this node sent bypass the ACL (the core checks that before asking here).
* A topic may name a Unix socket that messages are forwarded to instead of the inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

MAX_TOPIC_LEN = 255


class TopicError(ValueError):
    """An unusable topic or subnet (too long, unknown topic, ...)."""


@dataclass(slots=True)
class TopicConfig:
    sources: list[IPv6Network] = field(default_factory=list)
    forward_socket: str | None = None


def check_topic(topic: bytes) -> bytes:
    if len(topic) > MAX_TOPIC_LEN:
        raise TopicError(f"a topic has at most {MAX_TOPIC_LEN} bytes, got {len(topic)}")
    return topic


class TopicTable:
    """The node's topic configuration (in memory)."""

    def __init__(self, default_accept: bool = True) -> None:
        self.default_accept = default_accept
        self._topics: dict[bytes, TopicConfig] = {}

    def topics(self) -> list[bytes]:
        return list(self._topics)

    def add_topic(self, topic: bytes) -> None:
        self._topics.setdefault(check_topic(topic), TopicConfig())

    def remove_topic(self, topic: bytes) -> None:
        self._topics.pop(topic, None)

    def config(self, topic: bytes) -> TopicConfig | None:
        return self._topics.get(topic)

    def _require(self, topic: bytes) -> TopicConfig:
        cfg = self._topics.get(topic)
        if cfg is None:
            raise TopicError("topic is not configured")
        return cfg

    def sources(self, topic: bytes) -> list[IPv6Network]:
        return list(self._require(topic).sources)

    def add_source(self, topic: bytes, subnet: IPv6Network) -> None:
        cfg = self._require(topic)
        if subnet not in cfg.sources:
            cfg.sources.append(subnet)

    def remove_source(self, topic: bytes, subnet: IPv6Network) -> None:
        cfg = self._require(topic)
        if subnet in cfg.sources:
            cfg.sources.remove(subnet)

    def forward_socket(self, topic: bytes) -> str | None:
        return self._require(topic).forward_socket

    def set_forward_socket(self, topic: bytes, path: str | None) -> None:
        self._require(topic).forward_socket = path

    def allowed(self, topic: bytes, source: IPv6Address) -> bool:
        cfg = self._topics.get(topic)
        if cfg is None:
            return self.default_accept
        return any(source in net for net in cfg.sources)
