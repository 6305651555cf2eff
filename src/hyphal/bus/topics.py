"""Per-topic access control with Mycelium's semantics.

* Topics without configuration get the default action (accept unless changed).
* A configured topic accepts a message only from a source address inside one of its subnets; a
  configured topic with no subnets rejects every (non-reply) message.
* Replies to messages this node sent bypass the ACL (the core checks that before asking here).
* A topic may name a Unix socket that messages are forwarded to instead of the inbox. Only a
  socket inside ``forward_dir`` (symlinks resolved) owned by root or this daemon's user is
  accepted; with no ``forward_dir`` forwarding cannot be configured at all.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from hyphal.bus.errors import ForwardNotAllowed

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

    def __init__(self, default_accept: bool = True, forward_dir: Path | None = None) -> None:
        self.default_accept = default_accept
        self.forward_dir = forward_dir
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
        """Forward ``topic`` to the Unix socket ``path`` (None: back to the inbox).

        Raises :class:`ForwardNotAllowed` (403) for a socket :meth:`check_forward_socket` refuses.
        """
        cfg = self._require(topic)
        if path is not None:
            self.check_forward_socket(path)
        cfg.forward_socket = path

    def check_forward_socket(self, path: str) -> None:
        """Refuse a socket outside ``forward_dir``, not a socket, or owned by another user."""
        if self.forward_dir is None:
            raise ForwardNotAllowed(
                "topic forwarding is disabled: start the daemon with a forward directory "
                "(MessageService forward_dir) and put the sockets inside it"
            )
        base = self.forward_dir.resolve()
        target = Path(path).resolve()
        if not target.is_relative_to(base):
            raise ForwardNotAllowed(
                f"forward socket {path} resolves outside the forward directory {base}; "
                "put the socket inside it"
            )
        try:
            st = target.stat()
        except OSError as exc:
            raise ForwardNotAllowed(f"forward socket {path} is not usable: {exc}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise ForwardNotAllowed(f"{path} is not a Unix socket")
        if st.st_uid not in (0, os.getuid()):
            raise ForwardNotAllowed(
                f"forward socket {path} is owned by uid {st.st_uid}; it must belong to root "
                f"or to the daemon's user (uid {os.getuid()})"
            )

    def allowed(self, topic: bytes, source: IPv6Address) -> bool:
        cfg = self._topics.get(topic)
        if cfg is None:
            return self.default_accept
        return any(source in net for net in cfg.sources)
