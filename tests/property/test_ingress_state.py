"""The ingress state file is read back through the config's checks: whatever it holds, loading
returns listeners (or none, with the file moved aside) and never raises; what loads re-saves to
the same listeners."""

from __future__ import annotations

import json
import tempfile
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.ingress.spec import PROXY_MODES, IngressSpec, UnwrapSpec
from hyphal.ingress.state import load_listeners, save_listeners

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.sampled_from(["127.0.0.1:6697", "[::1]:443", "0.0.0.0:1", "irc", "v1", "400::/7", ""]),
    st.text(max_size=12),
)
keys = st.sampled_from(
    [
        "listen",
        "service",
        "proxy_protocol",
        "backend",
        "allow",
        "transparent",
        "route_table",
        "max_connections",
        "max_per_client",
        "idle_timeout",
        "header_timeout",
        "other",
    ]
)
tables = st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=6)
documents = st.one_of(
    st.fixed_dictionaries(
        {"version": st.sampled_from([1, 1, 2, "1"])},
        optional={
            "ingress": st.one_of(st.lists(tables, max_size=3), scalars),
            "unwrap": st.one_of(st.lists(tables, max_size=3), scalars),
        },
    ),
    st.lists(scalars, max_size=3),
    scalars,
)


@settings(max_examples=300)
@given(documents)
def test_any_document_loads_or_is_moved_aside(document: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ingress.json"
        path.write_text(json.dumps(document))
        specs = load_listeners(path)
        if not specs:
            return
        again = Path(tmp) / "again.json"
        save_listeners(again, specs)
        assert sorted(load_listeners(again), key=str) == sorted(specs, key=str)


@given(st.binary(max_size=64))
def test_any_bytes_load_or_are_moved_aside(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ingress.json"
        path.write_bytes(data)
        assert isinstance(load_listeners(path), list)


specs = st.one_of(
    st.builds(
        IngressSpec,
        st.tuples(st.sampled_from(["0.0.0.0", "::", "192.0.2.7"]), st.integers(1, 65535)),
        st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=63),
        st.sampled_from(PROXY_MODES),
    ),
    st.builds(
        UnwrapSpec,
        st.tuples(st.sampled_from(["127.0.0.1", "::1"]), st.integers(1, 65535)),
        st.tuples(st.sampled_from(["127.0.0.1", "2001:db8::1"]), st.integers(1, 65535)),
        st.lists(st.sampled_from([ip_network("400::/7"), ip_network("198.18.0.0/15")])).map(tuple),
        st.booleans(),
        st.integers(1, 252),
    ),
)


@given(st.lists(specs, max_size=4, unique_by=lambda s: s.key))
def test_saved_listeners_load_back_equal(saved: list[IngressSpec | UnwrapSpec]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ingress.json"
        save_listeners(path, saved)
        assert sorted(load_listeners(path), key=str) == sorted(saved, key=str)
