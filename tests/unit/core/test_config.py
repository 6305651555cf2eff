"""Config file parsing, flag precedence, and validation errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyphal.config import ConfigError, NodeConfig, load_config_file
from hyphal.links.endpoint import Endpoint


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hyphal.toml"
    path.write_text(text)
    return path


def test_file_values_and_flag_precedence(tmp_path: Path) -> None:
    config = load_config_file(
        write(
            tmp_path,
            'peers = ["tcp://192.0.2.1:9651", "tcp://[2001:db8::1]:9651"]\n'
            'tcp_listen_port = 9000\nno_tun = true\nkey_file = "~/k.bin"\n',
        )
    )
    assert config.peers == (
        Endpoint("tcp", "192.0.2.1", 9651),
        Endpoint("tcp", "2001:db8::1", 9651),
    )
    assert config.tcp_listen_port == 9000 and config.no_tun
    assert config.key_file == Path("~/k.bin").expanduser()
    overridden = config.with_overrides(tcp_listen_port=9100, api_addr=None)
    assert overridden.tcp_listen_port == 9100 and overridden.api_addr == NodeConfig().api_addr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('tcp_listen_port = "x"', "must be a int"),
        ("typo_key = 1", "unknown keys"),
        ('peers = ["udp://x:1"]', "unsupported protocol"),
        ('peers = "tcp://x:1"', "list of URIs"),
        ('network_name = "n"', "go together"),
        ("no_tun = 1", "must be a bool"),
        ("[[[", "not valid TOML"),
        ('api_addr = "nope"', "host:port"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config_file(write(tmp_path, text))


def test_network_key_file_checks(tmp_path: Path) -> None:
    short = tmp_path / "net.key"
    short.write_bytes(b"x" * 8)
    config = NodeConfig(network_name="fleet", network_key_file=short)
    with pytest.raises(ConfigError, match="needs 32"):
        config.network_key()
    short.write_bytes(b"k" * 40)
    assert config.network_key() == b"k" * 32
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")
