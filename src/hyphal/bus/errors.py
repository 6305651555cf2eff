"""The errors the message bus raises to its callers, each with the HTTP status the API maps."""

from __future__ import annotations


class BusError(Exception):
    """A request the bus refuses; ``status`` is the HTTP status the API maps it to."""

    status = 400


class ForwardNotAllowed(BusError):
    """A topic forward socket outside the configured ``forward_dir`` (or none configured)."""

    status = 403
