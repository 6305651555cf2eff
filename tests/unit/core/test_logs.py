"""Log level specs, their application to loggers (and undoing on reload), text and JSON lines."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from hyphal import logs
from hyphal.logs import LogSpec, LogSpecError, parse_spec


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    names = ["", "hyphal", "hyphal.routing", "hyphal.links", "pyroute2", "uvicorn", "uvicorn.error"]
    levels = {n: logging.getLogger(n).level for n in names}
    handlers = list(logging.getLogger().handlers)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    logs._handler = None
    logs._applied.clear()


def test_bare_level() -> None:
    assert parse_spec("debug") == LogSpec(logging.DEBUG, {})
    assert parse_spec(" WARNING ") == LogSpec(logging.WARNING, {})
    assert parse_spec("warn").default == logging.WARNING


def test_per_logger_items_and_default() -> None:
    spec = parse_spec("warning,hyphal.routing=debug, hyphal.links = info")
    assert spec.default == logging.WARNING
    assert spec.loggers == {"hyphal.routing": logging.DEBUG, "hyphal.links": logging.INFO}
    assert str(spec) == "warning,hyphal.routing=debug,hyphal.links=info"
    assert parse_spec("hyphal.routing=debug").default == logging.INFO  # default stays info


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("", "empty item"),
        ("info,", "empty item"),
        ("loud", "'loud'"),
        ("info,debug", "two default levels"),
        ("hyphal.routing=verbose", "'verbose'"),
        ("=debug", "not a logger name"),
        ("hyphal..x=debug", "not a logger name"),
        ("hy phal=debug", "not a logger name"),
        ("a=info,a=debug", "appears twice"),
        (",".join(["info"] + [f"l{i}=info" for i in range(70)]), "at most"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, needle: str) -> None:
    with pytest.raises(LogSpecError, match=re.escape(needle)):
        parse_spec(spec)


def test_apply_sets_hyphal_not_third_parties_and_undoes_on_reload() -> None:
    logs.apply_levels("debug")
    assert logging.getLogger("hyphal").level == logging.DEBUG
    assert logging.getLogger("hyphal.routing").getEffectiveLevel() == logging.DEBUG
    # --debug means hyphal's debug, not pyroute2's netlink dumps
    assert logging.getLogger("pyroute2").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger().level == logging.WARNING

    logs.apply_levels("info,hyphal.routing=debug,pyroute2=debug")
    assert logging.getLogger("hyphal.links").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("hyphal.routing").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("pyroute2").getEffectiveLevel() == logging.DEBUG

    logs.apply_levels("info")  # a reload without the items: they inherit again
    assert logging.getLogger("hyphal.routing").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("pyroute2").getEffectiveLevel() == logging.WARNING


def test_naming_a_parent_opens_its_quiet_children() -> None:
    logs.apply_levels("info,uvicorn=info")
    assert logging.getLogger("uvicorn.error").getEffectiveLevel() == logging.INFO


def test_apply_rejects_a_bad_spec_without_changing_levels() -> None:
    logs.apply_levels("info,hyphal.routing=debug")
    with pytest.raises(LogSpecError):
        logs.apply_levels("info,hyphal.routing=chatty")
    assert logging.getLogger("hyphal.routing").level == logging.DEBUG


def test_text_lines_carry_a_timestamp_with_utc_offset() -> None:
    stream = io.StringIO()
    logs.setup("info", "text", stream)
    logging.getLogger("hyphal.test").info("hello %s", "there")
    logging.getLogger("hyphal.test").debug("not shown")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO    hyphal.test: hello there",
        lines[0],
    ), lines[0]


def test_json_lines_parse_and_carry_event_fields() -> None:
    stream = io.StringIO()
    logs.setup("info", "json", stream)
    log = logging.getLogger("hyphal.test")
    log.warning("peer %s", "x", extra={"fields": {"event": "demo", "msg": "ignored", "n": 3}})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "peer x" and first["level"] == "warning"
    assert first["logger"] == "hyphal.test" and first["event"] == "demo" and first["n"] == 3
    assert re.fullmatch(r".*T.*[+-]\d\d:\d\d", first["ts"])
    assert "RuntimeError: boom" in second["exc"]


def test_setup_twice_keeps_one_handler() -> None:
    before = len(logging.getLogger().handlers)
    logs.setup("info", "text", io.StringIO())
    logs.setup("info", "json", io.StringIO())
    assert len(logging.getLogger().handlers) == before + 1
    with pytest.raises(LogSpecError, match="log format"):
        logs.setup("info", "xml")


def test_flags_map_to_specs() -> None:
    assert logs.flags_spec(True, False) == "debug"
    assert logs.flags_spec(False, True) == "warning"
    assert logs.flags_spec(False, False) == "info"
