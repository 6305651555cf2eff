"""hyphal: an encrypted, self-healing, latency-aware IPv6 overlay mesh."""

__version__ = "0.1.0"
