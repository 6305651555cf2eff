"""Typed failures of the node's services (ping, destinations); each carries its HTTP status.

The API maps an exception to a status by its type, never by matching its message text.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the node cannot serve; ``str(exc)`` is the sentence shown to the user."""

    status = 400


class BadDestination(ServiceError):
    """The destination given is not a usable key or address."""

    status = 400


class NoRoute(ServiceError):
    """No route to the destination node."""

    status = 404


class PingFailed(ServiceError):
    """An overlay ping that got no answer: timed out, or the packet could not be sent."""

    status = 408
