"""The members commands' own checks, before any daemon is asked: names as destinations, tag
syntax, labels; each a usage error (exit 2) with a message, JSON under --json."""

from __future__ import annotations

import json

import pytest

from hyphal.cli import main
from hyphal.cli.common import destination_body
from hyphal.cli.members import member_label

NO_DAEMON = ("--api-addr", "127.0.0.1:9")


def test_a_member_name_is_a_destination() -> None:
    assert destination_body("db1") == {"name": "db1"}
    assert destination_body("5a2::1") == {"ip": "5a2::1"}
    assert destination_body("ab" * 32) == {"pk": "ab" * 32}


@pytest.mark.parametrize(
    "argv",
    [
        ["ping", "Not_A_Name", *NO_DAEMON],
        ["resolve", "UPPER", *NO_DAEMON],
        ["set", "tag", "novalue", *NO_DAEMON],
        ["set", "tag", "=x", *NO_DAEMON],
        ["set", "name", "bad name", *NO_DAEMON],
        ["set", "colour", "red", *NO_DAEMON],
    ],
)
def test_usage_errors_before_the_daemon(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--json"]) == 2
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert error["exitCode"] == 2 and error["kind"] == "usage" and error["error"]


def test_no_daemon_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["members"], ["resolve", "db1"], ["set", "name", "db1"]):
        assert main([*argv, *NO_DAEMON]) == 3
        assert "cannot reach the hyphal daemon" in capsys.readouterr().err


def test_labels_mark_lost_claims_and_ourselves() -> None:
    assert member_label({"name": "db1", "ownsName": False}) == "db1 (name taken: lost)"
    assert member_label({"name": "", "self": True}) == "(unnamed) *"
    assert member_label({"name": "a\x1b[2J"}) == "a\\x1b[2J"
