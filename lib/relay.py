# The forward loop: every route's receive socket in one select.poll, one
# transmit socket, counters instead of logs. The per-datagram path touches only
# preallocated state; everything periodic (token refill, counter folding, link
# watch, stats line, watchdog) runs on a ticks_ms deadline.
import gc
import select
import time

import mcast
from micropython import const

# Counter slots of a route's `hot` list (folded into `total` every tick so the
# numbers stay small ints on the board: no allocation per add).
_RX = const(0)  # datagrams received
_TX = const(1)  # datagrams forwarded
_BYTES = const(2)  # bytes forwarded
_BIG = const(3)  # dropped: larger than relay.max_datagram (never forwarded cut)
_EMPTY = const(4)  # dropped: zero-length
_OWN = const(5)  # dropped: sent by this board (loop guard)
_RATE = const(6)  # dropped: over the route's rate cap
_SRC = const(7)  # dropped: source not in the route's allow-list
_SENDERR = const(8)  # send failed (counted, loop goes on)
_RECVERR = const(9)  # receive failed
_NCOUNT = const(10)
_TOKENS = const(10)  # not a counter: the rate cap's bucket
_NO_CAP = const(1 << 29)  # the bucket of a route without a cap (refilled every tick)
# The forward loop counts its drops in slots of its own (classic slot + _L),
# from which fold() derives rx and tx: every datagram it receives either takes
# a token (then sendto succeeds: tx, or fails: send_err) or is dropped once.
# Slots 0-9 stay plain counters that anything may add to.
_L = const(8)
_L_BIG = const(11)  # _BIG + _L
_L_EMPTY = const(12)
_L_OWN = const(13)
_L_RATE = const(14)
_L_SRC = const(15)
_L_SENDERR = const(16)
_NHOT = const(17)
COUNTERS = ("rx", "tx", "bytes", "big", "empty", "own", "rate", "source", "send_err",
            "recv_err")

_TICK_MS = const(100)
_POLLIN = const(1)
# After the link returns the groups are announced at once, then again after
# each of these (ms): a report that was lost, or sent while the switch port was
# not forwarding yet (classic STP holds a new link for 30 s), is made good.
# lwIP reports only a new membership, so each announcement is leave + join.
_ANNOUNCE_MS = (1000, 3000, 8000, 35000)
_REACT_MIN_MS = const(1000)  # NIC re-activation back-off: 1, 2, 4 ... 30 s
_REACT_MAX_MS = const(30000)


class _Restart(Exception):
    """Housekeeping asks run() to re-enter _pump (which caches the address)."""


def _parse_allow(entries):
    out = []
    for e in entries:
        if "/" in e:
            ip, plen = e.split("/")
            plen = int(plen)
        else:
            ip, plen = e, 32
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
        out.append((mcast.parse_ipv4(ip) & mask, mask))
    return out


class Route:
    def __init__(self, rc):
        self.name = rc["name"]
        self.src = rc["from"]
        self.dst = rc["to"]
        self.group, self.port = mcast.parse_endpoint(rc["from"])
        to_group, to_port = mcast.parse_endpoint(rc["to"])
        self.dst_addr = mcast.sockaddr(to_group, to_port)
        self.rate = rc["rate_pps"]
        self.burst = rc["burst"]
        self.allow = _parse_allow(rc["allow"]) if rc["allow"] else None
        self._seen = {}  # source -> allowed, so the allow-list is parsed once per source
        # The forward loop's verdict cache, keyed by the recvfrom address as it
        # comes (no allocation to look it up): `known` holds the sources that
        # may be forwarded, `_bad` the others with the counter slot of their
        # drop (_OWN or _SRC). Emptied when the own address changes.
        self.known = {}
        self._bad = {}
        self._own = (mcast.ANY, b"\0\0\0\0")
        # Per datagram the loop counts only what it cannot derive: a datagram
        # that passes every guard takes a token, so fold() gets rx and tx from
        # the tokens taken (bucket level at the last fold - level now) and the
        # loop's drop slots (_L_*).
        self.hot = [0] * _NHOT
        self.hot[_TOKENS] = self.burst if self.rate else _NO_CAP
        self._tok_mark = self.hot[_TOKENS]
        self.total = [0] * _NCOUNT
        self._credit = 0  # token refill remainder (rate * ms not yet a whole token)
        self.sock = None

    def forget(self, own_ip, own_raw):
        """New own address (or a new loop): drop every cached verdict."""
        self._own = (own_ip, own_raw)
        self.known.clear()
        self._bad.clear()

    def verdict(self, addr, counts=None):
        """0: forward; else the loop's counter slot of the drop (_L_OWN: sent
        by this board, _L_SRC: not in the allow-list), counted in `counts` if
        given. Cached per address."""
        v = self._bad.get(addr)
        if v is not None:
            if counts is not None:
                counts[v] += 1
            return v
        own_ip, own_raw = self._own
        if isinstance(addr, tuple):
            own = addr[0] == own_ip
        else:
            own = addr.find(own_raw, 4, 8) == 4
        if own:
            v = _L_OWN
        elif self.allow is not None and not self.allowed(addr):
            v = _L_SRC
        else:
            v = 0
        if len(self.known) + len(self._bad) >= 64:
            self.known.clear()
            self._bad.clear()
        if v:
            self._bad[addr] = v
            if counts is not None:
                counts[v] += 1
        else:
            self.known[addr] = True
        return v

    def allowed(self, addr):
        """Source allow-list check, cached per source (rarely more than a few)."""
        key = addr[0] if isinstance(addr, tuple) else bytes(addr[4:8])
        ok = self._seen.get(key)
        if ok is None:
            n = mcast.parse_ipv4(mcast.addr_ip(addr))
            ok = False
            for net, mask in self.allow:
                if n & mask == net:
                    ok = True
                    break
            if len(self._seen) >= 64:
                self._seen = {}
            self._seen[key] = ok
        return ok

    def fold(self):
        h, t = self.hot, self.total
        tok = h[_TOKENS]
        used = self._tok_mark - tok  # datagrams handed to sendto since the last fold
        self._tok_mark = tok
        h[_RX] += used + h[_L_BIG] + h[_L_EMPTY] + h[_L_OWN] + h[_L_RATE] + h[_L_SRC]
        h[_TX] += used - h[_L_SENDERR]
        for i in range(_BIG, _SENDERR + 1):
            if h[i + _L]:
                h[i] += h[i + _L]
                h[i + _L] = 0
        for i in range(_NCOUNT):
            if h[i]:
                t[i] += h[i]
                h[i] = 0

    def refill(self, ms):
        h = self.hot
        old = h[_TOKENS]
        if not self.rate:
            new = _NO_CAP  # no cap: the bucket never runs dry
        else:
            self._credit += self.rate * ms
            add = self._credit // 1000
            if not add:
                return
            self._credit -= add * 1000
            new = old + add
            if new > self.burst:
                new = self.burst
        h[_TOKENS] = new
        self._tok_mark += new - old

    def counters(self):
        self.fold()
        return dict(zip(COUNTERS, self.total))

    def dropped(self):
        t = self.total
        return t[_BIG] + t[_EMPTY] + t[_OWN] + t[_RATE] + t[_SRC] + t[_SENDERR] + t[_RECVERR]


class Relay:
    def __init__(self, cfg, nic=None, log=print, wdt=None, responder_factory=None):
        self.cfg = cfg
        rc = cfg["relay"]
        self.nic = nic
        self.log = log
        self.wdt = wdt
        self.routes = [Route(r) for r in cfg["routes"]]
        self.max_datagram = rc["max_datagram"]
        self.stats_ms = rc["stats_interval_s"] * 1000
        self.link_ms = rc["link_check_ms"]
        self.ttl = rc["ttl"]
        self.ttl_applied = None
        self.tx = None
        self.responder = None
        self._responder_factory = responder_factory
        self.link_up = True
        self.link_flaps = 0
        self.rejoins = 0
        self.reactivations = 0
        self.loop_errors = 0
        # ticks_ms wraps (2**30 ms on the board): uptime is accumulated in
        # steps shorter than half the period, at least every housekeeping tick.
        self._up_ms = 0
        self._up_mark = time.ticks_ms()
        self._running = False
        self._poll = None
        self._by_sock = {}
        self.iface = mcast.ANY
        self.own_ip = mcast.ANY
        self._dhcp = bool((cfg.get("network") or {}).get("dhcp"))
        self._link_wait_ms = (rc.get("link_wait_s") or 10) * 1000

    # -- set-up and tear-down -------------------------------------------------
    def open(self):
        """Create the sockets and join every group. Raises OSError on failure
        (after closing what it opened)."""
        if self.tx is not None:
            return
        ip = self.nic.ip() if self.nic is not None else mcast.ANY
        self.own_ip = ip
        self.iface = ip
        disc = self.cfg.get("discovery") or {}
        try:
            port = 0
            if disc.get("enabled"):
                port = mcast.parse_endpoint(disc["group"])[1]
            self.tx, self.ttl_applied = mcast.open_tx(mcast.ANY, port, self.ttl)
            for r in self.routes:
                r.sock = mcast.open_rx(r.group, r.port, ip)
            if disc.get("enabled") and self._responder_factory is not None:
                self.responder = self._responder_factory(self, self.tx)
        except Exception:
            self.close()
            raise
        p = select.poll()
        by_sock = {}
        for r in self.routes:
            p.register(r.sock, _POLLIN)
            by_sock[r.sock] = (r.hot, r.dst_addr, r.known, r, r.sock.recvfrom)
        if self.responder is not None:
            p.register(self.tx, _POLLIN)
        self._poll = p
        self._by_sock = by_sock

    def close(self):
        """Leave every group (lwIP keeps memberships after close) and close."""
        for r in self.routes:
            if r.sock is not None:
                try:
                    mcast.leave(r.sock, r.group, self.iface)
                except OSError:
                    pass
                r.sock.close()
                r.sock = None
        if self.responder is not None:
            self.responder.close()
            self.responder = None
        if self.tx is not None:
            self.tx.close()
            self.tx = None
        self._poll = None
        self._by_sock = {}

    def rejoin(self, fresh=False):
        """Tell the LAN about our groups again: a snooping switch forgets a
        port's groups when its link drops. Leave+join sends a new report."""
        for r in self.routes:
            if r.sock is None:
                continue
            if not fresh:
                try:
                    mcast.leave(r.sock, r.group, self.iface)
                except OSError:
                    pass
            try:
                mcast.join(r.sock, r.group, self.iface)
            except OSError:
                self.loop_errors += 1
        if self.responder is not None:
            self.responder.rejoin(fresh)
        self.rejoins += 1

    # -- the loop -------------------------------------------------------------
    def run(self, duration_ms=0):
        """Forward until Ctrl-C (or for duration_ms). Leaves groups on stop."""
        self.open()
        self._running = True
        if self.stats_ms:
            self.log(self.summary_header())
        deadline = time.ticks_add(time.ticks_ms(), duration_ms) if duration_ms else None
        try:
            while self._running:
                try:
                    self._pump(deadline)
                except _Restart:
                    pass
                except OSError:
                    self.loop_errors += 1
                except MemoryError:
                    self.loop_errors += 1
                    gc.collect()
        except KeyboardInterrupt:
            self.log("relay: stopped (Ctrl-C). relay.stats() has the counters; relay.run() resumes.")
        finally:
            self._running = False
            self.close()
        return self

    def stop(self):
        self._running = False

    def _pump(self, deadline):
        # Per datagram: one poll event, recvfrom, the size checks, one dict
        # lookup for both source guards (own address, allow-list), the token,
        # sendto and the byte count. rx/tx come from fold() (see Route),.
        # docs/bench.md has the numbers.
        ipoll = self._poll.ipoll
        slots = dict(self._by_sock)
        if self.responder is not None:
            slots[self.tx] = None
        maxd = self.max_datagram
        bufn = maxd + 1  # one more than allowed: a longer datagram shows as too big
        sendto = self.tx.sendto
        own_ip = self.own_ip
        own_raw = mcast.ip_bytes(own_ip)
        for r in self.routes:
            r.forget(own_ip, own_raw)
        _len = len
        ticks_ms = time.ticks_ms
        ticks_diff = time.ticks_diff
        next_tick = time.ticks_add(ticks_ms(), _TICK_MS)
        running = self._running
        while running:
            for ev in ipoll(_TICK_MS):
                t = slots[ev[0]]
                if t is None:
                    self.responder.handle()
                    running = self._running
                    continue
                c, dst, known, r, recvfrom = t
                try:
                    data, addr = recvfrom(bufn)
                except OSError:
                    c[_RECVERR] += 1
                    continue
                n = _len(data)
                if n > maxd:
                    c[_L_BIG] += 1
                    continue
                if not n:
                    c[_L_EMPTY] += 1
                    continue
                if addr in known or not r.verdict(addr, c):
                    tok = c[_TOKENS]
                    if not tok:  # never below 0
                        c[_L_RATE] += 1
                        continue
                    c[_TOKENS] = tok - 1
                    try:
                        sendto(data, dst)
                    except OSError:
                        c[_L_SENDERR] += 1
                        continue
                    c[_BYTES] += n
            now = ticks_ms()
            if ticks_diff(now, next_tick) >= 0:
                self._housekeeping(now, _TICK_MS + ticks_diff(now, next_tick))
                next_tick = time.ticks_add(now, _TICK_MS)
                if deadline is not None and ticks_diff(now, deadline) >= 0:
                    self._running = False
                running = self._running

    # -- periodic work ----------------------------------------------------------
    def _housekeeping(self, now, elapsed):
        self.uptime_s()
        for r in self.routes:
            r.fold()
            r.refill(elapsed)
        if self.wdt is not None:
            self.wdt.feed()
        if self.responder is not None:
            self.responder.tick(now)
        if self.nic is not None and time.ticks_diff(now, self._next_link) >= 0:
            self._next_link = time.ticks_add(now, self.link_ms)
            self._check_link(now)
        if self._ann_i >= 0:
            self._announce_due(now)
        if self.stats_ms and time.ticks_diff(now, self._next_stats) >= 0:
            self._next_stats = time.ticks_add(now, self.stats_ms)
            # Collect first: the line's "mem free" is then the heap after a
            # collection, comparable from one line to the next (a flat heap
            # shows as a flat number, not as the allocator's sawtooth).
            gc.collect()
            self.log(self.stats_line())
        if self._restart:
            self._restart = False
            raise _Restart()  # run() re-enters _pump, which caches the address

    _next_link = 0
    _next_stats = 0
    _down_at = 0
    _ann_i = -1  # next entry of _ANNOUNCE_MS, -1: nothing scheduled
    _ann_base = 0
    _react_due = None  # no NIC re-activation before this tick (back-off)
    _react_delay = _REACT_MIN_MS
    _react_err = None  # the last re-activation failure reported
    _need_join = False  # re-activated, groups to join once the address is back
    _restart = False

    def _check_link(self, now=None):
        """Every link_check_ms: follow the PHY link (the cable). On its return
        announce every group again (a snooping switch forgot them when the
        port went down); if the NIC lost its address or was de-activated,
        re-activate it (with back-off) and join every group afresh."""
        if now is None:
            now = time.ticks_ms()
        nic = self.nic
        try:
            up = nic.link()
            connected = up and nic.connected()
        except OSError:
            self.loop_errors += 1
            return
        if up != self.link_up:
            self.link_up = up
            if not up:
                self._down_at = now
                self._ann_i = -1  # nothing to announce into a dead link
                self.log("relay: link DOWN")
                return
            self.link_flaps += 1
            self.log("relay: link up again (flap %d) after %d ms down%s" % (
                self.link_flaps, time.ticks_diff(now, self._down_at),
                ": groups announced" if connected else ": NIC has no address"))
            if connected:
                self._need_join = False
                self._announce_start(now)
                return
        if not up:
            return
        if not connected:
            self._reactivate(now)
            return
        self._react_delay = _REACT_MIN_MS
        if self._need_join:
            # Re-activated while the address was not back yet (DHCP): now it is.
            self._need_join = False
            self._refresh_address()
            self._announce_start(now)
        elif self._dhcp:
            self._refresh_address()

    def _announce_start(self, now):
        """Announce the groups now, and again after each of _ANNOUNCE_MS."""
        self.rejoin()
        self._ann_base = now
        self._ann_i = 0

    def _announce_due(self, now):
        if not self.link_up:
            self._ann_i = -1
        elif time.ticks_diff(now, self._ann_base) >= _ANNOUNCE_MS[self._ann_i]:
            self.rejoin()
            self._ann_i += 1
            if self._ann_i >= len(_ANNOUNCE_MS):
                self._ann_i = -1

    def _reactivate(self, now=None):
        if now is None:
            now = time.ticks_ms()
        if self._react_due is not None and time.ticks_diff(now, self._react_due) < 0:
            return
        nic = self.nic
        try:
            nic.reactivate()
        except (OSError, ValueError, TypeError) as e:
            msg = "relay: NIC re-activation (%s) failed: %r" % (
                getattr(nic, "stage", None) or "?", e)
            if msg != self._react_err:
                self._react_err = msg
                self.log(msg + " (retrying with back-off up to %d s; reported again only if it "
                         "changes)" % (_REACT_MAX_MS // 1000))
            self._react_due = time.ticks_add(now, self._react_delay)
            self._react_delay = min(self._react_delay * 2, _REACT_MAX_MS)
            return
        self.reactivations += 1
        self._react_err = None
        # Give the address time to come (DHCP) before trying again.
        self._react_due = time.ticks_add(now, max(self._link_wait_ms, self._react_delay))
        try:
            connected = nic.connected()
        except OSError:
            connected = False
        self.log("relay: NIC re-activated (%d)%s" % (
            self.reactivations, ": groups joined again" if connected else ": waiting for the address"))
        if connected:
            self._need_join = False
            self._refresh_address()
            self._announce_start(now)
        else:
            self._need_join = True

    def _refresh_address(self):
        """The interface's address changed (DHCP): the own-address guard and
        the memberships follow it."""
        try:
            ip = self.nic.ip()
        except OSError:
            return
        if ip != self.own_ip and ip != mcast.ANY:
            self.log("relay: interface address now %s (was %s)" % (ip, self.own_ip))
            self.own_ip = ip
            self.iface = ip
            self._restart = True

    # -- what people read -------------------------------------------------------
    def uptime_s(self):
        now = time.ticks_ms()
        self._up_ms += time.ticks_diff(now, self._up_mark)
        self._up_mark = now
        return self._up_ms // 1000

    def stats(self):
        """Counters as a dict: what the stats line and discovery replies show."""
        return {
            "uptime_s": self.uptime_s(),
            "link": "up" if self.link_up else "down",
            "link_flaps": self.link_flaps,
            "rejoins": self.rejoins,
            "reactivations": self.reactivations,
            "loop_errors": self.loop_errors,
            "routes": [self._route_stats(r) for r in self.routes],
        }

    @staticmethod
    def _route_stats(r):
        d = r.counters()
        d["name"] = r.name
        d["from"] = r.src
        d["to"] = r.dst
        return d

    def summary_header(self):
        return "relay: %d route(s): %s" % (
            len(self.routes), ", ".join("%s %s -> %s" % (r.name, r.src, r.dst) for r in self.routes))

    def stats_line(self):
        parts = ["stats up %ds link %s flaps %d" % (
            self.uptime_s(), "up" if self.link_up else "DOWN", self.link_flaps)]
        for r in self.routes:
            t = r.total
            parts.append("%s rx %d tx %d bytes %d drop %d (big %d empty %d own %d rate %d src %d err %d)" % (
                r.name, t[_RX], t[_TX], t[_BYTES], r.dropped(), t[_BIG], t[_EMPTY], t[_OWN],
                t[_RATE], t[_SRC], t[_SENDERR] + t[_RECVERR]))
        parts.append("mem free %d" % gc.mem_free())
        return " | ".join(parts)
