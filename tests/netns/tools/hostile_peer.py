"""A hostile peer for the netns tests: connects to a daemon and misbehaves in one chosen way.

    python hostile_peer.py HOST PORT MODE

Modes: garbage (random bytes), huge-handshake (valid preamble, then a huge length),
truncated (half a handshake message, then close), huge-record (complete the handshake, then a
record announcing 2 GiB), bad-record (complete the handshake, then a record that fails
authentication), bad-control (complete the handshake, then a well-sealed CONTROL frame holding
garbage TLVs), forged-source (complete the handshake, then send the daemon, whose public key is
the 4th argument, one end-to-end sealed IPv6 packet whose inner source lies in another node's /64
and one whose source is honestly ours). Prints what the daemon did: "closed" when it dropped us.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

from hyphal.crypto.e2e import E2ECrypto
from hyphal.crypto.handshake import LinkHandshake
from hyphal.dataplane import ipv6
from hyphal.identity import NodeIdentity, address_bytes_for_public_key
from hyphal.wire.data import KIND_IPV6
from hyphal.wire.link import FRAME_CONTROL, FRAME_DATA, encode_frame


def handshake(sock: socket.socket, me: NodeIdentity | None = None) -> tuple[object, bytes]:
    hs = LinkHandshake(
        me or NodeIdentity.generate(), initiator=True, network_name=None, network_key=None
    )
    sock.sendall(hs.initial_bytes())
    while not hs.complete:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("daemon closed during the handshake")
        reply = hs.receive(data)
        if reply:
            sock.sendall(reply)
    sender, _receiver, _left = hs.split()
    return sender, b""


def wait_closed(sock: socket.socket, timeout: float = 5.0) -> str:
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return "closed"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except TimeoutError:
        return "still-open"


def forged_source(sock: socket.socket, victim: bytes) -> str:
    me = NodeIdentity.generate()
    sender, _ = handshake(sock, me)
    e2e = E2ECrypto(me)
    victim_address = NodeIdentity.generate().address_bytes  # some other node's /64
    target = address_bytes_for_public_key(victim)
    for source in (victim_address, me.address_bytes):
        packet = ipv6.echo_request(source, target, 7, 1, b"forged?")
        sealed = e2e.seal(victim, KIND_IPV6, packet, 64)
        sock.sendall(bytes(sender.seal(encode_frame(FRAME_DATA, sealed))))  # type: ignore[attr-defined]
    return "sent"


def main() -> None:
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sock = socket.create_connection((host, port), timeout=5)
    try:
        if mode == "garbage":
            sock.sendall(os.urandom(4096))
        elif mode == "huge-handshake":
            hs = LinkHandshake(
                NodeIdentity.generate(), initiator=True, network_name=None, network_key=None
            )
            first = hs.initial_bytes()
            sock.sendall(first[: len(first) - 2] + b"\xff\xff" + os.urandom(100))
        elif mode == "truncated":
            hs = LinkHandshake(
                NodeIdentity.generate(), initiator=True, network_name=None, network_key=None
            )
            first = hs.initial_bytes()
            sock.sendall(first[: len(first) // 2])
            sock.shutdown(socket.SHUT_WR)
        elif mode == "forged-source":
            print(forged_source(sock, bytes.fromhex(sys.argv[4])))
            return
        else:
            sender, _ = handshake(sock)
            if mode == "huge-record":
                sock.sendall(struct.pack(">I", 0x7FFFFFFF) + os.urandom(64))
            elif mode == "bad-record":
                sock.sendall(struct.pack(">I", 64) + os.urandom(64))
            elif mode == "bad-control":
                sock.sendall(
                    bytes(
                        sender.seal(encode_frame(FRAME_CONTROL, b"\x08\xff\xff" + os.urandom(40)))
                    )
                )  # type: ignore[attr-defined]
            else:
                raise SystemExit(f"unknown mode {mode}")
        print(wait_closed(sock))
    except (ConnectionResetError, BrokenPipeError):
        print("closed")
    finally:
        sock.close()


if __name__ == "__main__":
    main()
