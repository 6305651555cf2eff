"""Link capabilities: the feature bits each node puts in its authenticated handshake payload.

The payload of handshake messages 2 and 3 (authenticated by the sender's static key) is a list of
``type u8 | length u8 | value`` items. Type 1 carries the feature bits as a big-endian unsigned
integer; unknown types are skipped, so later versions can add items. An empty payload (nodes from
before this format) means no features. Both ends learn each other's bits on the established link
(``PeerLink.features``), so a feature is used only when both set its bit.
"""

from __future__ import annotations

from hyphal.wire.errors import DecodeError

ITEM_FEATURES = 1
MAX_FEATURE_BYTES = 32
LOCAL_FEATURES = 0  # bits every node sets (none yet); roles add theirs (hyphal.roles)
#: Bit 0: the sender is a client (``--role client``). Unlike a feature both ends must share, it is
#: a declaration: a receiver that knows the bit never uses the sender as a transit hop and accepts
#: from it only routes for prefixes it originates itself; an older node ignores it.
FEATURE_CLIENT = 1 << 0


def encode_capabilities(features: int) -> bytes:
    """The handshake payload announcing `features`."""
    if not 0 <= features < 1 << (8 * MAX_FEATURE_BYTES):
        raise ValueError(f"feature bits {features:#x} do not fit in {MAX_FEATURE_BYTES} bytes")
    value = features.to_bytes((features.bit_length() + 7) // 8, "big")
    return bytes((ITEM_FEATURES, len(value))) + value


def decode_capabilities(payload: bytes) -> int:
    """The peer's feature bits; DecodeError on a truncated item or oversized feature field."""
    features = 0
    pos, size = 0, len(payload)
    while pos < size:
        if size - pos < 2:
            raise DecodeError("truncated capability item header")
        kind, length = payload[pos], payload[pos + 1]
        end = pos + 2 + length
        if end > size:
            raise DecodeError(f"capability item {kind} needs {length} bytes, has {size - pos - 2}")
        if kind == ITEM_FEATURES:
            if length > MAX_FEATURE_BYTES:
                raise DecodeError(f"feature field of {length} bytes > {MAX_FEATURE_BYTES}")
            features = int.from_bytes(payload[pos + 2 : end], "big")
        pos = end
    return features
