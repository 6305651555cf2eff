"""Any config file either loads into a valid NodeConfig or raises ConfigError, never anything else."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.config import ConfigError, NodeConfig, load_config_file

KEYS = [
    "peers",
    "tcp_listen_port",
    "api_addr",
    "no_tun",
    "tun_name",
    "tun_mtu",
    "network_name",
    "network_key_file",
    "key_file",
    "metrics_api_address",
    "listen_address",
    "max_links",
    "forward_dir",
    "bogus",
]
scalars = st.one_of(
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.text(max_size=30),
    st.lists(st.text(max_size=30), max_size=3),
    st.floats(allow_nan=False),
)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def load(text: str) -> NodeConfig | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            return load_config_file(path)
        except ConfigError:
            return None


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=5))
def test_structured_config_loads_or_raises_config_error(values: dict[str, object]) -> None:
    config = load("\n".join(f"{k} = {toml_value(v)}" for k, v in values.items()))
    if config is not None:
        assert config.validate() is config


@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_raises_config_error(text: str) -> None:
    load(text)
