# MicroPython: Relay.run() on stand-in sockets, printing the counters and what
# was sent as JSON. host_tests/test_bench.py compares the result with the
# counters the loop gave before the benchmark's hot-path change (lib/relay.py
# at 71fc4fd): every version of the loop must count, guard and cap identically,
# the loop for several routes (lib/forward.py several(): both routes at once,
# against the reference) and the one for a single route (one(): each route
# alone, against several() with that route alone).
#
#   MICROPYPATH=lib:.frozen micropython bench/counts_scenario.py
#
# Two routes: one with an allow-list and a cap (burst 6, refill far too slow to
# matter), one without either; datagrams that are fine, empty, too big, from the
# board's own address, from outside the allow-list, receive errors and two send
# errors, with the addresses as lwIP gives them (tuples) and as the unix port
# gives them (raw sockaddr bytes). The relay is driven as the board drives it
# (Relay(cfg, nic).run()); only the socket layer is a stand-in: mcast's
# open_rx/open_tx and forward's select.
import json
import time

import config
import forward
import mcast
import relay

OWN_IP = "198.18.0.2"


def raw_sockaddr(ip, port):
    return bytes([2, 0, port >> 8, port & 255]) + bytes([int(x) for x in ip.split(".")]) + bytes(8)


def tuple_addr(ip, port):
    return (ip, port)


class Sock:
    """A receive socket holding a script of datagrams (or exceptions to raise)."""

    def __init__(self, items):
        self.items = items
        self.timeout = None

    def settimeout(self, t):
        self.timeout = t

    def recvfrom(self, n):
        if not self.items:  # a blocking socket with a timeout (one()): nothing came
            time.sleep_ms(int(self.timeout * 1000))
            raise OSError(110)  # ETIMEDOUT, as lwIP says it
        x = self.items.pop(0)
        if isinstance(x, Exception):
            raise x
        return x[0][:n], x[1]

    def setsockopt(self, *args):
        pass

    def close(self):
        pass


class Tx(Sock):
    """The transmit socket: records what is sent; the k-th sends in `fail` fail."""

    def __init__(self, fail):
        self.sent = []
        self.fail = fail
        self.k = 0

    def sendto(self, data, dst):
        self.k += 1
        if self.k in self.fail:
            raise OSError(105)
        self.sent.append([len(data), dst[0] if isinstance(dst, tuple) else dst[7]])


class Poll:
    """select.poll over stand-in sockets: every socket with datagrams left is ready."""

    def __init__(self):
        self.socks = []

    def register(self, sock, events):
        self.socks.append(sock)

    def ipoll(self, timeout_ms):
        ready = [(s, 1) for s in self.socks if isinstance(s, Sock) and getattr(s, "items", None)]
        if not ready:
            time.sleep_ms(timeout_ms)
        return ready


class Select:
    poll = Poll


class Nic:
    """What Relay asks of lib/nic.py's Nic."""

    def ip(self):
        return OWN_IP

    def link(self):
        return True

    def connected(self):
        return True


ROUTES = [
    {"from": "224.0.10.1:50000", "to": "224.0.10.11:50001", "rate_pps": 1, "burst": 6,
     "allow": ["198.18.0.0/24"]},
    {"from": "224.0.10.2:50000", "to": "224.0.10.12:50001", "rate_pps": 0},
]


def run(mk, routes=ROUTES):
    obj = {"nic": {}, "network": {"ip": OWN_IP, "netmask": "255.255.0.0"},
           "routes": routes, "relay": {"max_datagram": 100, "stats_interval_s": 0},
           "discovery": {"enabled": False}}
    cfg, errors = config.validate(obj, max_udp_sockets=8)
    if errors:
        raise SystemExit(str(errors))
    good, good2 = mk("198.18.0.5", 4000), mk("198.18.0.6", 4001)
    own, bad = mk(OWN_IP, 4000), mk("198.18.1.9", 4000)
    a = [(b"x" * 50, good), (b"", good), (b"y" * 101, good), (b"z" * 100, good),
         (b"q" * 10, own), (b"w" * 10, bad), OSError(5), (b"e" * 10, good2),
         (b"r" * 10, good), (b"t" * 10, bad), (b"u" * 10, good), (b"i" * 10, good),
         (b"o" * 10, good), (b"p" * 10, good)]
    b = [(b"a" * 20, own), (b"b" * 20, good), (b"c" * 20, bad), (b"", bad), OSError(4),
         (b"f" * 99, good)] * 3
    rx = {"224.0.10.1": Sock(a), "224.0.10.2": Sock(b)}
    tx = Tx((3, 9))
    mcast.open_rx = lambda group, port, iface: rx[group]
    mcast.open_tx = lambda bind_ip, port, ttl: (tx, None)
    forward.select = Select
    rel = relay.Relay(cfg, nic=Nic(), log=lambda *x: None)
    rel.run(400)
    out = []
    for r in rel.stats()["routes"]:
        out.append(dict([(k, r[k]) for k in relay.COUNTERS]))
    return {"routes": out, "sent": tx.sent}


def alone(mk, route):
    """One route through one() and, for comparison, through several()."""
    one = run(mk, [route])
    single = forward.one
    forward.one = lambda rel, r: forward.several(rel)
    try:
        return {"one": one, "several": run(mk, [route])}
    finally:
        forward.one = single


out = {}
for kind, mk in (("tuple", tuple_addr), ("raw", raw_sockaddr)):
    out[kind] = run(mk)
    out[kind + " alone"] = [alone(mk, r) for r in ROUTES]
print(json.dumps(out))
