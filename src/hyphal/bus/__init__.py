"""Message bus: reliable, flow-controlled messages between nodes (see docs/messages.md)."""

from hyphal.bus.core import BusError, Limits, MessageCore, MessageStatus
from hyphal.bus.inbox import InboundMessage
from hyphal.bus.service import MessageService

__all__ = ["BusError", "InboundMessage", "Limits", "MessageCore", "MessageService", "MessageStatus"]
