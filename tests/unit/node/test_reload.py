"""Reloader: the diff of static peers against the previous config, keys that need a restart,
refusal of a config that does not load, and the log level spec."""

from __future__ import annotations

import logging

import pytest

from hyphal.config import ConfigError, NodeConfig
from hyphal.links.endpoint import Endpoint
from hyphal.links.manager import PeerExistsError
from hyphal.node.parts import Parts
from hyphal.reload import Reloader, apply_log_levels

P1, P2, P3 = (Endpoint("tcp", "192.0.2.1", p) for p in (9651, 9652, 9653))


class Peers:
    """The node's static peer set (a set, refusing duplicates as PeerManager does)."""

    def __init__(self, *endpoints: Endpoint) -> None:
        self.static = set(endpoints)
        self.parts = Parts()  # no parts: only peers and log levels change

    def add_static(self, endpoint: Endpoint) -> None:
        if endpoint in self.static:
            raise PeerExistsError(str(endpoint))
        self.static.add(endpoint)

    def remove_static(self, endpoint: Endpoint) -> None:
        self.static.remove(endpoint)  # KeyError like PeerNotFoundError would not be suppressed


def test_peers_follow_the_file_and_api_peers_stay(caplog: pytest.LogCaptureFixture) -> None:
    node = Peers(P1, P2, P3)  # P3 was added through the API
    new = NodeConfig(peers=(P2, P3), tcp_listen_port=1234)
    r = Reloader(node, NodeConfig(peers=(P1, P2)), lambda: new, "x.toml")
    with caplog.at_level(logging.INFO, "hyphal.reload"):
        assert r.reload()
    assert node.static == {P2, P3}
    (line,) = [m for m in caplog.messages if m.startswith("SIGHUP")]
    assert "added: tcp://192.0.2.1:9653" in line and "removed: tcp://192.0.2.1:9651" in line
    assert "restart to apply tcp_listen_port" in line
    assert r.config.tcp_listen_port == NodeConfig().tcp_listen_port  # running value kept
    assert r.config.peers == (P2, P3)


def test_a_config_that_does_not_load_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> NodeConfig:
        raise ConfigError("config file x.toml: unknown keys ['prot']")

    node = Peers(P1)
    r = Reloader(node, NodeConfig(peers=(P1,)), broken, "x.toml")
    assert not r.reload()
    assert node.static == {P1} and r.refused == 1
    assert any("refused" in m and "unknown keys" in m for m in caplog.messages)


def test_no_config_file_means_nothing_to_reload(caplog: pytest.LogCaptureFixture) -> None:
    assert not Reloader(Peers(), NodeConfig(), None).reload()
    assert any("without a config file" in m for m in caplog.messages)


def test_log_level_spec() -> None:
    logger = logging.getLogger("hyphal.test_reload")
    before = logging.getLogger().level
    try:
        apply_log_levels("warning,hyphal.test_reload=debug")
        assert logger.level == logging.DEBUG
        assert logging.getLogger().level == logging.WARNING
        with pytest.raises(ConfigError, match="log level 'loud'"):
            apply_log_levels("loud")
    finally:
        logging.getLogger().setLevel(before)
        logger.setLevel(logging.NOTSET)
