"""``[[service]]`` tables and ``[service_owners]`` in the config file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hyphal.config import ConfigError, load_config_file
from hyphal.services.spec import Check

KEY = "ab" * 32


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "hyphal.toml"
    path.write_text(text)
    return load_config_file(path)


def test_service_tables_and_owner_pins(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        f"""
[[service]]
name = "irc"
port = 6667
check = "tcp"
fall = 3

[[service]]
name = "dns"
port = 53
proto = "udp"
check = "exec:/usr/bin/dig @::1 +short health.example"

[service_owners]
irc = "{KEY}"
""",
    )
    irc, dns = config.services
    assert irc.name == "irc" and irc.fall == 3 and irc.check == Check("tcp")
    assert dns.proto == "udp" and dns.check.kind == "exec"
    assert config.service_owners == (("irc", bytes.fromhex(KEY)),)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('service = "irc"', "[[service]] tables"),
        ('[[service]]\nname = "irc"\nport = 0\n', "port"),
        ('[[service]]\nname = "irc"\nport = 1\ncolour = 2\n', "unknown keys"),
        ('[[service]]\nname = "a"\nport = 1\n[[service]]\nname = "a"\nport = 1\n', "twice"),
        ('[service_owners]\nirc = "nothex"\n', "service_owners"),
        ('[service_owners]\n"Bad Name" = "' + KEY + '"\n', "service_owners"),
    ],
)
def test_bad_service_config_is_refused_with_the_key_named(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        load(tmp_path, text)


def test_config_show_renders_services(tmp_path: Path) -> None:
    import json

    from hyphal.cli.configcmd import config_values, toml_value

    config = load(
        tmp_path, f'[[service]]\nname = "irc"\nport = 6667\n[service_owners]\nirc = "{KEY}"\n'
    )
    values = config_values(config)
    json.dumps(values)  # --json must not fail
    assert values["services"][0]["name"] == "irc" and values["service_owners"] == {"irc": KEY}
    assert "interval = 1.0" in toml_value(values["services"])
