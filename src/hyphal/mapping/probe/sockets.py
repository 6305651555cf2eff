"""Probe sockets: the asyncio side of probing (one channel per measurement).

Every channel sends probes with a chosen TTL and puts what comes back on ``replies`` as
``(seq, Reply, received_at)``; the planner decides what the answers mean. Two privilege modes:

* **unprivileged** (any user where Linux allows it):
  ICMP through a *ping socket* (``SOCK_DGRAM``/``IPPROTO_ICMP``, allowed for the groups in
  ``net.ipv4.ping_group_range``); UDP through an ordinary UDP socket; TCP through a
  non-blocking ``connect()``. ICMP errors (time exceeded, unreachable) come back on the socket's
  error queue (``IP_RECVERR``/``IPV6_RECVERR``) with the router's address, the type and code,
  and (``IP_RECVTTL``/``IPV6_RECVHOPLIMIT``) the reply's TTL. The quoted TTL is not available.
* **raw** (``CAP_NET_RAW``): ICMP echo on a raw socket built byte for byte, answers read off the
  raw socket with the whole quoted header, so the quoted TTL is kept too. UDP and TCP use the
  unprivileged sockets in both modes (the kernel builds exactly the packets Paris needs).

The kernel retransmits an unanswered SYN after its initial RTO (1 s); a TCP probe's socket is
closed before that (waits are capped at ``TCP_MAX_WAIT``), so every packet on the wire is one
the rate limiter counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import time
from ipaddress import IPv4Address, IPv6Address, ip_address

from hyphal.mapping.probe import packets
from hyphal.mapping.probe.plan import Reply

IP_RECVERR = 11
IP_RECVTTL = 12
IPV6_RECVERR = 25
IPV6_AUTOFLOWLABEL = 70
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
TCP_MAX_WAIT = 0.9
_EE = struct.Struct("=IBBBBII")

ReplyItem = tuple[int, Reply, float]


class ProbeSocketError(OSError):
    """A probe socket could not be opened (missing privilege, address family, ...)."""


def family_of(target: str) -> int:
    return socket.AF_INET6 if isinstance(ip_address(target), IPv6Address) else socket.AF_INET


def _offender(data: bytes, v6: bool) -> str | None:
    raw = data[_EE.size :]
    try:
        if v6 and len(raw) >= 24:
            return str(IPv6Address(raw[8:24]))
        if not v6 and len(raw) >= 8:
            return str(IPv4Address(raw[4:8]))
    except ValueError:
        return None
    return None


class _ErrQueue:
    """Reads a socket's error queue and its TTL ancillary data."""

    @staticmethod
    def setup(sock: socket.socket, v6: bool) -> None:
        if v6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)

    @staticmethod
    def parse(
        ancdata: list[tuple[int, int, bytes]], v6: bool
    ) -> tuple[tuple[int, int, int, str | None] | None, int | None]:
        """((origin, type, code, offender) of the error, reply TTL) from ancillary data."""
        err = None
        ttl = None
        for level, kind, data in ancdata:
            if v6 and level == socket.IPPROTO_IPV6 and kind == IPV6_RECVERR and len(data) >= 16:
                _e, origin, typ, code, _p, _i, _d = _EE.unpack_from(data)
                err = (origin, typ, code, _offender(data, True))
            elif not v6 and level == socket.IPPROTO_IP and kind == IP_RECVERR and len(data) >= 16:
                _e, origin, typ, code, _p, _i, _d = _EE.unpack_from(data)
                err = (origin, typ, code, _offender(data, False))
            elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
                ttl = int.from_bytes(data[:4], "little")
            elif level == socket.IPPROTO_IP and kind == socket.IP_TTL and len(data) >= 1:
                ttl = data[0] if len(data) == 1 else int.from_bytes(data[:4], "little")
        return err, ttl

    @staticmethod
    def icmp_error(
        ancdata: list[tuple[int, int, bytes]], v6: bool
    ) -> tuple[str, int, int, int | None] | None:
        """(offender, type, code, reply TTL) of an ICMP error from a router or the target; None
        for anything else on the error queue (local errors, errors without an offender)."""
        err, ttl = _ErrQueue.parse(ancdata, v6)
        if err is None:
            return None
        origin, typ, code, source = err
        if source is None or origin not in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
            return None
        return source, typ, code, ttl


def _probe_socket(v6: bool, kind: int, port: int) -> socket.socket:
    """A non-blocking UDP or TCP socket bound to ``port``, reading ICMP errors from its error
    queue, with a fixed IPv6 flow label (closed again if any step fails)."""
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, kind)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _ErrQueue.setup(sock, v6)
        _fixed_flowlabel(sock, v6)
        sock.bind(("::" if v6 else "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def _fixed_flowlabel(sock: socket.socket, v6: bool) -> None:
    """IPv6: flow label 0 for every probe. Linux derives an automatic label from the socket's
    random hash (new per socket and per connect()), and routers may hash on the label: a Paris
    flow must not carry a moving one."""
    if v6:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, 0)


def _set_ttl(sock: socket.socket, v6: bool, ttl: int) -> None:
    if v6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)


def _is_final_unreach(v6: bool, typ: int, code: int, proto: str) -> bool:
    """Port unreachable (UDP) or the like: the destination host itself answered."""
    if proto == "udp":
        return (typ, code) == ((1, 4) if v6 else (3, 3))
    return False


def _is_unreach(v6: bool, typ: int) -> bool:
    return typ == (packets.ICMP6_DEST_UNREACH if v6 else packets.ICMP_DEST_UNREACH)


class Channel:
    """Base: a target, a queue of replies, a loop; subclasses own the sockets."""

    proto = "icmp"

    def __init__(self, target: str, contact: bytes, flow_id: int, paris: bool) -> None:
        self.target = target
        self.v6 = family_of(target) == socket.AF_INET6
        self.contact = contact
        self.flow_id = flow_id
        self.paris = paris
        self.replies: asyncio.Queue[ReplyItem] = asyncio.Queue(maxsize=256)
        self.src_port: int | None = None
        self.dst_port: int | None = None
        self.dropped = 0
        self._loop = asyncio.get_running_loop()

    def _put(self, seq: int, reply: Reply) -> None:
        try:
            self.replies.put_nowait((seq, reply, time.monotonic()))
        except asyncio.QueueFull:
            self.dropped += 1

    def send(self, seq: int, ttl: int, index: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SocketChannel(Channel):
    """A channel reading one socket for its whole life (ICMP, UDP)."""

    sock: socket.socket

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


class _PortChannel(Channel):
    """A channel whose flow is its ports (UDP, TCP): Paris fixes both, classic moves one."""

    def __init__(
        self, target: str, contact: bytes, flow_id: int, paris: bool, dst_port: int | None = None
    ) -> None:
        super().__init__(target, contact, flow_id, paris)
        self._base_dport = dst_port
        self.src_port, self.dst_port = packets.ports_for(self.proto, flow_id, 0, paris, dst_port)

    def _ports(self, index: int) -> tuple[int, int]:
        """(source, destination) port of a trace's ``index``-th probe."""
        return packets.ports_for(self.proto, self.flow_id, index, self.paris, self._base_dport)


class IcmpChannel(_SocketChannel):
    """ICMP echo over a ping socket (unprivileged) or a raw socket (``raw=True``)."""

    proto = "icmp"

    def __init__(
        self, target: str, contact: bytes, flow_id: int, paris: bool, *, raw: bool = False
    ) -> None:
        super().__init__(target, contact, flow_id, paris)
        self.raw = raw
        family = socket.AF_INET6 if self.v6 else socket.AF_INET
        proto = socket.IPPROTO_ICMPV6 if self.v6 else socket.IPPROTO_ICMP
        try:
            self.sock = socket.socket(family, socket.SOCK_RAW if raw else socket.SOCK_DGRAM, proto)
        except PermissionError as exc:
            hint = (
                "run with CAP_NET_RAW"
                if raw
                else "allow ping sockets: sysctl net.ipv4.ping_group_range='0 2147483647', or use --raw"
            )
            raise ProbeSocketError(exc.errno, f"cannot open an ICMP socket ({hint})") from exc
        self.sock.setblocking(False)
        _fixed_flowlabel(self.sock, self.v6)
        if raw:
            self.ident = (id(self) ^ int(time.monotonic_ns())) & 0xFFFF
            if self.v6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        else:
            _ErrQueue.setup(self.sock, self.v6)
            self.sock.bind(("::" if self.v6 else "0.0.0.0", 0))
            self.ident = self.sock.getsockname()[1]
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def send(self, seq: int, ttl: int, index: int) -> None:
        _set_ttl(self.sock, self.v6, ttl)
        packet = packets.icmp_echo(
            self.ident, seq, self.contact, self.flow_id if self.paris else None, v6=self.v6
        )
        self.sock.sendto(packet, (self.target, 0))

    def _readable(self) -> None:
        for _ in range(64):
            if not self.raw:
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    self._read_errqueue()
            try:
                data, anc, _flags, addr = self.sock.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an error surfaced on the normal path; the error queue has it
            self._on_packet(data, anc, addr[0])

    def _read_errqueue(self) -> None:
        while True:
            data, anc, _flags, _addr = self.sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
            error = _ErrQueue.icmp_error(anc, self.v6)
            if error is None:
                continue
            source, typ, code, ttl = error
            try:
                _kind, _ident, seq = packets.echo_seq(data)
            except packets.PacketError:
                continue
            self._put(
                seq,
                Reply(source, typ, code, ttl, None, False, _is_unreach(self.v6, typ), self._flow()),
            )

    def _flow(self) -> int | None:
        return self.flow_id if self.paris else None

    def _on_packet(self, data: bytes, anc: list[tuple[int, int, bytes]], source: str) -> None:
        try:
            if self.raw and not self.v6:
                msg = packets.parse_icmp4(data)
            else:
                _err, hop = _ErrQueue.parse(anc, self.v6)
                if self.v6 and self.raw:
                    msg = packets.parse_icmp6(data, source.split("%")[0], hop)
                else:  # ping socket: only our echo replies arrive here
                    kind, _ident, seq = packets.echo_seq(data)
                    if kind in (packets.ICMP_ECHO_REPLY, packets.ICMP6_ECHO_REPLY):
                        self._put(seq, Reply(source, kind, 0, hop, None, True, False, self._flow()))
                    return
        except packets.PacketError:
            return
        v6 = self.v6
        if msg.type in (packets.ICMP_ECHO_REPLY, packets.ICMP6_ECHO_REPLY) and (
            msg.type == (packets.ICMP6_ECHO_REPLY if v6 else packets.ICMP_ECHO_REPLY)
        ):
            try:
                _k, ident, seq = packets.echo_seq(msg.quoted_icmp)
            except packets.PacketError:
                return
            if ident == self.ident and msg.source == self.target:
                self._put(
                    seq,
                    Reply(
                        msg.source,
                        msg.type,
                        msg.code,
                        msg.reply_ttl,
                        None,
                        True,
                        False,
                        self._flow(),
                    ),
                )
            return
        if msg.quoted_dst != self.target:
            return
        try:
            kind, ident, seq = packets.echo_seq(msg.quoted_icmp)
        except packets.PacketError:
            return
        if ident != self.ident or kind not in (
            packets.ICMP_ECHO_REQUEST,
            packets.ICMP6_ECHO_REQUEST,
        ):
            return
        self._put(
            seq,
            Reply(
                msg.source,
                msg.type,
                msg.code,
                msg.reply_ttl,
                msg.quoted_ttl,
                False,
                _is_unreach(v6, msg.type),
                self._flow(),
            ),
        )


class UdpChannel(_SocketChannel, _PortChannel):
    """UDP probes from one socket; Paris: both ports fixed; classic: the destination port moves."""

    proto = "udp"

    def __init__(
        self, target: str, contact: bytes, flow_id: int, paris: bool, dst_port: int | None = None
    ) -> None:
        super().__init__(target, contact, flow_id, paris, dst_port)
        self.sock = _probe_socket(self.v6, socket.SOCK_DGRAM, self._ports(0)[0])
        self._loop.add_reader(self.sock.fileno(), self._readable)
        self._flows: dict[int, int] = {}
        self._connected: int | None = None

    def send(self, seq: int, ttl: int, index: int) -> None:
        _sport, dport = self._ports(index)
        self._flows[seq] = dport
        _set_ttl(self.sock, self.v6, ttl)
        if self._connected != dport:  # connected: the kernel hands this socket our errors
            self.sock.connect((self.target, dport))
            self._connected = dport
        self.sock.send(packets.udp_payload(seq, self.contact))

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                break
            error = _ErrQueue.icmp_error(anc, self.v6)
            if error is None:
                continue
            source, typ, code, ttl = error
            try:
                seq = packets.payload_seq(data)
            except packets.PacketError:
                continue
            final = _is_final_unreach(self.v6, typ, code, "udp") and source == self.target
            flow = self.flow_id if self.paris else self._flows.get(seq)
            self._put(
                seq,
                Reply(
                    source,
                    typ,
                    code,
                    ttl,
                    None,
                    final,
                    _is_unreach(self.v6, typ) and not final,
                    flow,
                ),
            )
        for _ in range(64):  # a UDP answer from the target (a service on that port)
            try:
                data = self.sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue


class TcpChannel(_PortChannel):
    """TCP SYN probes through non-blocking ``connect()`` from a fixed source port (Paris)."""

    proto = "tcp"

    def __init__(
        self, target: str, contact: bytes, flow_id: int, paris: bool, dst_port: int | None = None
    ) -> None:
        super().__init__(target, contact, flow_id, paris, dst_port)
        self._open: dict[int, tuple[socket.socket, int]] = {}

    def send(self, seq: int, ttl: int, index: int) -> None:
        sport, dport = self._ports(index)
        for old in list(self._open):
            self._drop(old)  # one SYN at a time per channel: the same 4-tuple is reused
        sock = _probe_socket(self.v6, socket.SOCK_STREAM, sport)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
            _set_ttl(sock, self.v6, ttl)
            code = sock.connect_ex((self.target, dport))
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, f"connect: {errno.errorcode.get(code, code)}")
        except OSError:
            sock.close()
            raise
        self._open[seq] = (sock, dport)
        fd = sock.fileno()
        self._loop.add_reader(fd, self._readable, seq)
        self._loop.add_writer(fd, self._writable, seq)

    def _flow(self, seq: int) -> int:
        entry = self._open.get(seq)
        return self.flow_id if self.paris or entry is None else entry[1]

    def _readable(self, seq: int) -> None:
        entry = self._open.get(seq)
        if entry is None:
            return
        sock = entry[0]
        try:
            _data, anc, _flags, _addr = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            self._writable(seq)
            return
        except OSError:
            return
        error = _ErrQueue.icmp_error(anc, self.v6)
        if error is not None:
            source, typ, code, ttl = error
            self._put(
                seq,
                Reply(
                    source, typ, code, ttl, None, False, _is_unreach(self.v6, typ), self._flow(seq)
                ),
            )
            self._drop(seq)

    def _writable(self, seq: int) -> None:
        entry = self._open.get(seq)
        if entry is None:
            return
        code = entry[0].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code in (0, errno.ECONNREFUSED):  # SYN-ACK or RST: the destination answered
            self._put(seq, Reply(self.target, None, None, None, None, True, False, self._flow(seq)))
            self._drop(seq)
        elif code in (errno.EINPROGRESS, errno.EALREADY):
            return
        else:
            self._loop.call_soon(self._readable, seq)  # the error queue may explain it

    def _drop(self, seq: int) -> None:
        entry = self._open.pop(seq, None)
        if entry is None:
            return
        sock = entry[0]
        with contextlib.suppress(Exception):
            self._loop.remove_reader(sock.fileno())
            self._loop.remove_writer(sock.fileno())
        sock.close()

    def expire(self, seq: int) -> None:
        """Close the socket of a probe that timed out, before the kernel would resend its SYN."""
        self._drop(seq)

    def close(self) -> None:
        for seq in list(self._open):
            self._drop(seq)


def open_channel(
    proto: str,
    target: str,
    contact: bytes,
    flow_id: int,
    paris: bool = True,
    raw: bool = False,
    dst_port: int | None = None,
) -> Channel:
    if proto == "icmp":
        return IcmpChannel(target, contact, flow_id, paris, raw=raw)
    if proto == "udp":
        return UdpChannel(target, contact, flow_id, paris, dst_port)
    if proto == "tcp":
        return TcpChannel(target, contact, flow_id, paris, dst_port)
    raise ValueError(f"unknown probe protocol {proto!r} (icmp, udp, tcp)")
