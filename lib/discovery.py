# Discovery responder: answers "MCRELAY?" queries sent to the discovery group
# with one small unicast JSON reply (who am I, what do I forward, how much).
#
# It costs no socket: it shares the relay's transmit socket, which Relay.open()
# binds to 0.0.0.0:<discovery port> and registers in its poll loop. The relay
# calls handle() when that socket is readable (one datagram per call), tick()
# every 100 ms, rejoin() after a link flap and close() on stop. Nothing here
# runs on the forward path of a datagram.
#
# Amplification: a reply (a few hundred bytes, never more than REPLY_MAX) is
# larger than the 8-byte query, but it goes by unicast to the query's source
# only, and replies are rate-limited (token bucket, discovery.replies_per_s
# per second, at most that many in a burst). A spoofed source can aim replies
# at a third party, but never more than replies_per_s * REPLY_MAX bytes/s per
# board. See docs/discovery.md.
import json
import select
import time

import mcast
from version import VERSION

MAGIC = b"MCRELAY?"
REPLY_MAX = 1200  # bytes: one unfragmented datagram on any LAN, cap for amplification
NONCE_MAX = 32  # bytes after MAGIC that are echoed back
PROTO = 1  # reply format version ("mcrelay" field)
_RECV_MAX = 64  # a query is MAGIC + nonce; anything longer is cut here and is bad
_NONCE_OK = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:"
_POLLIN = 1
_POLLERR = 8

# A route's drop counters (relay.COUNTERS after rx, tx, bytes): "drop" is their
# sum; a full reply also carries each one.
DROPS = ("big", "empty", "own", "rate", "source", "send_err", "recv_err")


def _dumps(obj):
    try:
        return json.dumps(obj, separators=(",", ":"))
    except TypeError:  # a build without separators: still valid JSON
        return json.dumps(obj)


def board_id():
    """machine.unique_id() as lowercase hex ('' when there is no machine module)."""
    try:
        import machine

        return "".join("%02x" % b for b in machine.unique_id())
    except (ImportError, AttributeError):
        return ""


def parse_query(data):
    """A datagram's payload -> the nonce (str, maybe '') if it is a query,
    else None. The nonce is what follows MAGIC: at most NONCE_MAX bytes of
    letters, digits and -_.: (anything else makes the datagram not a query)."""
    if data[:8] != MAGIC:
        return None
    rest = data[8:]
    if len(rest) > NONCE_MAX:
        return None
    for b in rest:
        if b not in _NONCE_OK:
            return None
    return rest.decode()


def _route_entry(rs, level):
    """One route of relay.stats() as reply JSON. level 0: everything; 1: no
    name and no per-reason drop detail (only the drop total)."""
    drop = 0
    for k in DROPS:
        drop += rs.get(k, 0)
    e = {"from": rs["from"], "to": rs["to"], "rx": rs["rx"], "tx": rs["tx"],
         "bytes": rs["bytes"], "drop": drop}
    if level == 0:
        e["name"] = rs.get("name", "")
        for k in DROPS:
            e[k] = rs.get(k, 0)
    return e


def build_reply(info, stats, nonce="", limit=REPLY_MAX):
    """The reply datagram (bytes, never longer than limit).

    info: {"id", "version", "ip"} plus optional extras ("disc": responder
    counters); stats: relay.stats(). When the full reply is too long, the
    per-route detail goes first, then routes from the end (their number is in
    "more"), then the extras."""
    base = {"mcrelay": PROTO, "id": info["id"], "version": info["version"], "ip": info["ip"],
            "uptime_s": stats["uptime_s"], "link": stats.get("link", "up"),
            "link_flaps": stats["link_flaps"]}
    for k in ("rejoins", "reactivations", "loop_errors"):
        if k in stats:
            base[k] = stats[k]
    if nonce:
        base["nonce"] = nonce
    if "disc" in info:
        base["disc"] = info["disc"]
    routes = stats["routes"]
    for level in (0, 1):
        base["routes"] = [_route_entry(r, level) for r in routes]
        out = _dumps(base).encode()
        if len(out) <= limit:
            return out
    # Still too long (only with absurd configs or limits): fewer routes.
    entries = base["routes"]
    while entries:
        entries.pop()
        base["more"] = len(routes) - len(entries)
        out = _dumps(base).encode()
        if len(out) <= limit:
            return out
    base.pop("disc", None)
    for k in ("rejoins", "reactivations", "loop_errors"):
        base.pop(k, None)
    out = _dumps(base).encode()
    if len(out) <= limit:
        return out
    return _dumps({"mcrelay": PROTO, "id": info["id"], "more": len(routes)}).encode()[:limit]


class Responder:
    """Lives on the relay's TX socket; see the module comment for the contract."""

    def __init__(self, relay, sock):
        self.relay = relay
        self.sock = sock
        cfg = relay.cfg["discovery"]
        self.group, self.port = mcast.parse_endpoint(cfg["group"])
        self.rate = cfg["replies_per_s"]
        self.burst = self.rate if self.rate > 0 else 0
        self.tokens = self.burst
        self._credit = 0  # refill remainder (rate * ms not yet a whole reply)
        self._last = time.ticks_ms()
        self.id = board_id()
        self.queries = 0  # well-formed queries received
        self.replies = 0  # replies sent
        self.ratelimited = 0  # queries not answered: bucket empty
        self.bad = 0  # anything else that arrived on the socket
        self.errors = 0  # receive/send failures, group join failures
        self.last_size = 0  # length of the last reply sent (bytes)
        self.iface = relay.iface
        self._poll = None  # private poll (made on first use): handle() never blocks
        mcast.join(sock, self.group, self.iface)  # OSError: Relay.open() closes and retries
        self._joined = True

    # -- relay contract ---------------------------------------------------------
    def handle(self):
        """Read exactly one datagram (only if one is waiting) and answer it."""
        if not self._ready():
            return
        try:
            data, addr = self.sock.recvfrom(_RECV_MAX)
        except OSError:
            self.errors += 1
            return
        nonce = parse_query(data)
        if nonce is None:
            self.bad += 1
            return
        port = mcast.addr_port(addr)
        ip = mcast.addr_ip(addr)
        if port == 0 or ip == mcast.ANY or mcast.is_multicast(mcast.parse_ipv4(ip)):
            self.bad += 1  # nowhere sensible to answer (or a spoofed group source)
            return
        self.queries += 1
        if self.tokens <= 0:
            self.ratelimited += 1
            return
        self.tokens -= 1
        try:
            out = self.reply(nonce)
            # The address as recvfrom gave it: a tuple on the board, raw
            # sockaddr bytes on the unix port; sendto takes either back.
            self.sock.sendto(out, addr)
        except OSError:
            self.errors += 1
            return
        except MemoryError:
            self.errors += 1
            return
        self.replies += 1
        self.last_size = len(out)

    def _ready(self):
        """A datagram (or an error, which recvfrom returns at once) is waiting."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self.sock, _POLLIN)
        for ev in self._poll.ipoll(0):
            return ev[1] & (_POLLIN | _POLLERR)
        return False

    def tick(self, now_ms):
        elapsed = time.ticks_diff(now_ms, self._last)
        self._last = now_ms
        if elapsed <= 0 or self.tokens >= self.burst:
            self._credit = 0
            return
        self._credit += self.rate * elapsed
        add = self._credit // 1000
        if add:
            self._credit -= add * 1000
            t = self.tokens + add
            self.tokens = t if t < self.burst else self.burst

    def rejoin(self, fresh=False):
        if not fresh and self._joined:
            try:
                mcast.leave(self.sock, self.group, self.iface)
            except OSError:
                pass
        try:
            mcast.join(self.sock, self.group, self.iface)
            self._joined = True
        except OSError:
            self._joined = False
            self.errors += 1

    def close(self):
        """Leave the group (lwIP keeps memberships after close); the relay
        closes the socket itself."""
        if self._joined:
            self._joined = False
            try:
                mcast.leave(self.sock, self.group, self.iface)
            except OSError:
                pass
        if self._poll is not None:
            try:
                self._poll.unregister(self.sock)
            except (OSError, KeyError, ValueError):
                pass
            self._poll = None

    # -- what a reply says ------------------------------------------------------
    def counters(self):
        return {"queries": self.queries, "replies": self.replies,
                "ratelimited": self.ratelimited, "bad": self.bad, "errors": self.errors}

    def ip(self):
        nic = self.relay.nic
        if nic is not None:
            try:
                return nic.ip()
            except (OSError, AttributeError):
                pass
        return self.relay.own_ip

    def reply(self, nonce=""):
        info = {"id": self.id, "version": VERSION, "ip": self.ip(), "disc": self.counters()}
        return build_reply(info, self.relay.stats(), nonce)
