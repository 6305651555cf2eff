"""Config file parsing, flag precedence, and validation errors that say what to do."""

from __future__ import annotations

import logging
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
    short.chmod(0o600)
    config = NodeConfig(network_name="fleet", network_key_file=short)
    with pytest.raises(ConfigError, match="exactly 32 raw bytes or 64 hex"):
        config.network_key()
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")


KEY = bytes(range(32))


@pytest.mark.parametrize(
    "content",
    [KEY, KEY + b"\n", KEY.hex().encode(), KEY.hex().encode() + b"\n", KEY.hex().upper().encode()],
)
def test_network_key_raw_or_hex(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "net.key"
    path.write_bytes(content)
    path.chmod(0o600)
    assert NodeConfig(network_name="fleet", network_key_file=path).network_key() == KEY


@pytest.mark.parametrize(
    "content",
    [
        b"k" * 40,  # was silently cut to its first 32 bytes
        KEY.hex().encode()[:63] + b"z",  # 64 characters, not all hex
        (KEY.hex() + "\n").encode() * 2,  # a hex key file with two keys
        b" ".join(KEY.hex().encode()[i : i + 2] for i in range(0, 42, 2)) + b"\n",  # spaced hex
        b"",
    ],
)
def test_network_key_of_any_other_size_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "net.key"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"holds {len(content)} bytes"):
        NodeConfig(network_name="fleet", network_key_file=path).network_key()


def test_network_key_readable_by_others_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "net.key"
    path.write_bytes(KEY)
    path.chmod(0o644)
    config = NodeConfig(network_name="fleet", network_key_file=path)
    with caplog.at_level(logging.WARNING, logger="hyphal.config"):
        assert config.network_key() == KEY
    assert [r.getMessage() for r in caplog.records] == [
        f"network key file {path} has mode 0644: others may read it; run chmod 600 {path}"
    ]
    path.chmod(0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hyphal.config"):
        config.network_key()
    assert caplog.records == []


def test_max_links_and_forward_dir(tmp_path: Path) -> None:
    assert NodeConfig().max_links == 256 and NodeConfig().forward_dir is None
    config = load_config_file(write(tmp_path, f'max_links = 8\nforward_dir = "{tmp_path}"\n'))
    assert config.max_links == 8 and config.forward_dir == tmp_path
    with pytest.raises(ConfigError, match=r"max_links must be 1\.\.65535"):
        load_config_file(write(tmp_path, "max_links = 0\n"))
    with pytest.raises(ConfigError, match="max_links must be a int"):
        load_config_file(write(tmp_path, 'max_links = "8"\n'))
    with pytest.raises(ConfigError, match="is not a directory"):
        load_config_file(write(tmp_path, f'forward_dir = "{tmp_path / "nope"}"\n'))


def test_no_route_audit_key(tmp_path: Path) -> None:
    assert not NodeConfig().no_route_audit
    assert load_config_file(write(tmp_path, "no_route_audit = true\n")).no_route_audit
    with pytest.raises(ConfigError, match="must be a bool"):
        load_config_file(write(tmp_path, "no_route_audit = 1\n"))


def test_max_routes_reaches_the_router(tmp_path: Path) -> None:
    config = load_config_file(write(tmp_path, "max_routes = 300\n")).validate()
    assert config.routing_params().max_routes == 300
    assert NodeConfig().routing_params().max_routes == 65536
    with pytest.raises(ConfigError, match="max_routes"):
        NodeConfig(max_routes=3).validate()


def test_member_name_and_region_keys_must_be_dns_labels(tmp_path: Path) -> None:
    config = load_config_file(write(tmp_path, 'member_name = "db1"\nregion = "fra"\n'))
    assert (config.member_name, config.region) == ("db1", "fra")
    with pytest.raises(ConfigError, match="member_name 'DB 1' must be a DNS label"):
        load_config_file(write(tmp_path, 'member_name = "DB 1"\n'))
    with pytest.raises(ConfigError, match="region"):
        NodeConfig(region="-x").validate()
