# The relay: its routes' receive sockets, one transmit socket, counters
# instead of logs. The per-datagram loop is lib/forward.py's (it touches only
# what open() made and small ints); everything periodic (token refill, counter
# folding, watchdog, discovery queries, link watch, group announcements, stall
# detection, the stats line) runs in tick() on a 100 ms ticks_ms deadline.
import gc
import select
import time

import heap
import mcast
from backoff import Backoff
from bucket import TokenBucket
from micropython import const

try:
    import forward_native as forward  # deploy's machine-code build of lib/forward.py
except (ImportError, ValueError):  # not deployed, or a firmware that cannot load it
    import forward

FORWARD = "native" if forward.__name__ == "forward_native" else "bytecode"

# A route's counters, each a plain int attribute of its Route, counted by the
# loop where it happens; every tick folds them into Route.totals (so the loop
# only ever adds to small ints: a big int would allocate). Totals are indexed
# in this order.
COUNTERS = ("rx", "tx", "bytes", "big", "empty", "own", "rate", "source", "send_err",
            "recv_err")
#   rx        datagrams received
#   tx        datagrams forwarded
#   bytes     bytes forwarded
#   big       dropped: larger than relay.max_datagram (never forwarded cut)
#   empty     dropped: zero-length
#   own       dropped: sent by this board (loop guard)
#   rate      dropped: over the route's rate cap
#   source    dropped: source not in the route's allow-list
#   send_err  send failed (counted, the loop goes on)
#   recv_err  receive failed
_OWN = const(1)  # a source's verdict: sent by this board
_SRC = const(2)  # a source's verdict: not in the allow-list

_TICK_MS = forward.TICK_MS  # one tick: the loop's wait for a datagram and the housekeeping's period
_POLLIN = const(1)
# A stall: the loop got no time for this long (the NIC's driver drains the
# chip from an interrupt and never returns while frames come faster than it
# reads them: README "Limits of the board"). Counted every time; logged at
# most once per _STALL_QUIET_MS.
_STALL_MS = const(500)
_STALL_QUIET_MS = const(60000)
_QUERIES_PER_TICK = const(16)  # discovery queries handled per tick at most (replies_per_s <= 100)
_CACHE_MAX = const(64)  # source verdicts kept per route (a LAN has a few senders)
# After the link returns the groups are announced at once, then again after
# each of these (ms): a report that was lost, or sent while the switch port was
# not forwarding yet (classic STP holds a new link for 30 s), is made good.
# lwIP reports only a new membership, so each announcement is leave + join,
# and on a switch with fast leave the leave cuts the port off until the
# join's report: a route that received datagrams since the previous
# announcement is not announced again (the switch evidently forwards to us).
_ANNOUNCE_MS = (1000, 3000, 8000, 35000)


# Source addresses made qstrs (_intern), at most _INTERN_MAX for good.
_interned = {}
_INTERN_MAX = const(16)


def _intern(ip):
    """Make a forwarded source's address string a qstr. Why: lwIP's recvfrom
    builds the sender's address with mp_obj_new_str, which first searches
    every qstr pool for the text (py/qstr.c qstr_find_strn): a text that is
    no qstr is searched to the end of all of them, and the relay's modules
    make them long (on the board that search cost the relay 83 us a datagram
    against the bare loop's 33: docs/bench.md). A qstr is found before that
    and is returned as itself, with nothing allocated. hasattr() makes its
    name a qstr; qstrs are never freed, hence the cap (a LAN has a few
    senders; a flood of forged sources must not fill the heap)."""
    if ip not in _interned and len(_interned) < _INTERN_MAX:
        _interned[ip] = True
        hasattr(_intern, ip)


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
    """One route: its receive socket, guards, rate cap and counters."""

    def __init__(self, rc):
        self.name = rc["name"]
        self.src = rc["from"]
        self.dst = rc["to"]
        self.group, self.port = mcast.parse_endpoint(rc["from"])
        to_group, to_port = mcast.parse_endpoint(rc["to"])
        self.dst_addr = mcast.sockaddr(to_group, to_port)
        self.allow = _parse_allow(rc["allow"]) if rc["allow"] else None
        self.bucket = TokenBucket(rc["rate_pps"], rc["burst"])
        self.tokens = self.bucket.full()  # taken by the loop, refilled every tick
        # The counters since the last tick (see COUNTERS), and since start.
        self.rx = 0
        self.tx = 0
        self.bytes = 0
        self.big = 0
        self.empty = 0
        self.own = 0
        self.rate = 0
        self.source = 0
        self.send_err = 0
        self.recv_err = 0
        self.totals = [0] * len(COUNTERS)
        # Datagrams/s over the last rate interval (rates(): at the stats
        # tick, never per datagram), and the (rx, tx, drop) they were taken from.
        self.rx_pps = self.tx_pps = self.drop_pps = 0
        self._rated = None
        # Source verdicts, keyed by the address exactly as recvfrom gives it (a
        # tuple on the board, raw sockaddr bytes on the unix port), so the loop
        # looks them up without allocating: `forwardable` holds the sources
        # that pass both guards, `_dropped` the others with their drop.
        self.forwardable = {}
        self._dropped = {}
        self._allowed = {}  # source IP -> in the allow-list (parsed once per source)
        self._own_ip = mcast.ANY
        self._own_raw = b"\0\0\0\0"
        self.sock = None
        self.recvfrom = None  # sock.recvfrom, bound once in Relay.open()
        self.heard = None  # received() when the group was last announced (Relay.rejoin)

    def received(self):
        """Datagrams received since start (what the loop counted since the last tick too)."""
        return self.totals[0] + self.rx

    def forget(self, own_ip):
        """A new own address (or a new loop): every cached verdict goes."""
        self._own_ip = own_ip
        self._own_raw = mcast.ip_bytes(own_ip)
        self.forwardable.clear()
        self._dropped.clear()

    def admit(self, addr):
        """A source the loop has no verdict for: may its datagrams be
        forwarded? A refusal is counted (own or source) and remembered."""
        drop = self._dropped.get(addr)
        if drop is None:
            drop = self._judge(addr)
        if drop == _OWN:
            self.own += 1
        elif drop == _SRC:
            self.source += 1
        return not drop

    def _judge(self, addr):
        if isinstance(addr, tuple):
            own = addr[0] == self._own_ip
        else:
            own = addr.find(self._own_raw, 4, 8) == 4
        if own:
            drop = _OWN
        elif self.allow is not None and not self.allowed(addr):
            drop = _SRC
        else:
            drop = 0
        if len(self.forwardable) + len(self._dropped) >= _CACHE_MAX:
            self.forwardable.clear()
            self._dropped.clear()
        if drop:
            self._dropped[addr] = drop
        else:
            self.forwardable[addr] = True
            if isinstance(addr, tuple):
                _intern(addr[0])
        return drop

    def allowed(self, addr):
        """Source allow-list check, cached per source IP."""
        key = addr[0] if isinstance(addr, tuple) else bytes(addr[4:8])
        ok = self._allowed.get(key)
        if ok is None:
            n = mcast.parse_ipv4(mcast.addr_ip(addr))
            ok = False
            for net, mask in self.allow:
                if n & mask == net:
                    ok = True
                    break
            if len(self._allowed) >= _CACHE_MAX:
                self._allowed = {}
            self._allowed[key] = ok
        return ok

    def tick(self, ms):
        """Every tick: the counters into the totals, tokens for ms milliseconds."""
        t = self.totals
        for i in range(len(COUNTERS)):
            name = COUNTERS[i]
            n = getattr(self, name)
            if n:
                t[i] += n
                setattr(self, name, 0)
        self.tokens = self.bucket.refill(self.tokens, ms)

    def counters(self):
        """The totals by name, including what the loop counted since the last tick."""
        out = {}
        for i in range(len(COUNTERS)):
            name = COUNTERS[i]
            out[name] = self.totals[i] + getattr(self, name)
        return out

    def rates(self, ms):
        """rx/tx/drop per second since the previous call, ms milliseconds ago
        (rounded to whole datagrams; none yet at the first call)."""
        c = self.counters()
        now = (c["rx"], c["tx"], self.dropped(c))
        was, self._rated = self._rated, now
        if was is None or ms <= 0:
            return
        half = ms // 2
        self.rx_pps = ((now[0] - was[0]) * 1000 + half) // ms
        self.tx_pps = ((now[1] - was[1]) * 1000 + half) // ms
        self.drop_pps = ((now[2] - was[2]) * 1000 + half) // ms

    def dropped(self, c):
        """The drop total of counters() `c`."""
        return (c["big"] + c["empty"] + c["own"] + c["rate"] + c["source"] + c["send_err"]
                + c["recv_err"])


class Relay:
    """cfg: the normalized config; nic: lib/nic.py's Nic (None: no NIC to
    watch, the address is 0.0.0.0); responder: a discovery.Responder to serve
    on the transmit socket, or None."""

    def __init__(self, cfg, nic=None, log=print, wdt=None, responder=None):
        rc = cfg["relay"]
        self.nic = nic
        self.log = log
        self.wdt = wdt
        self.responder = responder
        self.routes = [Route(r) for r in cfg["routes"]]
        self.max_datagram = rc["max_datagram"]
        self.stats_ms = rc["stats_interval_s"] * 1000
        self.link_ms = rc["link_check_ms"]
        # The rates' interval: the stats line's, or 1 s without one (discovery
        # replies carry them too).
        self.rates_ms = self.stats_ms or 1000
        self._next_rates = 0
        self._rates_at = 0  # uptime (ms) of the last rate interval's end
        self.reset_cause = None  # why the board last started (app.py), for stats()
        self.ttl = rc["ttl"]
        self.ttl_applied = None
        self.tx = None
        # The interface's address: the own-address guard compares sources with
        # it, and every membership is made on it.
        self.own_ip = mcast.ANY
        self.link_up = True
        self.link_flaps = 0
        self.rejoins = 0
        self.reactivations = 0
        self.loop_errors = 0
        self.stalls = 0  # times the loop got no time for _STALL_MS or more
        self.stalled_ms = 0  # their total length
        self._stall_said = None  # uptime (ms) of the stall logged last
        # ticks_ms wraps (2**30 ms on the board): uptime is accumulated in
        # steps shorter than half the period, at least every housekeeping tick.
        self._up_ms = 0
        self._up_mark = time.ticks_ms()
        self._running = False
        self._readdress = False  # the address changed: _pump returns, run() enters it again
        self._deadline = None  # ticks_ms at which run(duration_ms) ends
        self._tick_at = 0  # ticks_ms of the last tick: the elapsed time the next one hands on
        self._resp_heard = None  # the responder's received() when its group was last announced
        self._queries = None  # the transmit socket, when discovery queries come to it
        self._next_link = 0  # ticks_ms deadlines, set when run() starts
        self._next_stats = 0
        self._stats_step = 0  # the stats line's next step (_stats_due), 0: none under way
        self._mem_free = 0  # gc.mem_free() for the stats line under way
        self._plugs = None  # heap.plug()'s plugs, kept while the relay lives
        self._down_at = 0  # when the link went down
        self._ann_i = -1  # next entry of _ANNOUNCE_MS; -1: nothing scheduled
        self._ann_base = 0
        self._react = Backoff(log)  # NIC re-activation
        self._need_join = False  # re-activated, groups to join once the address is back
        self._dhcp = bool((cfg.get("network") or {}).get("dhcp"))
        self._link_wait_ms = rc["link_wait_s"] * 1000  # 0: do not wait for the address

    # -- set-up and tear-down -------------------------------------------------
    def open(self):
        """Create the sockets and join every group. Raises OSError on failure
        (after closing what it opened)."""
        if self.tx is not None:
            return
        ip = self.nic.ip() if self.nic is not None else mcast.ANY
        self.own_ip = ip
        port = self.responder.port if self.responder is not None else 0
        try:
            self.tx, self.ttl_applied = mcast.open_tx(mcast.ANY, port, self.ttl)
            for r in self.routes:
                r.sock = mcast.open_rx(r.group, r.port, ip)
                r.recvfrom = r.sock.recvfrom
            if self.responder is not None:
                self.responder.join(self.tx, ip)
        except Exception:
            self.close()
            raise
        if self.responder is not None:
            # Queries are answered at the tick, not between datagrams: the
            # forward loop never waits for a reply being built.
            self._queries = select.poll()
            self._queries.register(self.tx, _POLLIN)

    def close(self):
        """Leave every group (lwIP keeps memberships after close) and close."""
        for r in self.routes:
            if r.sock is not None:
                try:
                    mcast.leave(r.sock, r.group, self.own_ip)
                except OSError:
                    pass
                r.sock.close()
                r.sock = None
                r.recvfrom = None
        if self.tx is not None:
            if self.responder is not None:
                self.responder.leave(self.tx)
            self.tx.close()
            self.tx = None
        self._queries = None

    def rejoin(self, fresh=False, if_quiet=False):
        """Tell the LAN about our groups again: a snooping switch forgets a
        port's groups when its link drops. Leave+join sends a new report.
        if_quiet: only the groups that received nothing since they were last
        announced (the others evidently reach us: see _ANNOUNCE_MS)."""
        renewed = False
        for r in self.routes:
            if r.sock is None:
                continue
            heard, r.heard = r.heard, r.received()
            if if_quiet and heard != r.heard:
                continue
            renewed = True
            if not fresh:
                try:
                    mcast.leave(r.sock, r.group, self.own_ip)
                except OSError:
                    pass
            try:
                mcast.join(r.sock, r.group, self.own_ip)
            except OSError:
                self.loop_errors += 1
        resp = self.responder
        if resp is not None and self.tx is not None:
            heard, self._resp_heard = self._resp_heard, resp.received()
            if not (if_quiet and heard != self._resp_heard):
                resp.rejoin(self.tx, self.own_ip, fresh)
                renewed = True
        if renewed:
            self.rejoins += 1

    # -- the loop -------------------------------------------------------------
    def run(self, duration_ms=0):
        """Forward until Ctrl-C or stop() (or for duration_ms). Leaves the
        groups when it ends."""
        self.open()
        self._running = True
        if self.stats_ms:
            self.log(self.summary_header())
        now = time.ticks_ms()
        self._next_link = self._next_stats = now  # both due at the first tick
        self._next_rates = time.ticks_add(now, self.rates_ms)
        self.uptime_s()
        self._rates_at = self._up_ms
        for r in self.routes:
            r.rates(0)  # the starting point: the first rates come one interval on
        self._deadline = time.ticks_add(now, duration_ms) if duration_ms else None
        try:
            while self._running:
                try:
                    self._pump()
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
        """End run() at its next tick."""
        self._running = False

    def _pump(self):
        # Forwards until stop(), the deadline or an address change.
        for r in self.routes:
            r.forget(self.own_ip)
        self._readdress = False
        self._tick_at = time.ticks_ms()
        if len(self.routes) == 1:
            forward.one(self, self.routes[0])
        else:
            forward.several(self)

    def tick(self, due):
        """The forward loop's hand-over once ticks_ms() passed `due` (set
        _TICK_MS after the previous tick ended): a stall check, the
        housekeeping. Returns when the next tick is due, or None when the
        loop is to return (stop(), the deadline, an address change)."""
        now = time.ticks_ms()
        late = time.ticks_diff(now, due)
        if late >= _STALL_MS - _TICK_MS:
            self._stalled(late + _TICK_MS)
        self._housekeeping(now, time.ticks_diff(now, self._tick_at))
        self._tick_at = now
        if self._deadline is not None and time.ticks_diff(now, self._deadline) >= 0:
            self._running = False
        if not self._running or self._readdress:
            return None
        return time.ticks_add(time.ticks_ms(), _TICK_MS)

    def _stalled(self, ms):
        """The loop got no time for ms: counted; said once per _STALL_QUIET_MS."""
        self.stalls += 1
        self.stalled_ms += ms
        self.uptime_s()
        if self._stall_said is None or self._up_ms - self._stall_said >= _STALL_QUIET_MS:
            self._stall_said = self._up_ms
            self.log("relay: receive stalled {:,} ms: more multicast than the NIC can drain; "
                     "see README".format(ms))

    # -- periodic work ----------------------------------------------------------
    def _housekeeping(self, now, elapsed):
        self.uptime_s()
        for r in self.routes:
            r.tick(elapsed)
        if self.wdt is not None:
            self.wdt.feed()
        if self._queries is not None:
            self._answer(elapsed)
        if self.nic is not None and time.ticks_diff(now, self._next_link) >= 0:
            self._next_link = time.ticks_add(now, self.link_ms)
            self._check_link(now)
        if self._ann_i >= 0:
            self._announce_due(now)
        if time.ticks_diff(now, self._next_rates) >= 0:
            self._next_rates = time.ticks_add(now, self.rates_ms)
            ms = self._up_ms - self._rates_at
            self._rates_at = self._up_ms
            for r in self.routes:
                r.rates(ms)
        if self._plugs is None and not self.stats_ms:
            self._collect_and_plug()  # the first tick; with a stats line its first step does
        if self._stats_step:
            self._stats_due()
        elif self.stats_ms and time.ticks_diff(now, self._next_stats) >= 0:
            self._next_stats = time.ticks_add(now, self.stats_ms)
            self._stats_step = 1
            self._stats_due()

    def _stats_due(self):
        """One step of the stats line per tick: each holds the loop for
        milliseconds on the board while lwIP queues 4 datagrams at most, so
        one after the other would cost more of them than one at a time."""
        step = self._stats_step
        if step == 1:
            # Collect first: "mem free" is then the heap after a collection,
            # comparable from one line to the next (a flat heap shows as a
            # flat number, not as the allocator's sawtooth).
            self._collect_and_plug()
            self._stats_step = 2
        elif step == 2:
            self._mem_free = gc.mem_free()  # the longest step: a walk over the whole heap
            self._stats_step = 3
        else:
            self.log(self.stats_line(self._mem_free))
            self._stats_step = 0

    def _collect_and_plug(self):
        """A collection, then the holes it left among the live objects
        plugged (lib/heap.py); the plugs so far are kept."""
        gc.collect()
        self._plugs = heap.plug(self._plugs)

    def _answer(self, elapsed):
        """Hand the discovery responder each query waiting on the transmit
        socket (at most _QUERIES_PER_TICK: a flood of queries waits in the
        socket's queue, and overflows there, not here)."""
        self.responder.tick(elapsed)
        for _ in range(_QUERIES_PER_TICK):
            ready = False
            for _ev in self._queries.ipoll(0):
                ready = True
            if not ready:
                return
            self.responder.handle(self.tx, self)

    def _check_link(self, now):
        """Every link_check_ms: follow the PHY link (the cable). On its return
        announce every group again (a snooping switch forgot them when the
        port went down); if the NIC lost its address or was de-activated,
        re-activate it (with back-off) and join every group afresh."""
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
        self._react.succeeded()
        if self._need_join:
            # Re-activated while the address was not back yet (DHCP): now it is.
            self._need_join = False
            self._refresh_address()
            self._announce_start(now)
        elif self._dhcp:
            self._refresh_address()

    def _announce_start(self, now):
        """Announce the groups now, and again after each of _ANNOUNCE_MS (the
        groups that received nothing in between)."""
        self.rejoin()
        self._ann_base = now
        self._ann_i = 0

    def _announce_due(self, now):
        if not self.link_up:
            self._ann_i = -1
        elif time.ticks_diff(now, self._ann_base) >= _ANNOUNCE_MS[self._ann_i]:
            self.rejoin(if_quiet=True)
            self._ann_i += 1
            if self._ann_i >= len(_ANNOUNCE_MS):
                self._ann_i = -1

    def _reactivate(self, now):
        if not self._react.ready(now):
            return
        nic = self.nic
        try:
            nic.reactivate()
        except (OSError, ValueError, TypeError) as e:
            self._react.failed(now, "relay: NIC re-activation (%s) failed: %r" % (
                getattr(nic, "stage", None) or "?", e))
            return
        self.reactivations += 1
        # Give the address time to come (DHCP) before trying again.
        self._react.settle(now, self._link_wait_ms)
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
            self._readdress = True

    # -- what people read -------------------------------------------------------
    def address(self):
        """The interface's address as the NIC has it now (else the last known)."""
        if self.nic is not None:
            try:
                return self.nic.ip()
            except OSError:
                pass
        return self.own_ip

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
            "stalls": self.stalls,
            "stalled_ms": self.stalled_ms,
            "reset_cause": self.reset_cause,
            "routes": [self._route_stats(r) for r in self.routes],
        }

    @staticmethod
    def _route_stats(r):
        d = r.counters()
        d["name"] = r.name
        d["from"] = r.src
        d["to"] = r.dst
        d["rx_pps"] = r.rx_pps
        d["tx_pps"] = r.tx_pps
        d["drop_pps"] = r.drop_pps
        return d

    def summary_header(self):
        return "relay: %d route(s): %s" % (
            len(self.routes), ", ".join("%s %s -> %s" % (r.name, r.src, r.dst) for r in self.routes))

    def stats_line(self, mem_free=None):
        """The stats line; mem_free: gc.mem_free() as measured (None: now)."""
        parts = ["stats up %ds link %s flaps %d stalls %d" % (
            self.uptime_s(), "up" if self.link_up else "DOWN", self.link_flaps, self.stalls)]
        for r in self.routes:
            c = r.counters()
            parts.append("%s rx %d tx %d bytes %d drop %d (big %d empty %d own %d rate %d src %d err %d) rx/s %d tx/s %d drop/s %d" % (
                r.name, c["rx"], c["tx"], c["bytes"], r.dropped(c), c["big"], c["empty"], c["own"],
                c["rate"], c["source"], c["send_err"] + c["recv_err"], r.rx_pps, r.tx_pps,
                r.drop_pps))
        parts.append("mem free %d" % (gc.mem_free() if mem_free is None else mem_free))
        return " | ".join(parts)
