"""Secrets on disk: the message store is 0600 files in a 0700 directory (the -wal and -shm too),
loose node key / API token / network key files are warned about, a created key is logged."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from hyphal.bus.store import MessageStore
from hyphal.config import NodeConfig, read_network_key
from hyphal.daemon import _token, load_identity
from hyphal.filemodes import private_file, warn_if_loose
from hyphal.identity import NodeIdentity


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> object:
    old = os.umask(0o022)  # the usual umask: new files 0644 unless we say otherwise
    yield
    os.umask(old)


def test_message_store_files_are_private(tmp_path: Path, open_umask: object) -> None:
    directory = tmp_path / "store"
    store = MessageStore(directory)
    try:
        store._db.execute("PRAGMA user_version=7")  # a write: the WAL and its index exist now
        files = {p.name: mode(p) for p in directory.iterdir()}
    finally:
        store.close()
    assert mode(directory) == 0o700
    assert files == {
        "messages.sqlite3": 0o600,
        "messages.sqlite3-wal": 0o600,
        "messages.sqlite3-shm": 0o600,
    }


def test_an_open_store_from_before_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, open_umask: object
) -> None:
    directory = tmp_path / "old"
    MessageStore(directory).close()
    (directory / "messages.sqlite3").chmod(0o644)
    directory.chmod(0o755)
    with caplog.at_level(logging.INFO, logger="hyphal"):
        MessageStore(directory).close()
    assert mode(directory / "messages.sqlite3") == 0o600
    text = caplog.text
    assert "had mode 0644; set it to 0600" in text
    assert f"message store directory {directory} has mode 0755" in text
    assert f"chmod 700 {directory}" in text


def test_loose_node_key_is_warned_about_and_a_created_key_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "keys" / "node.key"
    config = NodeConfig(key_file=key)
    with caplog.at_level(logging.INFO, logger="hyphal"):
        created = load_identity(config, "from --key-file")
    assert mode(key) == 0o600
    assert f"created a new node key at {key} (from --key-file), mode 0600" in caplog.text
    assert str(created.address) in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hyphal"):
        again = load_identity(config, "from --key-file")
    assert again.public_key == created.public_key
    assert "WARNING" not in caplog.text
    key.chmod(0o644)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hyphal"):
        load_identity(config, "from --key-file")
    assert f"node key file {key} has mode 0644" in caplog.text
    assert f"run chmod 600 {key}" in caplog.text


def test_loose_api_token_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = NodeConfig(key_file=tmp_path / "node.key", api_token_file=tmp_path / "api_token")
    with caplog.at_level(logging.INFO, logger="hyphal"):
        token = _token(config)
    assert mode(tmp_path / "api_token") == 0o600
    assert "has mode" not in caplog.text
    (tmp_path / "api_token").chmod(0o640)
    with caplog.at_level(logging.INFO, logger="hyphal"):
        assert _token(config) == token
    assert "API token file" in caplog.text and "mode 0640" in caplog.text


def test_loose_network_key_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "net.key"
    path.write_bytes(b"n" * 32)
    path.chmod(0o604)
    with caplog.at_level(logging.WARNING, logger="hyphal"):
        read_network_key(path)
    assert "mode 0604" in caplog.text and f"chmod 600 {path}" in caplog.text


def test_private_file_and_warn_helpers(tmp_path: Path, open_umask: object) -> None:
    path = tmp_path / "f"
    private_file(path)
    assert mode(path) == 0o600 and path.read_bytes() == b""
    assert not warn_if_loose(path, "file")
    path.chmod(0o660)
    assert warn_if_loose(path, "file")
    assert not warn_if_loose(tmp_path / "missing", "file")
    NodeIdentity.generate().save(tmp_path / "k")
    assert mode(tmp_path / "k") == 0o600


def test_generate_keys_does_not_invent_directories(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hyphal.cli import app

    target = tmp_path / "typo" / "node.key"
    result = CliRunner().invoke(app, ["generate-keys", "-k", str(target)])
    assert result.exit_code != 0
    assert "does not exist; create it first" in " ".join(result.output.split())
    assert not target.parent.exists()
    (tmp_path / "typo").mkdir()
    assert CliRunner().invoke(app, ["generate-keys", "-k", str(target)]).exit_code == 0
    assert mode(target) == 0o600


def test_run_creates_a_missing_key_directory_private(tmp_path: Path, open_umask: object) -> None:
    key = tmp_path / "state" / "hyphal" / "priv_key.bin"
    load_identity(NodeConfig(key_file=key), "the default path")
    assert mode(key.parent) == 0o700 and mode(key) == 0o600
