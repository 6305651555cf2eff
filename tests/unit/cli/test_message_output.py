"""`hyphal message receive` output: remote payloads cannot drive the operator's terminal."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.cli.common import visible
from hyphal.cli.messages import show_message

HOSTILE = b"before\x1b[2J\x1b]0;pwned\x07\xc2\x9b31m\rover\x7f\xe2\x80\xaeafter\nline two\tok"


def _message(payload: bytes) -> dict[str, object]:
    return {
        "id": "00112233aabbccdd",
        "srcIp": "400::1",
        "srcPk": "00" * 32,
        "dstIp": "400::2",
        "dstPk": "11" * 32,
        "topic": base64.b64encode(b"t\x1b[31m").decode(),
        "payload": base64.b64encode(payload).decode(),
    }


def test_human_output_shows_escapes_instead_of_running_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_message(_message(HOSTILE), as_json=False, raw=False)
    printed = capsys.readouterr().out
    for raw in ("\x1b", "\x07", "\x9b", "\r", "\x7f", "\u202e"):
        assert raw not in printed
    assert "before\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\rover\\x7f\\u202eafter\nline two" in printed
    assert "topic 't\\x1b[31m'" in printed


def test_json_output_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    message = _message(HOSTILE)
    show_message(message, as_json=True, raw=False)
    assert json.loads(capsys.readouterr().out) == message


@given(st.text())
def test_visible_leaves_no_control_character(text: str) -> None:
    shown = visible(text)
    assert all(ch in "\n\t" or (ch >= " " and not "\x7f" <= ch <= "\x9f") for ch in shown)
    assert "\u202e" not in shown
