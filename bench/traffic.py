"""Sender and receiver (CPython) for the benchmark's private namespace.

* :class:`Sender` sends 200-byte datagrams to one or more groups from
  ``SENDER_IP``. ``lockstep`` sends one, waits until the receiver has it, then
  the next (for valgrind runs: nothing is ever lost, the relay never queues).
  ``paced`` offers a fixed rate for a fixed time with ``sendmmsg(2)`` through
  ctypes (batches of up to 32 per system call, time-based pacing), which is
  several times faster than any contender: :func:`sender_ceiling` measures it.
* :class:`Receiver` joins the output groups on one socket; kernel receive
  timestamps (``SO_TIMESTAMPNS``) give the latency.
* :func:`udp_counters` reads this namespace's UDP counters: in rate trials the
  relay's forwarded datagrams are ``OutDatagrams`` minus what the sender sent
  (no receiving process competes for the two CPUs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import socket
import struct
import time

from .ns import SENDER_IP

PAYLOAD = 200
_BATCH = 32
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def udp_counters() -> dict[str, int]:
    """This namespace's /proc/net/snmp "Udp:" counters."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], (int(v) for v in rows[1][1:]), strict=True))


def _mreq(group: str, iface: str = SENDER_IP) -> bytes:
    return socket.inet_aton(group) + socket.inet_aton(iface)


# -- sendmmsg through ctypes ------------------------------------------------------------------
class _IOVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_IOVec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


def _libc():
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = lib.sendmmsg
    fn.argtypes = [ctypes.c_int, ctypes.POINTER(_MMsgHdr), ctypes.c_uint, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


class Sender:
    def __init__(self, groups: list[tuple[str, int]], payload: int = PAYLOAD):
        self.groups = list(groups)
        self.payload = payload
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(SENDER_IP))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock = s
        self.sent = 0
        self._mm = None

    def close(self) -> None:
        self.sock.close()

    def data(self, seq: int) -> bytes:
        """Payload: sequence number and send time (CLOCK_REALTIME ns), zero-padded."""
        return struct.pack("!QQ", seq, time.time_ns()).ljust(self.payload, b"\0")

    def one(self, seq: int) -> None:
        self.sock.sendto(self.data(seq), self.groups[seq % len(self.groups)])
        self.sent += 1

    def lockstep(
        self, n: int, receiver: Receiver, timeout: float = 10.0, start: int = 0, gap: float = 0.0
    ) -> int:
        """Send n datagrams one at a time, each only after the previous one came out
        (and `gap` seconds more). Returns how many came out (the rest timed out)."""
        got = 0
        for i in range(start, start + n):
            self.one(i)
            if receiver.wait_one(timeout):
                got += 1
            if gap:
                time.sleep(gap)
        return got

    def timed(self, rate: float, n: int, start: int = 0) -> None:
        """n timestamped datagrams, one every 1/rate s (sleep-paced, for latency)."""
        t0 = time.monotonic()
        for i in range(n):
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.one(start + i)

    # -- fast path: sendmmsg ------------------------------------------------------------------
    def _prepare_mmsg(self):
        if self._mm is not None:
            return self._mm
        fn = _libc()
        buf = ctypes.create_string_buffer(b"\x5a" * self.payload, self.payload)
        names = []
        for g, p in self.groups:
            sa = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", p, socket.inet_aton(g))
            names.append(ctypes.create_string_buffer(sa, len(sa)))
        iov = (_IOVec * 1)()
        iov[0].iov_base = ctypes.cast(buf, ctypes.c_void_p)
        iov[0].iov_len = self.payload
        # Batch i starts at message i % len(groups) of a long table, so a
        # round-robin over the groups continues across batches.
        k = len(self.groups)
        table = (_MMsgHdr * (_BATCH + k))()
        for j in range(_BATCH + k):
            h = table[j].msg_hdr
            name = names[j % k]
            h.msg_name = ctypes.cast(name, ctypes.c_void_p)
            h.msg_namelen = 16
            h.msg_iov = iov
            h.msg_iovlen = 1
        base = ctypes.addressof(table)
        size = ctypes.sizeof(_MMsgHdr)
        ptrs = [ctypes.cast(base + size * j, ctypes.POINTER(_MMsgHdr)) for j in range(k)]
        self._mm = (fn, self.sock.fileno(), ptrs, (buf, names, iov, table))
        return self._mm

    def paced(self, rate: float, duration: float) -> tuple[int, float]:
        """Offer `rate` datagrams/s for `duration` s. Returns (sent, seconds taken)."""
        fn, fd, ptrs, _keep = self._prepare_mmsg()
        k = len(ptrs)
        sent = 0
        now = t0 = time.monotonic()
        end = t0 + duration
        mono = time.monotonic
        sleep = time.sleep
        while now < end:
            due = int((now - t0) * rate) - sent
            if due <= 0:
                wait = (sent + 1) / rate - (now - t0)
                if wait > 0.0003:
                    sleep(wait - 0.0002)
                now = mono()
                continue
            n = fn(fd, ptrs[sent % k], due if due < _BATCH else _BATCH, 0)
            if n < 0:
                err = ctypes.get_errno()
                if err in (11, 105):  # EAGAIN / ENOBUFS: try again
                    now = mono()
                    continue
                raise OSError(err, os.strerror(err))
            sent += n
            now = mono()
        self.sent += sent
        return sent, mono() - t0


class Receiver:
    def __init__(self, groups: list[tuple[str, int]]):
        ports = {p for _g, p in groups}
        if len(ports) != 1:
            raise ValueError("one receive port for all output groups")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.bind(("0.0.0.0", ports.pop()))
        for g, _p in groups:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _mreq(g))
        self.sock = s
        self.count = 0

    def close(self) -> None:
        self.sock.close()

    def _read(self):
        data, anc, _flags, _addr = self.sock.recvmsg(4096, 64)
        t_rx = None
        for level, kind, val in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", val[:16])
                t_rx = sec * 1_000_000_000 + nsec
        self.count += 1
        return data, t_rx

    def wait_one(self, timeout: float):
        """The next datagram's (data, kernel receive time ns), or None after timeout."""
        r, _w, _x = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        return self._read()

    def drain(self, quiet: float = 0.2) -> list:
        """Everything that arrives until `quiet` seconds pass with nothing."""
        out = []
        while True:
            got = self.wait_one(quiet)
            if got is None:
                return out
            out.append(got)


def sender_ceiling(groups: list[tuple[str, int]], seconds: float = 1.0) -> float:
    """Datagrams/s the paced sender reaches when asked for far more than any relay
    handles, with a joined socket on every group that never reads (delivery is
    attempted, the full queue drops)."""
    sinks = []
    try:
        for g, p in groups:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((g, p))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _mreq(g))
            sinks.append(s)
        snd = Sender(groups)
        try:
            sent, took = snd.paced(50_000_000, seconds)
        finally:
            snd.close()
        return sent / took
    finally:
        for s in sinks:
            s.close()
