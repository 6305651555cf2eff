"""Config reload on SIGHUP (``systemctl reload hyphal``): what a running daemon can take over.

:class:`Reloader` re-reads the configuration the daemon started with (the same file, with the
same command-line flags on top, so flags still win), then applies what can change while running:

* **static peers**: peers that left the file are removed (their links closed), new ones are
  dialed. Peers added through the API (``hyphal peers add``) are not touched: the diff is against
  the previous configuration, not against the running peer set.
* **log levels**: :func:`apply_log_levels` with the ``log_level`` key, when the config has one.
* **the parts' own tables**: every node part that is reconfigurable
  (:class:`hyphal.node.parts.Reconfigurable`) applies its keys, e.g. ``[[service]]``,
  ``[[ingress]]`` and ``[[unwrap]]``.

Every other key needs a restart; a changed one is named in the log line and the running value is
kept. A config that does not load (bad TOML, unknown key, bad value) is refused with one ERROR
line and the daemon keeps running with what it had.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import fields
from typing import Protocol

from hyphal.config import ConfigError, NodeConfig
from hyphal.links.endpoint import Endpoint
from hyphal.links.manager import PeerExistsError, PeerNotFoundError
from hyphal.logs import LogSpecError, apply_levels
from hyphal.node.parts import Parts

log = logging.getLogger("hyphal.reload")

#: Keys a reload applies; a change to any other key is logged as needing a restart.
LIVE_KEYS = frozenset({"peers", "log_level"})

ConfigLoader = Callable[[], NodeConfig]


class StaticPeers(Protocol):
    """The part of the node a reload changes (``hyphal.node.Node`` has it)."""

    parts: Parts

    def add_static(self, endpoint: Endpoint) -> None: ...

    def remove_static(self, endpoint: Endpoint) -> None: ...


def apply_log_levels(spec: str) -> None:
    """Re-apply a log level spec (``info`` or ``warning,hyphal.routing=debug``), or raise
    ConfigError naming the ``log_level`` key."""
    try:
        apply_levels(spec)
    except LogSpecError as exc:
        raise ConfigError(f"log_level: {exc}") from exc


class Reloader:
    """Applies a re-read configuration to a running node."""

    def __init__(
        self,
        node: StaticPeers,
        config: NodeConfig,
        load: ConfigLoader | None,
        source: str | None = None,
    ) -> None:
        self._node = node
        self.config = config
        self._load = load
        self._source = source or "the configuration"
        self.reloads = 0
        self.refused = 0

    def reload(self) -> bool:
        """Re-read and apply the configuration; False (and one ERROR line) if it is refused."""
        if self._load is None:
            log.warning(
                "SIGHUP: the daemon was started without a config file; nothing to reload "
                "(start it with --config-file to use reload)"
            )
            return False
        try:
            new = self._load()
            if new.log_level is not None and new.log_level != self.config.log_level:
                apply_log_levels(new.log_level)
        except (ConfigError, OSError) as exc:
            self.refused += 1
            log.error(
                "SIGHUP: reload of %s refused, keeping the running configuration: %s",
                self._source,
                exc,
            )
            return False
        old = self.config
        removed = [p for p in old.peers if p not in new.peers]
        added = [p for p in new.peers if p not in old.peers]
        for endpoint in removed:
            with contextlib.suppress(PeerNotFoundError):  # already removed through the API
                self._node.remove_static(endpoint)
        for endpoint in added:
            with contextlib.suppress(PeerExistsError):  # already added through the API
                self._node.add_static(endpoint)
        part_keys = self._node.parts.live_keys()
        changes = self._node.parts.reconfigure(new)
        live_keys = LIVE_KEYS | part_keys
        restart = sorted(
            f.name
            for f in fields(NodeConfig)
            if f.name not in live_keys and getattr(old, f.name) != getattr(new, f.name)
        )
        self.config = _replace_live(old, new, live_keys)
        self.reloads += 1
        log.info(
            "SIGHUP: reloaded %s: %d static peers (added: %s; removed: %s)%s%s%s",
            self._source,
            len(new.peers),
            ", ".join(map(str, added)) or "none",
            ", ".join(map(str, removed)) or "none",
            f", log level {getattr(new, 'log_level', None)}"
            if getattr(new, "log_level", None) is not None
            else "",
            "".join(f"; {change}" for change in changes),
            f"; restart to apply {', '.join(restart)} (running values kept)" if restart else "",
        )
        return True


def _replace_live(old: NodeConfig, new: NodeConfig, live_keys: frozenset[str]) -> NodeConfig:
    """``old`` with only the keys a reload applies taken from ``new``."""
    live = {name: getattr(new, name) for name in live_keys if hasattr(new, name)}
    return old.with_overrides(**live)
