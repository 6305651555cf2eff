"""Labels, the domain, the static name book and the config keys that feed it."""

from __future__ import annotations

from ipaddress import IPv6Address
from pathlib import Path

import pytest

from hyphal.config import ConfigError, NodeConfig, load_config_file
from hyphal.dns.names import (
    InvalidName,
    MemberNameBook,
    StaticNameBook,
    domain_for,
    normalise_label,
    parse_names_table,
)
from hyphal.identity import NodeIdentity, address_for_public_key

A = IPv6Address("4aa::1")
B = IPv6Address("5bb::2")


def test_labels() -> None:
    assert normalise_label("DB1") == "db1" and normalise_label("fra-web-2") == "fra-web-2"
    for bad in ("", "-a", "a-", "a.b", "a_b", "é", "x" * 64):
        with pytest.raises(InvalidName):
            normalise_label(bad)


def test_domain_from_network_name() -> None:
    assert domain_for(None) == "hyphal.internal"
    assert domain_for("fleet") == "fleet.internal"
    assert domain_for("My Fleet_01") == "my-fleet-01.internal"
    assert domain_for("***") == "hyphal.internal"
    assert domain_for("fleet", "Corp.Example.") == "corp.example"
    with pytest.raises(InvalidName):
        domain_for(None, "bad..domain")


def test_static_book_own_name_wins_and_reachability_from_routes() -> None:
    routed: set[IPv6Address] = set()
    book = StaticNameBook("db1", A, [("db1", B), ("web", B)], lambda a: a in routed)
    own = book.lookup("db1")
    assert own is not None and own.address == A and own.reachable
    web = book.lookup("web")
    assert web is not None and not web.reachable
    routed.add(B)
    assert (book.lookup("web") or web).reachable
    assert book.lookup("nope") is None and len(book) == 2
    assert (book.reverse(A) or web).name == "db1" and (book.reverse(B) or own).name == "web"


def test_names_table_takes_addresses_and_keys() -> None:
    key = NodeIdentity.generate()
    table = parse_names_table({"Web": str(B), "db2": key.public_key.hex()})
    assert table == (("db2", key.address), ("web", B))
    for bad in ({"x": "2001:db8::1"}, {"x": "nonsense"}, {"x": 5}, {"a": str(A), "A": str(B)}):
        with pytest.raises(InvalidName):
            parse_names_table(bad)


def test_config_file_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'member_name = "db1"\ndns_port = 5353\nno_dns = false\n[names]\nweb = "5bb::2"\n'
    )
    config = load_config_file(path)
    assert config.member_name == "db1" and config.dns_port == 5353 and config.names == (("web", B),)
    assert NodeConfig().dns_port == 53 and NodeConfig().dns_loopback == "127.0.0.1"
    path.write_text('[names]\nweb = "2001:db8::1"\n')
    with pytest.raises(ConfigError, match="not an overlay address"):
        load_config_file(path)
    path.write_text('member_name = "not a label"\n')
    with pytest.raises(ConfigError, match="member_name 'not a label' must be a DNS label"):
        load_config_file(path)
    with pytest.raises(ConfigError, match="dns_loopback"):
        NodeConfig(dns_loopback="localhost").validate()
    with pytest.raises(ConfigError, match="dns_port"):
        NodeConfig(dns_port=70000).validate()


class Directory:
    """Member records as the DNS sees them: name -> key (winners only)."""

    def __init__(self, names: dict[str, bytes]) -> None:
        self.names = names

    def key_for_name(self, name: str) -> bytes | None:
        return self.names.get(name)

    def name_for_prefix(self, prefix64: bytes) -> str | None:
        for name, key in self.names.items():
            if address_for_public_key(key).packed[:8] == prefix64:
                return name
        return None

    def named_count(self) -> int:
        return len(self.names)


def test_member_names_come_first_then_the_static_table() -> None:
    me, db1 = NodeIdentity.generate(), NodeIdentity.generate()
    directory = Directory({"me": me.public_key, "db1": db1.public_key})
    static = StaticNameBook(None, me.address, (("web", B), ("db1", B)), lambda a: False)
    book = MemberNameBook(directory, static, lambda a: a == db1.address, me.address)
    entry = book.lookup("db1")
    assert entry is not None and entry.address == db1.address and entry.reachable
    web = book.lookup("web")
    assert web is not None and web.address == B and not web.reachable
    own = book.lookup("me")
    assert own is not None and own.reachable  # ourselves: always
    assert book.lookup("nobody") is None
    back = book.reverse(db1.address)
    assert back is not None and back.name == "db1"
    static_back = book.reverse(B)
    assert static_back is not None and static_back.name == "db1"  # the table's first label
    del directory.names["db1"]  # renamed or expired: the member name stops answering
    gone = book.lookup("db1")
    assert gone is not None and gone.address == B  # only the static entry is left
    assert len(book) == 1 + 2
