"""Identity: Mycelium-compatible address derivation, key files, inspect output."""

from __future__ import annotations

import json
import os
import stat
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest
from blake3 import blake3
from typer.testing import CliRunner

from hyphal.cli import app
from hyphal.identity import (
    OVERLAY_NETWORK,
    IdentityError,
    NodeIdentity,
    address_for_public_key,
    parse_public_key,
    subnet_for_public_key,
)

# Pinned: computed once from the rule (BLAKE3 XOF, 16 bytes, byte 0 -> 0x04 | parity(byte 0)).
VECTORS = [
    ("00" * 32, "5da:83c1:819a:5372:dae1:238f:c1de:d123"),
    ("01" * 32, "415:490:71ed:9131:49a8:d3b:b789:1fcd"),
    ("ff" * 32, "534:f060:fbc0:f0aa:11f1:50e2:6519:deff"),
    (bytes(range(32)).hex(), "528:e957:9803:7df4:1054:3d9f:31e3:96ec"),
]


@pytest.mark.parametrize(("key_hex", "address"), VECTORS)
def test_pinned_vectors(key_hex: str, address: str) -> None:
    assert address_for_public_key(bytes.fromhex(key_hex)) == IPv6Address(address)


@pytest.mark.parametrize("seed", range(50))
def test_address_follows_the_rule(seed: int) -> None:
    key = blake3(seed.to_bytes(4, "big")).digest()  # arbitrary 32-byte keys
    digest = blake3(key).digest(length=16)
    packed = address_for_public_key(key).packed
    assert packed[1:] == digest[1:]
    assert packed[0] == 0x04 | (bin(digest[0]).count("1") & 1)
    assert address_for_public_key(key) in OVERLAY_NETWORK
    subnet = subnet_for_public_key(key)
    assert subnet.prefixlen == 64 and address_for_public_key(key) in subnet


def test_inspect_json_for_a_given_key() -> None:
    key_hex, address = VECTORS[1]
    result = CliRunner().invoke(app, ["inspect", "--json", key_hex])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == {
        "publicKey": key_hex,
        "address": address,
        "subnet": str(IPv6Network(address + "/64", strict=False)),
    }


def test_inspect_own_key_and_generate_keys(tmp_path: Path) -> None:
    key_file = tmp_path / "k.bin"
    runner = CliRunner()
    assert runner.invoke(app, ["generate-keys", "-k", str(key_file)]).exit_code == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    again = runner.invoke(app, ["generate-keys", "-k", str(key_file)])
    assert again.exit_code == 1 and "--force" in again.output
    assert runner.invoke(app, ["generate-keys", "-k", str(key_file), "--force"]).exit_code == 0
    identity = NodeIdentity.load(key_file)
    data = json.loads(runner.invoke(app, ["inspect", "--json", "-k", str(key_file)]).output)
    assert data["publicKey"] == identity.public_key.hex()
    assert data["address"] == str(identity.address)


def test_bad_keys_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="no key file"):
        NodeIdentity.load(tmp_path / "missing")
    short = tmp_path / "short"
    short.write_bytes(b"x" * 31)
    with pytest.raises(IdentityError, match="exactly 32 bytes"):
        NodeIdentity.load(short)
    with pytest.raises(IdentityError):
        parse_public_key("zz" * 32)
    with pytest.raises(IdentityError):
        parse_public_key("00" * 31)
    result = CliRunner().invoke(app, ["inspect", "nothex"])
    assert result.exit_code == 2  # a bad PUBKEY argument is a usage error (docs/cli.md)


def test_load_or_create_creates_once(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "key"
    first = NodeIdentity.load_or_create(path)
    second = NodeIdentity.load_or_create(path)
    assert first.public_key == second.public_key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
