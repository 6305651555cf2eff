"""The member name template and the membership config keys: `{region}` and `{hostname}` expand
to a DNS label or the config is refused with a message that names the flag."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hyphal.cli.node import effective_config
from hyphal.config import (
    ConfigError,
    NodeConfig,
    expand_name,
    hostname_label,
    load_config_file,
)


def test_templates_expand() -> None:
    assert expand_name("{region}-{hostname}", "fra", "Web-01.example.com") == "fra-web-01"
    assert expand_name("db1", None, "ignored") == "db1"
    assert expand_name("{hostname}", None, "my_host") == "my-host"


@pytest.mark.parametrize(
    ("template", "region", "says"),
    [
        ("{region}-x", None, "set the region too"),
        ("{zone}", "fra", "unknown field {zone}"),
        ("{region}-{hostname}", "fra", "must be a DNS label"),  # hostname "---" -> "fra-"
        ("UPPER", None, "must be a DNS label"),
    ],
)
def test_bad_templates_are_refused(template: str, region: str | None, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        expand_name(template, region, "---")


def test_hostname_label_is_a_label_or_empty() -> None:
    assert hostname_label("a" * 80 + ".x") == "a" * 63
    assert hostname_label("-ab-.x") == "ab"


def test_validate_expands_and_checks_lifetime() -> None:
    config = NodeConfig(member_name="{region}-{hostname}", region="fra").validate()
    assert config.member_name == f"fra-{hostname_label(socket.gethostname())}"
    with pytest.raises(ConfigError, match="member_record_lifetime"):
        NodeConfig(member_record_lifetime=5).validate()
    params = NodeConfig(member_record_lifetime=30).validate().membership_params()
    assert params.record_ttl_s == 30 and params.tombstone_ttl_s >= 30


def test_a_file_template_may_take_its_region_from_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "hyphal.toml"
    path.write_text('member_name = "{region}-db"\nmember_record_lifetime = 60\n')
    assert load_config_file(path).member_name == "{region}-db"  # waits for the region
    config, _ = effective_config(path, region="ams")
    assert config.member_name == "ams-db" and config.member_record_lifetime == 60
    with pytest.raises(ConfigError, match="set the region"):
        effective_config(path)


def test_errors_name_the_flags(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"^--name "):
        effective_config(empty, member_name="Bad Name")
    with pytest.raises(ConfigError, match=r"^--region "):
        effective_config(empty, region="-")


def test_config_show_takes_name_and_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hyphal.cli import main

    path = tmp_path / "hyphal.toml"
    path.write_text("member_record_lifetime = 60\n")
    assert (
        main(["config", "show", "-c", str(path), "--name", "{region}-db", "--region", "ams"]) == 0
    )
    shown = capsys.readouterr().out
    assert 'member_name = "ams-db"' in shown and "member_record_lifetime = 60" in shown
    assert main(["config", "show", "-c", str(path), "--name", "X"]) == 2
    assert "--name 'X' must be a DNS label" in capsys.readouterr().err
