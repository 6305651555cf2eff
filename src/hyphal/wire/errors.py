"""The one exception every wire decoder raises on malformed input."""


class DecodeError(ValueError):
    """Bytes that do not form a valid frame, TLV or packet; the message says what is wrong."""
