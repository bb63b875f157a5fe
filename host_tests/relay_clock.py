# MicroPython: lib/relay.py's Relay.run() on a clock of its own, printing what
# happened as JSON (host_tests/test_relay_clock.py reads it). The relay and its
# forward loop run unchanged; time (relay.time, forward.time), the sockets
# (mcast.open_rx/open_tx, relay.select, forward.select), the memberships
# (mcast.join/leave) and the NIC are stand-ins, so that a minute of traffic,
# cable pulls and stalls take a fraction of a second and always happen alike.
#
#   MICROPYPATH=lib micropython host_tests/relay_clock.py SCENARIO ROUTES
#
# SCENARIO: "pull" (datagrams at 50/s, the cable pulled at 2 s for 2 s, traffic
# on after the plug), "pull-idle" (the same, no traffic after the plug),
# "stalls" (datagrams at 50/s; the loop gets no time for 2000 ms at 3 s, 800 ms
# at 12 s and 1500 ms at 80 s). ROUTES: 1 (forward.one) or 2 (forward.several).
import json
import sys

import config
import discovery
import forward
import mcast
import relay

SOURCE = ("198.18.0.20", 40000)
QUEUE = 4  # datagrams lwIP keeps per socket while the loop gets no time


class Clock:
    """time as the relay uses it (ticks in ms, never wrapping here)."""

    now = 0

    @staticmethod
    def ticks_ms():
        return Clock.now

    @staticmethod
    def ticks_add(t, ms):
        return t + ms

    @staticmethod
    def ticks_diff(a, b):
        return a - b

    @staticmethod
    def sleep_ms(ms):
        Clock.now += ms


STALLS = []  # (at, ms): the loop gets no time for ms from at (every socket's datagrams pile up)


def stall_now():
    if STALLS and Clock.now >= STALLS[0][0]:
        _, ms = STALLS.pop(0)
        Clock.now += ms
        for s in SOCKS:
            s.pile_up(Clock.now - ms)


SOCKS = []


class Rx:
    """A receive socket: datagrams arrive at given times (ms); after a stall
    only the last QUEUE that arrived during it are still waiting."""

    def __init__(self, arrivals, nic):
        self.arrivals = arrivals
        self.nic = nic
        SOCKS.append(self)
        self.timeout = 100
        self.got = 0  # datagrams handed to the relay

    def settimeout(self, t):
        self.timeout = int(t * 1000)

    def setsockopt(self, *a):
        pass

    def close(self):
        pass

    def pile_up(self, start):
        during = [t for t in self.arrivals if start <= t <= Clock.now]
        drop = set(during[:-QUEUE]) if len(during) > QUEUE else set()
        self.arrivals = [t for t in self.arrivals if t not in drop]

    def next_at(self):
        """When the next datagram is there (None: no more)."""
        stall_now()
        while self.arrivals and not self.nic.link_at(self.arrivals[0]):
            self.arrivals.pop(0)  # sent while the cable was out: never reached us
        return self.arrivals[0] if self.arrivals else None

    def recvfrom(self, n):
        t = self.next_at()
        if t is None or t > Clock.now + self.timeout:
            Clock.now += self.timeout
            raise OSError(110)  # ETIMEDOUT, as lwIP says it
        Clock.now = max(Clock.now, t) + 1  # a millisecond to take it
        self.arrivals.pop(0)
        self.got += 1
        return b"x" * 100, SOURCE


class Tx:
    def __init__(self):
        self.sent = 0

    def sendto(self, data, dst):
        self.sent += 1

    def setsockopt(self, *a):
        pass

    def close(self):
        pass


class Poll:
    """select.poll over Rx sockets on the Clock; the transmit socket never has a query."""

    def __init__(self):
        self.socks = []

    def register(self, sock, events):
        if isinstance(sock, Rx):
            self.socks.append(sock)

    def ipoll(self, timeout_ms):
        if not self.socks:
            return []
        nxt = [s.next_at() for s in self.socks]
        soon = min([t for t in nxt if t is not None] or [Clock.now + timeout_ms])
        if soon > Clock.now:
            Clock.now = min(soon, Clock.now + timeout_ms)
        return [(self.socks[i], 1) for i in range(len(nxt))
                if nxt[i] is not None and nxt[i] <= Clock.now]


class Select:
    poll = Poll


class Nic:
    """The cable: out from `down` for `length` ms."""

    def __init__(self, down=None, length=0):
        self.down = down
        self.length = length

    def link_at(self, t):
        return self.down is None or not self.down <= t < self.down + self.length

    def link(self):
        return self.link_at(Clock.now)

    def connected(self):
        return self.link()

    def ip(self):
        return "198.18.0.10"

    def reactivate(self):
        pass


def main(scenario, n_routes):
    routes = [{"from": "224.0.10.%d:50000" % (1 + i), "to": "224.0.10.%d:50000" % (11 + i)}
              for i in range(n_routes)]
    cfg, errors = config.validate({"nic": {}, "network": {"ip": "198.18.0.10", "netmask": "255.254.0.0"},
                                   "routes": routes, "relay": {"stats_interval_s": 10}})
    if errors:
        raise SystemExit(str(errors))
    end = 90000 if scenario == "stalls" else 45000
    if scenario == "stalls":
        STALLS.extend([(3000, 2000), (12000, 800), (80000, 1500)])
    nic = Nic(2000, 2000) if scenario.startswith("pull") else Nic()
    until = 4000 if scenario == "pull-idle" else end
    rx = {}
    for i, r in enumerate(routes):
        arrivals = list(range(500 + 7 * i, until, 20))  # 50/s
        rx[r["from"].split(":")[0]] = Rx(arrivals, nic)
    tx = Tx()
    events = []
    mcast.open_rx = lambda group, port, iface: rx[group]
    mcast.open_tx = lambda bind_ip, port, ttl: (tx, None)
    mcast.join = lambda sock, group, iface=None: events.append([Clock.now, "join", group])
    mcast.leave = lambda sock, group, iface=None: events.append([Clock.now, "leave", group])
    relay.time = forward.time = Clock
    relay.select = forward.select = Select
    lines = []
    rel = relay.Relay(cfg, nic=nic, log=lines.append,
                      responder=discovery.Responder(cfg["discovery"]))
    rel.run(end)
    reply = json.loads(rel.responder.reply(rel))
    print(json.dumps({"events": events, "log": lines, "stats": rel.stats(),
                      "stats_line": rel.stats_line(), "reply": reply,
                      "got": [s.got for s in rx.values()], "sent": tx.sent,
                      "forward": relay.FORWARD}))


main(sys.argv[1], int(sys.argv[2]))
