"""A neighbour that completes a real handshake, then floods routing TLVs and never reads.

    link_flooder.py HOST MODE SECONDS [PREFIX_HEX ...]

Modes:
* ``hello-flood``: frames of 500 Hellos each, as fast as the daemon takes them; every Hello asks
  for an IHU, and the flooder reads none (its receive buffer is 4 KiB).
* ``seqno-flood``: frames of 500 distinct seqno requests each: random overlay prefixes, and the
  given known prefixes with random router ids and rising seqnos (which an unguarded node would
  forward toward their origins, hop by hop); a Hello every 0.5 s keeps the link alive.
Prints ``sent N frames`` when SECONDS have passed (or ``closed after N frames`` when the daemon
dropped the link).
"""

from __future__ import annotations

import os
import sys
import time

from hyphal.testing.rawlink import RawLink
from hyphal.wire import control

PORT = 9651
PER_FRAME = 500


def seqno_requests(known: list[bytes], seqno: int) -> list[control.Tlv]:
    tlvs: list[control.Tlv] = [control.Hello(seqno & 0xFFFF, 50, 0)]
    for i in range(PER_FRAME):
        if known and i % 2:
            prefix = known[i % len(known)]
        else:
            prefix = bytes([0x04 | (os.urandom(1)[0] & 1)]) + os.urandom(7)
        tlvs.append(control.SeqnoRequest(prefix, (seqno + i) & 0xFFFF, 64, os.urandom(40)))
    return tlvs


def main() -> None:
    host, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    known = [bytes.fromhex(p) for p in sys.argv[4:]]
    link = RawLink(host, PORT, receive_buffer=4096)
    end = time.monotonic() + seconds
    frames = 0
    try:
        while time.monotonic() < end:
            if mode == "hello-flood":
                link.send_tlvs([link.hello() for _ in range(PER_FRAME)])
            elif mode == "seqno-flood":
                link.send_tlvs(seqno_requests(known, frames * PER_FRAME))
            else:
                raise SystemExit(f"unknown mode {mode}")
            frames += 1
    except OSError:
        print(f"closed after {frames} frames", flush=True)
        return
    finally:
        link.close()
    print(f"sent {frames} frames", flush=True)


if __name__ == "__main__":
    main()
