"""Hostile destinations: any text as a destination's name (or ip/pk next to it) is resolved or
refused with BadDestination (400) / NoRoute (404), never anything else; a name resolves only
through the member lookup, to exactly what it answers."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.api.codec import message_destination, resolve_destination
from hyphal.dataplane.errors import BadDestination, NoRoute
from hyphal.membership.record import is_label

KEY = bytes(range(1, 33))
NAMES = {"db1": KEY}


def _nobody(address: IPv6Address) -> bytes | None:
    return None


@given(
    name=st.one_of(st.none(), st.text(max_size=80), st.sampled_from(["db1", "db2", "DB1", ""])),
    ip=st.one_of(st.none(), st.text(max_size=40)),
    pk=st.one_of(st.none(), st.text(max_size=70)),
)
def test_any_destination_is_resolved_or_refused(
    name: str | None, ip: str | None, pk: str | None
) -> None:
    for resolve in (resolve_destination, message_destination):
        try:
            key = resolve(ip, pk, _nobody, "dst", name=name, key_for_name=NAMES.get)
        except (BadDestination, NoRoute):
            continue
        if name is not None:
            assert ip is None and pk is None and is_label(name) and key == NAMES[name]


def test_names_need_a_lookup() -> None:
    with pytest.raises(NoRoute, match="no member is named 'db1'"):
        resolve_destination(None, None, _nobody, name="db1")
    with pytest.raises(NoRoute):
        message_destination(None, None, _nobody, name="db2", key_for_name=NAMES.get)
