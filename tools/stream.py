"""Test traffic shared by send, listen and probe (CPython, stdlib sockets).

Payload: a 24-byte header, then padding up to the requested size:
    magic  b"MCR1"       4 bytes
    stream u32           random per sender run, per group (tells runs apart)
    seq    u64           0, 1, 2, ... per stream
    sent   u64           sender's time.time_ns() when handed to the socket
all big-endian. Anything else on the group is counted as "foreign".
"""

import math
import random
import socket
import struct
import time

from lib import mcast

MAGIC = b"MCR1"
HEADER = struct.Struct("!4sIQQ")
HEADER_SIZE = HEADER.size  # 24
MAX_SIZE = 65507  # largest UDP payload over IPv4
DEFAULT_TTL = 1  # the relay's own LAN; --ttl raises it for routed hops (never by default)
RCVBUF = 4 << 20


# -- addresses -----------------------------------------------------------------------------
def parse_endpoint(text):
    """'GROUP:PORT' -> (group, port) for a multicast group: the board's own parser
    (lib/mcast.py) and a multicast check; ValueError with the reason."""
    try:
        group, port = mcast.parse_endpoint(text)
    except ValueError as e:
        raise ValueError("%r is not GROUP:PORT: %s (e.g. 224.0.10.1:50000)" % (text, e)) from None
    if not mcast.is_multicast(mcast.parse_ipv4(group)):
        raise ValueError("%r: %s is not a multicast group (224.0.0.0-239.255.255.255)"
                         % (text, group))
    return group, port


def fmt_endpoint(ep):
    return "%s:%d" % ep


# -- payloads -----------------------------------------------------------------------------
def new_stream_id():
    return random.SystemRandom().getrandbits(32)


def make_payload(stream, seq, size, sent_ns=None):
    head = HEADER.pack(MAGIC, stream, seq, time.time_ns() if sent_ns is None else sent_ns)
    if size <= HEADER_SIZE:
        return head
    return head + bytes(size - HEADER_SIZE)


def parse_payload(data):
    """(stream, seq, sent_ns) or None when the datagram is not ours."""
    if len(data) < HEADER_SIZE or data[:4] != MAGIC:
        return None
    _, stream, seq, sent = HEADER.unpack_from(data)
    return stream, seq, sent


# -- statistics ------------------------------------------------------------------------------
def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    k = math.ceil(p / 100.0 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]


class Analyzer:
    """Loss, duplicates, reordering and latency of one numbered stream.

    expected: how many datagrams (seq 0..expected-1) the sender sent, when
    known (probe); otherwise the span first..last sequence number seen.
    A datagram is a duplicate when its seq was already received, reordered
    when it arrives after a higher seq (each such arrival counts once), lost
    when its seq never arrives.
    """

    def __init__(self, expected=None):
        self.expected = expected
        self.seen = set()
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        self.bytes = 0
        self.highest = -1
        self.lowest = None
        self.latencies_ns = []
        self.first_ns = None
        self.last_ns = None
        self.sources = {}

    def add(self, seq, sent_ns, recv_ns, size=0, src=None):
        self.received += 1
        if self.first_ns is None:
            self.first_ns = recv_ns
        self.last_ns = recv_ns
        if src is not None:
            self.sources[src] = self.sources.get(src, 0) + 1
        if seq in self.seen:
            self.duplicates += 1
            return "dup"
        self.seen.add(seq)
        self.bytes += size
        self.latencies_ns.append(recv_ns - sent_ns)
        if self.lowest is None or seq < self.lowest:
            self.lowest = seq
        if seq < self.highest:
            self.reordered += 1
            return "reordered"
        self.highest = seq
        return "ok"

    @property
    def unique(self):
        return len(self.seen)

    def span(self):
        if self.expected is not None:
            return self.expected
        if self.lowest is None:
            return 0
        return self.highest - self.lowest + 1

    def lost(self):
        if self.expected is not None:
            return self.expected - sum(1 for s in self.seen if s < self.expected)
        return self.span() - self.unique

    def summary(self):
        span = self.span()
        lost = self.lost()
        lat = sorted(self.latencies_ns)
        dur = (self.last_ns - self.first_ns) / 1e9 if self.first_ns is not None else 0.0

        def ms(v):
            return None if v is None else round(v / 1e6, 3)

        return {
            "expected": span,
            "received": self.received,
            "unique": self.unique,
            "lost": lost,
            "loss_pct": round(100.0 * lost / span, 3) if span else 0.0,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "bytes": self.bytes,
            "first_seq": self.lowest,
            "last_seq": self.highest if self.highest >= 0 else None,
            "latency_ms": {
                "min": ms(lat[0] if lat else None),
                "p50": ms(percentile(lat, 50)),
                "p90": ms(percentile(lat, 90)),
                "p99": ms(percentile(lat, 99)),
                "max": ms(lat[-1] if lat else None),
            },
            "duration_s": round(dur, 3),
            "rate_pps": round(self.unique / dur, 1) if dur > 0 else None,
            "mbit_s": round(self.bytes * 8 / dur / 1e6, 3) if dur > 0 else None,
            "sources": dict(self.sources),
        }


def format_throughput(rate_pps, mbit_s):
    """"200.1/s, 0.320 Mbit/s", or "n/a" when too little arrived to time it."""
    if rate_pps is None:
        return "n/a (too few datagrams to time)"
    return "%.1f/s, %.3f Mbit/s" % (rate_pps, mbit_s)


def format_latency(lat):
    if lat.get("p50") is None:
        return "latency n/a"
    return "latency ms p50 %.3f p90 %.3f p99 %.3f max %.3f" % (
        lat["p50"], lat["p90"], lat["p99"], lat["max"])


# -- sockets --------------------------------------------------------------------------------
def open_tx(iface=None, ttl=DEFAULT_TTL, loop=False):
    """A UDP socket for sending multicast: TTL, loopback, outgoing interface
    (IP_MULTICAST_IF = iface, an address of this host) when given."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if loop else 0)
    if iface:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    except OSError:
        pass
    s.bind((iface or "", 0))
    return s


def open_rx(group, port, iface=None):
    """A UDP socket receiving group:port only (bound to the group, as Linux
    allows), joined on iface (an address of this host; default: the
    interface of the multicast route)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError:
            pass
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    except OSError:
        pass
    try:
        s.bind((group, port))
    except OSError:
        s.bind(("", port))  # platforms that cannot bind a group address
    mreq = socket.inet_aton(group) + socket.inet_aton(iface or "0.0.0.0")
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    return s


class Pacer:
    """Spreads sends evenly at `rate` per second (0/None: as fast as
    possible). `due()` says how many should have been sent by now."""

    def __init__(self, rate):
        self.rate = rate or 0
        self.start = time.perf_counter()

    def due(self):
        if not self.rate:
            return 1 << 62
        return int((time.perf_counter() - self.start) * self.rate) + 1

    def sleep_until(self, n):
        """Sleep until datagram number n (0-based) is due."""
        if not self.rate:
            return
        t = self.start + n / self.rate - time.perf_counter()
        if t > 0:
            time.sleep(t)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_on_sigterm():
    """Let SIGTERM (`kill`, `timeout`, a parent tool) end a run like Ctrl-C:
    the summary is still printed. Also undoes an inherited 'ignore SIGINT'
    (background jobs). Main thread only; a no-op elsewhere."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def padded_size(size):
    if size < HEADER_SIZE:
        raise ValueError("--size must be at least %d (the header)" % HEADER_SIZE)
    if size > MAX_SIZE:
        raise ValueError("--size must be at most %d" % MAX_SIZE)
    return size
