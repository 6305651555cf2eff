"""Logging for the daemon: level specs (``info,hyphal.routing=debug``), text or JSON lines.

``--log-level`` and the ``log_level`` config key take a spec: comma-separated items, each either a
bare level (the level of every ``hyphal`` logger) or ``logger=level`` for one logger and its
children. Other libraries (uvicorn, pyroute2, asyncio) stay at WARNING unless a spec names them,
so ``debug`` means hyphal's debug lines, not pyroute2's netlink dumps.

Lines carry an ISO 8601 timestamp with its UTC offset. ``--log-format json`` prints one JSON
object per line (``ts``, ``level``, ``logger``, ``msg``, and the event's fields when a log call
passes ``extra={"fields": {...}}``) for journald, Loki or any collector.

:func:`apply_levels` is what a config reload calls: it re-applies a spec to a running process,
undoing the per-logger levels of the spec before it.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
FORMATS = ("text", "json")
DEFAULT_SPEC = "info"
# Third-party loggers kept quiet unless a spec names them (or a parent of them).
QUIET_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "pyroute2", "asyncio")
MAX_SPEC_ITEMS = 64
_LOGGER_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class LogSpecError(ValueError):
    """A log level spec that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class LogSpec:
    """A parsed spec: the level of hyphal's loggers and levels for named loggers."""

    default: int = logging.INFO
    loggers: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        items = [logging.getLevelName(self.default).lower()]
        items += [f"{name}={logging.getLevelName(lv).lower()}" for name, lv in self.loggers.items()]
        return ",".join(items)


def _level(text: str, spec: str) -> int:
    level = LEVELS.get(text.strip().lower())
    if level is None:
        raise LogSpecError(
            f"log level {text.strip()!r} in {spec!r} is not one of "
            f"{', '.join(k for k in LEVELS if k != 'warn')}"
        )
    return level


def parse_spec(spec: str) -> LogSpec:
    """``info`` or ``warning,hyphal.routing=debug,hyphal.links=info`` -> LogSpec.

    A bare level may appear at most once; a logger named twice is an error (so a typo that
    duplicates an item is not silently resolved one way or the other).
    """
    items = [item.strip() for item in spec.split(",")]
    if not spec.strip() or any(not item for item in items):
        raise LogSpecError(f"empty item in log level spec {spec!r} (e.g. info,hyphal.links=debug)")
    if len(items) > MAX_SPEC_ITEMS:
        raise LogSpecError(f"log level spec has {len(items)} items, at most {MAX_SPEC_ITEMS}")
    default: int | None = None
    loggers: dict[str, int] = {}
    for item in items:
        name, eq, level_text = item.partition("=")
        if not eq:
            if default is not None:
                raise LogSpecError(f"log level spec {spec!r} has two default levels")
            default = _level(item, spec)
            continue
        name = name.strip()
        if not name or not set(name) <= _LOGGER_NAME_CHARS or ".." in name or name[0] == ".":
            raise LogSpecError(f"{name!r} in {spec!r} is not a logger name (e.g. hyphal.routing)")
        if name in loggers:
            raise LogSpecError(f"logger {name!r} appears twice in {spec!r}")
        loggers[name] = _level(level_text, spec)
    return LogSpec(logging.INFO if default is None else default, loggers)


def flags_spec(debug: bool, quiet: bool) -> str:
    """The spec the old ``--debug`` / ``--silent`` flags mean."""
    return "debug" if debug else "warning" if quiet else DEFAULT_SPEC


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """``2026-12-02T00:31:35.123+00:00 INFO    hyphal.links: message``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an event's ``fields`` are merged in (they never replace
    ``ts``, ``level``, ``logger`` or ``msg``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        out["ts"] = _timestamp(record)
        out["level"] = record.levelname.lower()
        out["logger"] = record.name
        out["msg"] = record.getMessage()
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


_handler: logging.Handler | None = None
_applied: set[str] = set()


def apply_levels(spec: str | LogSpec) -> LogSpec:
    """Set logger levels from ``spec`` (a string is parsed; LogSpecError if it is bad).

    Safe to call again at any time (a config reload): loggers named by the previous spec and
    not by this one go back to inheriting.
    """
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    for name in _applied - set(parsed.loggers):
        logging.getLogger(name).setLevel(logging.NOTSET)
    root = logging.getLogger()
    root.setLevel(max(parsed.default, logging.WARNING))
    logging.getLogger("hyphal").setLevel(parsed.default)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, level in parsed.loggers.items():
        logging.getLogger(name).setLevel(level)
        # naming a parent of a quiet logger (e.g. "uvicorn") opens its children too
        for quiet in QUIET_LOGGERS:
            if quiet.startswith(name + ".") and quiet not in parsed.loggers:
                logging.getLogger(quiet).setLevel(logging.NOTSET)
    if "hyphal" in parsed.loggers:
        logging.getLogger("hyphal").setLevel(parsed.loggers["hyphal"])
    _applied.clear()
    _applied.update(parsed.loggers)
    return parsed


def setup(
    spec: str | LogSpec = DEFAULT_SPEC, fmt: str = "text", stream: TextIO | None = None
) -> LogSpec:
    """Install the one stderr handler (text or JSON) and apply ``spec``; idempotent."""
    global _handler
    if fmt not in FORMATS:
        raise LogSpecError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    _handler = handler
    return apply_levels(spec)
