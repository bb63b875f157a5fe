# Discovery responder: answers "MCRELAY?" queries sent to the discovery group
# with one small unicast JSON reply (who am I, what do I forward, how much).
#
# It costs no socket: it answers on the relay's transmit socket, which
# Relay.open() binds to 0.0.0.0:<discovery port>. The relay joins it to the
# group (join/rejoin/leave), checks that socket at its 100 ms tick, and hands
# it to handle() when a query waits, with itself as the source of what the
# reply says: source.stats() (relay.stats()) and source.address(). Nothing
# here runs on the forward path of a datagram.
#
# Amplification: a reply (a few hundred bytes, never more than REPLY_MAX) is
# larger than the 8-byte query, but it goes by unicast to the query's source
# only, and replies are rate-limited (token bucket, discovery.replies_per_s
# per second, at most that many in a burst). A spoofed source can aim replies
# at a third party, but never more than replies_per_s * REPLY_MAX bytes/s per
# board. See docs/discovery.md.
#
# The constants and build_reply()/parse_query() are the protocol: the host
# tools (tools/discover.py) import them from here.
import json

try:
    import mcast
    from bucket import TokenBucket
    from version import VERSION
except ImportError:  # on the host: imported as lib.discovery
    from lib import mcast
    from lib.bucket import TokenBucket
    from lib.version import VERSION

MAGIC = b"MCRELAY?"
REPLY_MAX = 1200  # bytes: one unfragmented datagram on any LAN, cap for amplification
NONCE_MAX = 32  # bytes after MAGIC that are echoed back
PROTO = 1  # reply format version ("mcrelay" field)
_RECV_MAX = 64  # a query is MAGIC + nonce; anything longer is cut here and is bad
_NONCE_OK = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:"

# A route's drop counters (relay.COUNTERS after rx, tx, bytes): "drop" is their
# sum; a full reply also carries each one.
DROPS = ("big", "empty", "own", "rate", "source", "send_err", "recv_err")
# A route's datagrams/s over the relay's last rate interval (full form only).
RATES = ("rx_pps", "tx_pps", "drop_pps")
# relay.stats() fields a reply carries and may drop when too long
_EXTRAS = ("rejoins", "reactivations", "loop_errors", "stalls", "stalled_ms", "reset_cause")


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
        for k in RATES:
            if k in rs:
                e[k] = rs[k]
    return e


def build_reply(info, stats, nonce="", limit=REPLY_MAX):
    """The reply datagram: valid JSON, never longer than limit (b"" when not
    even {"mcrelay":1} fits).

    info: {"id", "version", "ip"} plus optional extras ("disc": responder
    counters); stats: relay.stats(). When the full reply is too long, the
    per-route detail goes first, then routes from the end (their number is in
    "more"), then the extras, then everything but the protocol and the id."""
    base = {"mcrelay": PROTO, "id": info["id"], "version": info["version"], "ip": info["ip"],
            "uptime_s": stats["uptime_s"], "link": stats.get("link", "up"),
            "link_flaps": stats["link_flaps"]}
    for k in _EXTRAS:
        if stats.get(k) is not None:
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
    for k in _EXTRAS:
        base.pop(k, None)
    for smaller in (base, {"mcrelay": PROTO, "id": info["id"], "more": len(routes)},
                    {"mcrelay": PROTO, "id": info["id"]}, {"mcrelay": PROTO}):
        out = _dumps(smaller).encode()
        if len(out) <= limit:
            return out
    return b""


class Responder:
    """Answers queries on the socket the relay hands it; see the module comment."""

    def __init__(self, cfg):
        """cfg: the config's "discovery" section."""
        self.group, self.port = mcast.parse_endpoint(cfg["group"])
        rate = cfg["replies_per_s"]
        self.bucket = TokenBucket(rate, rate)  # at most replies_per_s in a burst
        self.tokens = self.bucket.full()
        self.id = board_id()
        self.queries = 0  # well-formed queries received
        self.replies = 0  # replies sent
        self.ratelimited = 0  # queries not answered: bucket empty
        self.bad = 0  # anything else that arrived on the socket
        self.errors = 0  # receive/send failures, group join failures
        self.last_size = 0  # length of the last reply sent (bytes)
        self._iface = None  # the interface the group was joined on (None: not joined)

    # -- membership (the relay's transmit socket) --------------------------------
    def join(self, sock, iface):
        """Join the group on iface. OSError: Relay.open() closes and retries."""
        mcast.join(sock, self.group, iface)
        self._iface = iface

    def received(self):
        """Datagrams that reached the socket (queries or not) since start."""
        return self.queries + self.bad

    def rejoin(self, sock, iface, fresh=False):
        if not fresh:
            self.leave(sock)
        try:
            self.join(sock, iface)
        except OSError:
            self.errors += 1

    def leave(self, sock):
        """Leave the group (lwIP keeps memberships after close); the relay
        closes the socket itself."""
        if self._iface is not None:
            try:
                mcast.leave(sock, self.group, self._iface)
            except OSError:
                pass
            self._iface = None

    # -- the relay's tick ---------------------------------------------------------
    def tick(self, elapsed_ms):
        self.tokens = self.bucket.refill(self.tokens, elapsed_ms)

    def handle(self, sock, source):
        """A datagram waits on sock: read it and answer it if it is a query."""
        try:
            data, addr = sock.recvfrom(_RECV_MAX)
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
            out = self.reply(source, nonce)
            # The address as recvfrom gave it: a tuple on the board, raw
            # sockaddr bytes on the unix port; sendto takes either back.
            sock.sendto(out, addr)
        except (OSError, MemoryError):
            self.errors += 1
            return
        self.replies += 1
        self.last_size = len(out)

    # -- what a reply says ------------------------------------------------------
    def counters(self):
        return {"queries": self.queries, "replies": self.replies,
                "ratelimited": self.ratelimited, "bad": self.bad, "errors": self.errors}

    def reply(self, source, nonce=""):
        info = {"id": self.id, "version": VERSION, "ip": source.address(),
                "disc": self.counters()}
        return build_reply(info, source.stats(), nonce)
