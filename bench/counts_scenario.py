# MicroPython: a scripted run of Relay._pump with stand-in sockets, printing
# the counters and what was sent as JSON. host_tests/test_bench.py compares the
# result with the counters the loop gave before the benchmark's hot-path change
# (lib/relay.py at 71fc4fd): the change must count, guard and cap identically.
#
#   MICROPYPATH=lib:.frozen micropython bench/counts_scenario.py
#
# Two routes: one with an allow-list and a cap (burst 6, refill far too slow to
# matter), one without either; datagrams that are fine, empty, too big, from the
# board's own address, from outside the allow-list, receive errors and two send
# errors, with the addresses as lwIP gives them (tuples) and as the unix port
# gives them (raw sockaddr bytes).
import json
import time

import config
import relay


def raw_sockaddr(ip, port):
    return bytes([2, 0, port >> 8, port & 255]) + bytes([int(x) for x in ip.split(".")]) + bytes(8)


def tuple_addr(ip, port):
    return (ip, port)


class Sock:
    def __init__(self, items):
        self.items = items

    def recvfrom(self, n):
        x = self.items.pop(0)
        if isinstance(x, Exception):
            raise x
        return x[0][:n], x[1]


class Tx:
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
    def __init__(self, socks):
        self.socks = socks

    def ipoll(self, t):
        out = [(s, 1) for s in self.socks if s.items]
        if not out:
            time.sleep_ms(t)
        return out


def run(mk):
    routes = [
        {"from": "224.0.10.1:50000", "to": "224.0.10.11:50001", "rate_pps": 1, "burst": 6,
         "allow": ["198.18.0.0/24"]},
        {"from": "224.0.10.2:50000", "to": "224.0.10.12:50001", "rate_pps": 0},
    ]
    obj = {"nic": {}, "network": {"ip": "198.18.0.2", "netmask": "255.255.0.0"},
           "routes": routes, "relay": {"max_datagram": 100, "stats_interval_s": 0},
           "discovery": {"enabled": False}}
    cfg, errors = config.validate(obj, max_udp_sockets=8)
    if errors:
        raise SystemExit(str(errors))
    good, good2 = mk("198.18.0.5", 4000), mk("198.18.0.6", 4001)
    own, bad = mk("198.18.0.2", 4000), mk("198.18.1.9", 4000)
    a = [(b"x" * 50, good), (b"", good), (b"y" * 101, good), (b"z" * 100, good),
         (b"q" * 10, own), (b"w" * 10, bad), OSError(11), (b"e" * 10, good2),
         (b"r" * 10, good), (b"t" * 10, bad), (b"u" * 10, good), (b"i" * 10, good),
         (b"o" * 10, good), (b"p" * 10, good)]
    b = [(b"a" * 20, own), (b"b" * 20, good), (b"c" * 20, bad), (b"", bad), OSError(4),
         (b"f" * 99, good)] * 3
    rel = relay.Relay(cfg, nic=None, log=lambda *x: None)
    s1, s2 = Sock(a), Sock(b)
    tx = Tx((3, 9))
    rel.routes[0].sock = s1
    rel.routes[1].sock = s2
    rel.tx = tx
    rel.own_ip = "198.18.0.2"
    rel._poll = Poll([s1, s2])
    # What open() builds, for this version of the loop (it changed with the hot path).
    rel._by_sock = {}
    for r in rel.routes:
        if hasattr(r, "known"):
            rel._by_sock[r.sock] = (r.hot, r.dst_addr, r.known, r, r.sock.recvfrom)
        else:
            rel._by_sock[r.sock] = (r.hot, r.dst_addr, r)
    rel._running = True
    rel._pump(time.ticks_add(time.ticks_ms(), 400))
    routes = []
    for r in rel.stats()["routes"]:
        routes.append(dict([(k, r[k]) for k in relay.COUNTERS]))
    return {"routes": routes, "sent": tx.sent}


print(json.dumps({"tuple": run(tuple_addr), "raw": run(raw_sockaddr)}))
