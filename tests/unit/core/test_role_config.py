"""Issue 10, roles: ``role`` and ``listen`` in the config file and on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyphal.cli.node import effective_config
from hyphal.config import ConfigError, NodeConfig, load_config_file
from hyphal.roles import Role


def test_default_is_a_listening_peer() -> None:
    config = NodeConfig().validate()
    assert config.node_role is Role.PEER and config.listens


def test_client_does_not_listen_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('role = "client"\n')
    config = load_config_file(path)
    assert config.node_role is Role.CLIENT and not config.listens
    path.write_text('role = "client"\nlisten = true\n')
    assert load_config_file(path).listens
    path.write_text("listen = false\n")
    assert not load_config_file(path).listens  # a dial-out-only peer


def test_flag_beats_the_file(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('role = "client"\n')
    config, _ = effective_config(path, role="peer", listen=None)
    assert config.node_role is Role.PEER and config.listens


def test_unknown_role_names_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('role = "router"\n')
    with pytest.raises(ConfigError, match="'peer' or 'client'"):
        load_config_file(path)
    path.write_text("")
    with pytest.raises(ConfigError, match="--role must be 'peer' or 'client', got 'relay'"):
        effective_config(path, role="relay")
