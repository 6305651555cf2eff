"""``[[ingress]]`` and ``[[unwrap]]`` config tables: what loads, and errors that name the table
and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyphal.config import ConfigError, NodeConfig, load_config_file


def load(tmp_path: Path, text: str) -> NodeConfig:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config_file(path)


def test_tables_load(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
[[ingress]]
listen = "0.0.0.0:6697"
service = "irc"
max_per_client = 8
idle_timeout = 60

[[ingress]]
listen = "[::]:443"
service = "web"
proxy_protocol = "v1"

[[unwrap]]
listen = "[::]:6667"
backend = "127.0.0.1:6668"
allow = ["400::/7"]
""",
    )
    first, second = config.ingress
    assert first.listen == ("0.0.0.0", 6697) and first.proxy == "v2"
    assert first.limits.max_per_client == 8 and first.limits.idle_timeout == 60.0
    assert second.key == "[::]:443" and second.proxy == "v1"
    (unwrap,) = config.unwrap
    assert unwrap.backend == ("127.0.0.1", 6668) and unwrap.transparent
    assert [str(a) for a in unwrap.allow] == ["400::/7"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[ingress]]\nlisten = "6697"\nservice = "irc"\n', "ADDR:PORT"),
        ('[[ingress]]\nlisten = "::1:6697"\nservice = "irc"\n', "brackets"),
        ('[[ingress]]\nlisten = "0.0.0.0:1"\nservice = "irc"\nproxy_protocol = "v3"\n', "v2, v1"),
        ('[[ingress]]\nlisten = "0.0.0.0:1"\nservice = "irc"\nmax_per_client = 0\n', "max_per"),
        ('[[ingress]]\nlisten = "0.0.0.0:1"\nservice = "irc"\nbogus = 1\n', "unknown keys"),
        (
            '[[ingress]]\nlisten = "0.0.0.0:1"\nservice = "a"\n[[ingress]]\nlisten = "0.0.0.0:1"\n'
            'service = "b"\n',
            "one address",
        ),
        ('[[unwrap]]\nlisten = "0.0.0.0:1"\nbackend = "0.0.0.0:2"\n', "real address"),
        (
            '[[unwrap]]\nlisten = "0.0.0.0:1"\nbackend = "127.0.0.1:2"\nroute_table = 254\n',
            "route_table",
        ),
        (
            '[[unwrap]]\nlisten = "0.0.0.0:1"\nbackend = "127.0.0.1:2"\nheader_timeout = 1\n',
            "header_timeout",
        ),
        ('ingress = "x"\n', "[[ingress]] tables"),
    ],
)
def test_bad_tables_say_what(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, text)
