"""Discovery and status (issue 7).

Unit tests run lib/discovery.py under the real MicroPython unix port (the
reply builder, query parsing, the responder's rate limit and group handling
with a stand-in socket). The twin tests run two simulated boards (unmodified
firmware, lwIP personality) on one private LAN and use the host tools
(`discover`, `status`) from a PC namespace, as an engineer would.
"""

import json
import re
import sys
import threading
import time

import pytest

from host_tests.twinlan import start_board, wait_running
from lib.discovery import REPLY_MAX
from tools import boardlink, stream
from tools import discover as disc
from tools import status as stat
from tools.twin import mpy, traffic

MAX = REPLY_MAX


def run_mpy(code, uid="e661410403000001"):
    res = mpy.run_code(code, path=(mpy.FAKES, mpy.LIB), env={"TWIN_UID": uid})
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def mpy_json(code, **kw):
    out = run_mpy(code, **kw).strip().splitlines()
    return json.loads(out[-1])


# --------------------------------------------------------------------------------------------
# unit: reply builder and query parser (MicroPython)
# --------------------------------------------------------------------------------------------
_ROUTE = ("{'name': 'route0', 'from': '224.0.10.1:50000', 'to': '224.0.10.2:50000', 'rx': 7, "
          "'tx': 5, 'bytes': 500, 'big': 1, 'empty': 0, 'own': 0, 'rate': 1, 'source': 0, "
          "'send_err': 0, 'recv_err': 0}")


def test_reply_has_every_field_and_echoes_nonce():
    out = mpy_json("""
import json, discovery as d
st = {'uptime_s': 42, 'link': 'up', 'link_flaps': 3, 'rejoins': 3, 'reactivations': 1,
      'loop_errors': 0, 'routes': [%s]}
info = {'id': d.board_id(), 'version': '9.9.9', 'ip': '198.18.0.11',
        'disc': {'queries': 1, 'replies': 0, 'ratelimited': 0, 'bad': 0, 'errors': 0}}
b = d.build_reply(info, st, 'n0nce-1')
print(json.dumps({'len': len(b), 'reply': json.loads(b)}))
""" % _ROUTE, uid="0123456789abcdef")
    r = out["reply"]
    assert out["len"] <= MAX
    assert r["mcrelay"] == 1
    assert r["id"] == "0123456789abcdef"
    assert (r["version"], r["ip"], r["uptime_s"], r["link_flaps"]) == ("9.9.9", "198.18.0.11", 42, 3)
    assert (r["link"], r["rejoins"], r["reactivations"], r["loop_errors"]) == ("up", 3, 1, 0)
    assert r["nonce"] == "n0nce-1"
    assert r["disc"]["queries"] == 1
    (rt,) = r["routes"]
    assert rt["from"] == "224.0.10.1:50000" and rt["to"] == "224.0.10.2:50000"
    assert (rt["rx"], rt["tx"], rt["bytes"], rt["drop"]) == (7, 5, 500, 2)
    assert (rt["name"], rt["big"], rt["rate"], rt["own"]) == ("route0", 1, 1, 0)
    assert set(disc.DROPS) <= set(rt)


def test_reply_is_compact_json_without_nonce_when_none_given():
    out = run_mpy("""
import discovery as d
st = {'uptime_s': 1, 'link_flaps': 0, 'routes': []}
print(d.build_reply({'id': 'ab', 'version': '1', 'ip': '198.18.0.1'}, st).decode())
""").strip()
    assert ", " not in out and '": ' not in out
    r = json.loads(out)
    assert "nonce" not in r and r["routes"] == []


def test_reply_stays_under_the_bound_dropping_detail_first():
    out = mpy_json("""
import json, discovery as d
big = 123456789012345
def route(i):
    r = {'name': 'a-long-route-name-%d' % i, 'from': '239.255.255.25%d:65535' % i,
         'to': '239.255.254.25%d:65534' % i}
    for k in ('rx', 'tx', 'bytes') + d.DROPS:
        r[k] = big
    return r
info = {'id': 'e661410403000001', 'version': '0.1.0', 'ip': '198.18.255.254',
        'disc': {'queries': big, 'replies': big, 'ratelimited': big, 'bad': big, 'errors': big}}
res = {}
for n in (1, 2, 4, 8, 30):
    st = {'uptime_s': big, 'link': 'up', 'link_flaps': big, 'rejoins': big,
          'reactivations': big, 'loop_errors': big, 'routes': [route(i % 10) for i in range(n)]}
    for limit in (1200, 600, 300, 120, 60):
        b = d.build_reply(info, st, 'x' * 32, limit)
        res['%d/%d' % (n, limit)] = [len(b), b.decode()]
print(json.dumps(res))
""")
    for key, (n, text) in out.items():
        routes, limit = map(int, key.split("/"))
        assert n <= limit, key
        r = json.loads(text)  # always valid JSON, never cut mid-way
        assert r["id"] == "e661410403000001"
        shown = r.get("routes", [])
        assert len(shown) + r.get("more", 0) == routes or "routes" not in r, key
        for rt in shown:  # compact or full, the essentials are there
            assert {"from", "to", "rx", "tx", "bytes", "drop"} <= set(rt)
    # four routes with huge counters: all four still listed, without per-reason detail
    r4 = json.loads(out["4/1200"][1])
    assert len(r4["routes"]) == 4 and "more" not in r4
    assert "name" not in r4["routes"][0] and "big" not in r4["routes"][0]
    # one route: the full detail fits
    assert "big" in json.loads(out["1/1200"][1])["routes"][0]
    # thirty routes (impossible on the board, 4 sockets at most): the rest counted in "more"
    r30 = json.loads(out["30/1200"][1])
    assert r30["more"] > 0


def test_reply_at_any_limit_is_valid_json_never_cut():
    # below what even {"mcrelay","id","more"} needs, fields go rather than the JSON being cut
    out = mpy_json("""
import json, discovery as d
st = {'uptime_s': 1, 'link_flaps': 0, 'routes': [{'from': '224.0.10.1:50000',
      'to': '224.0.10.2:50000', 'rx': 1, 'tx': 1, 'bytes': 1}] * 3}
info = {'id': 'e661410403000001', 'version': '0.1.0', 'ip': '198.18.0.11'}
print(json.dumps([d.build_reply(info, st, 'n', limit).decode() for limit in range(0, 200)]))
""")
    for limit, text in enumerate(out):
        assert len(text) <= limit, limit
        if limit < len('{"mcrelay":1}'):
            assert text == "", limit  # nothing valid fits: nothing is sent
            continue
        r = json.loads(text)  # valid at every size
        assert r["mcrelay"] == 1, limit
        if limit >= len('{"mcrelay":1,"id":"e661410403000001"}'):
            assert r["id"] == "e661410403000001", limit


def test_parse_query():
    out = mpy_json("""
import json, discovery as d
cases = [b'MCRELAY?', b'MCRELAY?abc-1.2_3:4', b'MCRELAY?' + b'n' * 32, b'MCRELAY?' + b'n' * 33,
         b'MCRELAY?a b', b'MCRELAY?\\xff', b'MCRELAY', b'mcrelay?', b'', b'{"mcrelay":1}',
         b'MCRELAY?"}']
print(json.dumps([d.parse_query(c) for c in cases]))
""")
    assert out == ["", "abc-1.2_3:4", "n" * 32, None, None, None, None, None, None, None, None]


# --------------------------------------------------------------------------------------------
# unit: the responder on a stand-in socket (MicroPython, real Relay object, no network)
# --------------------------------------------------------------------------------------------
_RESPONDER_SETUP = """
import json, time, discovery, relay, mcast
CFG = {
  'routes': [{'from': '224.0.10.1:50000', 'to': '224.0.10.2:50000', 'name': 'route0',
              'rate_pps': 0, 'burst': 16, 'allow': [], 'allow_reserved': False}],
  'relay': {'max_datagram': 1472, 'stats_interval_s': 0, 'ttl': None, 'link_check_ms': 500,
            'link_wait_s': 0, 'watchdog_ms': 0},
  'discovery': {'enabled': True, 'group': '239.255.10.1:50010', 'replies_per_s': %(rate)d},
}

class Sock:
    def __init__(self):
        self.inbox = []
        self.sent = []
        self.opts = []
    def recvfrom(self, n):
        data, addr = self.inbox.pop(0)
        return data[:n], addr
    def sendto(self, data, addr):
        self.sent.append((bytes(data), addr))
        return len(data)
    def setsockopt(self, level, opt, val):
        self.opts.append((opt == mcast.IP_ADD and 'join' or 'leave', bytes(val)))

class Nic:
    def ip(self):
        return '198.18.0.11'

resp = discovery.Responder(CFG['discovery'])
rel = relay.Relay(CFG, Nic(), responder=resp)
sock = Sock()
resp.join(sock, '198.18.0.11')
ASKER = ('198.18.0.20', 40000)

def ask(*queries):
    # the relay hands the responder its socket once per datagram waiting on it
    sock.inbox = list(queries)
    while sock.inbox:
        resp.handle(sock, rel)
"""


def responder_json(body, rate=5):
    return mpy_json(_RESPONDER_SETUP % {"rate": rate} + body)


def test_responder_joins_answers_by_unicast_and_counts():
    out = responder_json("""
rt = rel.routes[0]
rt.rx += 10; rt.tx += 9; rt.bytes += 900; rt.rate += 1   # counted by the loop
ask((b'MCRELAY?q1', ASKER), (b'hello', ASKER), (b'MCRELAY?q2', ('198.18.0.21', 5)),
    (b'MCRELAY?', ('224.0.10.9', 5)), (b'MCRELAY?', ('198.18.0.22', 0)))
print(json.dumps({'opts': [[k, list(v)] for k, v in sock.opts],
                  'sent': [[json.loads(d), a] for d, a in sock.sent],
                  'counters': resp.counters(), 'line': rel.stats_line()}))
""")
    assert out["opts"] == [["join", [239, 255, 10, 1, 198, 18, 0, 11]]]
    (r1, a1), (r2, a2) = out["sent"]
    assert a1 == ["198.18.0.20", 40000] and r1["nonce"] == "q1"
    assert a2 == ["198.18.0.21", 5] and r2["nonce"] == "q2"
    assert out["counters"] == {"queries": 2, "replies": 2, "ratelimited": 0, "bad": 3, "errors": 0}
    rt = r2["routes"][0]
    assert (rt["rx"], rt["tx"], rt["bytes"], rt["drop"], rt["rate"]) == (10, 9, 900, 1, 1)
    # the REPL's stats line shows the same numbers
    assert "route0 rx 10 tx 9 bytes 900 drop 1 (big 0 empty 0 own 0 rate 1" in out["line"]
    assert r1["ip"] == "198.18.0.11" and r1["version"] == run_mpy(
        "from version import VERSION; print(VERSION)").strip()


def test_responder_answers_raw_sockaddr_addresses_as_given():
    # the unix port's recvfrom gives raw sockaddr bytes: the reply goes back to exactly that
    out = responder_json("""
raw = mcast.sockaddr('198.18.0.20', 40001)
ask((b'MCRELAY?r', raw))
d, a = sock.sent[0]
print(json.dumps({'same': a == raw, 'ip': mcast.addr_ip(a), 'port': mcast.addr_port(a)}))
""")
    assert out == {"same": True, "ip": "198.18.0.20", "port": 40001}


def test_responder_rate_limit_burst_then_refill():
    out = responder_json("""
res = {}
ask(*[(b'MCRELAY?', ASKER)] * 500)
res['burst'] = resp.counters()
for i in range(10):             # one second of 100 ms ticks
    resp.tick(100)
ask(*[(b'MCRELAY?', ASKER)] * 50)
res['after_1s'] = resp.counters()
resp.tick(60000)  # a long pause: the bucket stays at its size
ask(*[(b'MCRELAY?', ASKER)] * 50)
res['after_pause'] = resp.counters()
res['sizes'] = [len(d) for d, a in sock.sent]
print(json.dumps(res))
""", rate=5)
    assert out["burst"]["replies"] == 5 and out["burst"]["ratelimited"] == 495
    assert out["after_1s"]["replies"] == 10
    assert out["after_pause"]["replies"] == 15
    assert out["after_pause"]["queries"] == 600
    assert max(out["sizes"]) <= MAX


def test_responder_fractional_refill_keeps_the_rate():
    # 3 replies/s refilled every 100 ms must give 3 per second, not 0 (0.3 per tick)
    out = responder_json("""
resp.tokens = 0
for i in range(100):          # ten seconds of ticks, 10 queries per tick
    resp.tick(100)
    ask(*[(b'MCRELAY?', ASKER)] * 10)
print(json.dumps(resp.counters()))
""", rate=3)
    assert 29 <= out["replies"] <= 31


def test_responder_rejoin_and_leave():
    out = responder_json("""
resp.rejoin(sock, '198.18.0.11', False)
resp.rejoin(sock, '198.18.0.12', True)
resp.leave(sock)
resp.leave(sock)
print(json.dumps([[k, list(v)[4:]] for k, v in sock.opts]))
""")
    # joined at start, left and joined on a rejoin, joined afresh on the new address, left once
    assert out == [["join", [198, 18, 0, 11]], ["leave", [198, 18, 0, 11]],
                   ["join", [198, 18, 0, 11]], ["join", [198, 18, 0, 12]],
                   ["leave", [198, 18, 0, 12]]]


# --------------------------------------------------------------------------------------------
# unit: host tool formatting (CPython)
# --------------------------------------------------------------------------------------------
def test_table_and_status_text():
    r = {"mcrelay": 1, "id": "e661410403000001", "version": "0.1.0", "ip": "198.18.0.11",
         "uptime_s": 3725, "link": "up", "link_flaps": 2,
         "routes": [{"from": "224.0.10.1:50000", "to": "224.0.10.2:50000", "rx": 30, "tx": 29,
                     "bytes": 2900, "drop": 1, "rate": 1},
                    {"from": "224.0.10.5:50002", "to": "224.0.10.6:50002", "rx": 0, "tx": 0,
                     "bytes": 0, "drop": 0}],
         "reply_bytes": 300, "reply_from": "198.18.0.11:50010", "rtt_ms": 1.0}
    t = disc.format_table([r])
    lines = t.splitlines()
    assert lines[0].split() == list(disc.HEADER)
    assert lines[1].split() == ["e661410403000001", "198.18.0.11", "0.1.0", "1h02m", "2",
                                "224.0.10.1:50000", "->", "224.0.10.2:50000", "30", "29", "1"]
    assert lines[2].split() == ["224.0.10.5:50002", "->", "224.0.10.6:50002", "0", "0", "0"]
    s = stat.format_status(r)
    assert "relay e661410403000001 at 198.18.0.11, version 0.1.0" in s
    assert "224.0.10.1:50000 -> 224.0.10.2:50000: rx 30 tx 29 bytes 2900 drop 1" in s
    assert "drops: rate 1" in s
    assert disc.parse_reply(b'{"mcrelay":1,"id":"a","nonce":"x"}', "y") is None
    assert disc.parse_reply(b"MCRELAY?x", "x") is None
    assert disc.parse_reply(b'{"mcrelay":1,"id":"a","nonce":"x"}', "x")["id"] == "a"
    assert [disc.format_uptime(s) for s in (5, 65, 3600, 90000)] == ["5s", "1m05s", "1h00m",
                                                                      "1d01h"]


# --------------------------------------------------------------------------------------------
# twin: two simulated boards on one LAN, the host tools in a PC namespace
# --------------------------------------------------------------------------------------------
B1_IP, B2_IP, PC_IP = "198.18.0.11", "198.18.0.12", "198.18.0.20"
B1_UID, B2_UID = "e6614104030000a1", "e6614104030000b2"
RATE = 5  # discovery.replies_per_s in these tests
BASE = {
    "nic": {},
    "network": {"ip": "192.168.11.104", "netmask": "255.255.255.0",
                "gateway": "192.168.11.1", "dns": "8.8.8.8"},
    "relay": {},
}
B1_ROUTES = [{"from": "224.0.10.1:50000", "to": "224.0.10.2:50000", "name": "alpha"},
             {"from": "224.0.10.5:50002", "to": "224.0.10.6:50002", "name": "idle"}]
B2_ROUTES = [{"from": "224.0.10.3:50000", "to": "224.0.10.4:50000", "name": "beta"}]


def discovery_config(routes, **discovery):
    """A board config with these routes and discovery on (replies_per_s RATE)."""
    cfg = dict(BASE, routes=routes)
    cfg["discovery"] = {"enabled": True, "group": disc.DEFAULT_GROUP, "replies_per_s": RATE}
    cfg["discovery"].update(discovery)
    return cfg


def start_discovery_board(host, routes, uid, personality="lwip", **discovery):
    """A twin board with these routes, running (status line printed: groups joined)."""
    b = start_board(host, discovery_config(routes, **discovery), personality=personality,
                    uid=uid)
    try:
        wait_running(b)
    except BaseException:
        b.close()
        raise
    return b


def cli(host, *args, timeout=60):
    """`python -m tools <args>` in a host namespace: (exit code, stdout, stderr)."""
    res = host.run([sys.executable, "-m", "tools", *args], capture_output=True, text=True,
                   cwd=mpy.ROOT, timeout=timeout)
    return res.returncode, res.stdout, res.stderr


def wait_counter(board, text, timeout=15):
    """Wait for a stats line containing text (the relay prints one every second)."""
    return board.wait_for(text, timeout)


def stats_numbers(line, name):
    """rx, tx, bytes, drop of route `name` from a board's stats line."""
    r = boardlink.parse_stats(line)["routes"][name]
    return {k: r[k] for k in ("rx", "tx", "bytes", "drop")}


@pytest.fixture
def two_boards(lan):
    h1 = lan.add_host("b1", B1_IP)
    h2 = lan.add_host("b2", B2_IP)
    pc = lan.add_host("pc", PC_IP)
    boards = []
    try:
        boards.append(start_discovery_board(h1, B1_ROUTES, B1_UID))
        boards.append(start_discovery_board(h2, B2_ROUTES, B2_UID))
        lan.query()  # the switch snoops strictly: a query reaches only boards that joined
        yield lan, pc, boards
    finally:
        for b in boards:
            b.close()
    for b in boards:
        assert "Traceback" not in b.output(), b.output()


def test_discover_lists_both_boards_with_the_traffic_they_saw(two_boards):
    lan, pc, (b1, b2) = two_boards
    assert lan.wait_mdb(("b1", "239.255.10.1")) and lan.wait_mdb(("b2", "239.255.10.1"))
    n1, n2, size1, size2 = 30, 45, 100, 64
    assert pc.send("224.0.10.1", 50000, count=n1, interval=0.005, payload=b"x" * size1) == n1
    assert pc.send("224.0.10.3", 50000, count=n2, interval=0.005, payload=b"y" * size2) == n2
    line1 = wait_counter(b1, "alpha rx %d tx %d" % (n1, n1))
    line2 = wait_counter(b2, "beta rx %d tx %d" % (n2, n2))

    code, out, err = cli(pc, "discover", "--iface", PC_IP, "--timeout", "2", "--json")
    assert code == 0, err
    replies = json.loads(out)
    assert [r["id"] for r in replies] == [B1_UID, B2_UID]
    r1, r2 = replies
    assert (r1["ip"], r2["ip"]) == (B1_IP, B2_IP)
    assert r1["reply_from"] == B1_IP + ":50010" and r2["reply_from"] == B2_IP + ":50010"
    for r in replies:
        assert r["version"] == run_mpy("from version import VERSION; print(VERSION)").strip()
        assert r["link_flaps"] == 0 and r["link"] == "up" and r["uptime_s"] >= 0
        assert r["reply_bytes"] <= MAX
    a, idle = r1["routes"]
    (b,) = r2["routes"]
    assert (a["from"], a["to"], b["from"], b["to"]) == (
        "224.0.10.1:50000", "224.0.10.2:50000", "224.0.10.3:50000", "224.0.10.4:50000")
    assert (a["rx"], a["tx"], a["bytes"], a["drop"]) == (n1, n1, n1 * size1, 0)
    assert (b["rx"], b["tx"], b["bytes"], b["drop"]) == (n2, n2, n2 * size2, 0)
    assert (idle["rx"], idle["tx"], idle["bytes"], idle["drop"]) == (0, 0, 0, 0)
    # the REPL stats line shows the same numbers (no traffic since those lines)
    assert stats_numbers(line1, "alpha") == {k: a[k] for k in ("rx", "tx", "bytes", "drop")}
    assert stats_numbers(line2, "beta") == {k: b[k] for k in ("rx", "tx", "bytes", "drop")}

    code, out, err = cli(pc, "discover", "--iface", PC_IP, "--timeout", "1.5")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == list(disc.HEADER)
    row1 = next(line for line in lines if line.startswith(B1_UID)).split()
    assert row1[:2] == [B1_UID, B1_IP] and row1[-3:] == [str(n1), str(n1), "0"]
    row2 = next(line for line in lines if line.startswith(B2_UID)).split()
    assert row2[:2] == [B2_UID, B2_IP] and row2[-3:] == [str(n2), str(n2), "0"]
    assert "2 relay(s) answered" in lines[-1]


def test_status_asks_one_board(two_boards):
    lan, pc, (b1, b2) = two_boards
    pc.send("224.0.10.3", 50000, count=7, interval=0.005, payload=b"z" * 10)
    wait_counter(b2, "beta rx 7 tx 7")
    code, out, err = cli(pc, "status", B2_IP, "--json")
    assert code == 0, err
    r = json.loads(out)
    assert (r["id"], r["ip"], r["reply_from"]) == (B2_UID, B2_IP, B2_IP + ":50010")
    (b,) = r["routes"]
    assert (b["name"], b["rx"], b["tx"], b["bytes"], b["drop"]) == ("beta", 7, 7, 70, 0)
    code, out, err = cli(pc, "status", B1_IP)
    assert code == 0, err
    assert out.startswith("relay %s at %s" % (B1_UID, B1_IP))
    assert "alpha 224.0.10.1:50000 -> 224.0.10.2:50000: rx 0 tx 0 bytes 0 drop 0" in out
    # nobody there: a clear message and exit code 1, quickly
    code, out, err = cli(pc, "status", "198.18.0.99", "--timeout", "0.3", "--tries", "2")
    assert code == 1 and "no reply from 198.18.0.99:50010" in err


@pytest.mark.parametrize("interval", [0.0, 0.004], ids=["burst", "paced-2s"])
def test_query_flood_is_rate_limited_and_bounded(two_boards, interval):
    lan, pc, (b1, b2) = two_boards
    n, listen = 500, 3.0
    # route traffic during the flood: forwarding must not suffer
    fwd = []
    sender = threading.Thread(target=lambda: fwd.append(
        pc.send("224.0.10.1", 50000, count=40, interval=0.02, payload=b"f" * 200)))
    sender.start()
    g, port = stream.parse_endpoint(disc.DEFAULT_GROUP)
    res = pc.run(traffic.argv("flood", g, port, n, interval, listen, PC_IP),
                 capture_output=True, text=True, timeout=60)
    sender.join(30)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    per_board = {B1_IP: [], B2_IP: []}
    for ip, size, _t in out["got"]:
        per_board[ip].append(size)
    # at most a full bucket (RATE) plus RATE per second of the run, per board
    bound = RATE + RATE * out["elapsed"]
    for ip, sizes in per_board.items():
        assert 1 <= len(sizes) <= bound, (ip, len(sizes), bound)
        assert max(sizes) <= MAX
        if interval:  # queries kept coming for sent_s seconds: the bucket refilled meanwhile
            assert len(sizes) >= RATE + RATE * out["sent_s"] - 2, (ip, len(sizes))
    assert fwd == [40]
    wait_counter(b1, "alpha rx 40 tx 40 bytes 8000 drop 0")
    # the boards counted what they refused; both still answer afterwards
    time.sleep(1.2)
    for ip, uid in ((B1_IP, B1_UID), (B2_IP, B2_UID)):
        code, text, err = cli(pc, "status", ip, "--json")
        assert code == 0, err
        r = json.loads(text)
        assert r["id"] == uid
        d = r["disc"]
        assert d["ratelimited"] > 0
        assert d["replies"] >= len(per_board[ip])
        # (the counters in a reply include the query it answers, not the reply itself)
        assert d["queries"] == d["replies"] + d["ratelimited"] + 1
        assert d["queries"] <= n + 1
        per_board[ip] = (len(per_board[ip]), d["queries"] - 1, max(per_board[ip]))
    print("\nflood %s: %d queries sent in %.2f s; per board (replies, queries that reached "
          "the responder, largest reply bytes): %s; listened %.1f s, bound %.1f replies"
          % ("burst" if not interval else "paced", n, out["sent_s"], per_board,
             out["elapsed"], bound))


def test_discovery_survives_a_cable_pull(two_boards):
    # the snooping switch forgets the port's groups when its link drops: only the
    # responder's rejoin makes the board findable again
    lan, pc, (b1, b2) = two_boards
    h1 = lan.hosts["b1"]
    start = len(b1.lines)
    lan.cable(h1, False)
    b1.wait_for("link DOWN", start=start)
    assert lan.wait_mdb(("b1", "239.255.10.1"), present=False)
    lan.cable(h1, True)
    b1.wait_for("link up again (flap 1)", start=start)
    assert lan.wait_mdb(("b1", "239.255.10.1"))
    code, out, err = cli(pc, "discover", "--iface", PC_IP, "--timeout", "1.5", "--json")
    assert code == 0, err
    by_id = {r["id"]: r for r in json.loads(out)}
    assert set(by_id) == {B1_UID, B2_UID}
    assert by_id[B1_UID]["link_flaps"] == 1 and by_id[B2_UID]["link_flaps"] == 0


def test_discovery_switched_off_answers_nothing(lan):
    h = lan.add_host("b1", B1_IP)
    pc = lan.add_host("pc", PC_IP)
    b = start_discovery_board(h, B1_ROUTES, B1_UID, enabled=False)
    try:
        lan.query()
        code, out, err = cli(pc, "discover", "--iface", PC_IP, "--timeout", "1", "--json")
        assert code == 1 and json.loads(out) == []
        code, out, err = cli(pc, "status", B1_IP, "--timeout", "0.3", "--tries", "1")
        assert code == 1
        assert ("b1", "239.255.10.1") not in lan.mdb()
    finally:
        b.close()
    assert "Traceback" not in b.output()


def test_unix_port_personality_answers_too(lan):
    # the unix port's recvfrom gives raw sockaddr bytes: the reply must still reach the asker
    h = lan.add_host("b1", B1_IP)
    pc = lan.add_host("pc", PC_IP)
    b = start_discovery_board(h, B1_ROUTES, B1_UID, personality="unix")
    try:
        lan.query()
        pc.send("224.0.10.1", 50000, count=10, interval=0.005, payload=b"u" * 10)
        wait_counter(b, "alpha rx 10 tx 10")
        code, out, err = cli(pc, "discover", "--iface", PC_IP, "--timeout", "1", "--json")
        assert code == 0, err
        (r,) = json.loads(out)
        assert (r["id"], r["ip"], r["reply_from"]) == (B1_UID, B1_IP, B1_IP + ":50010")
        assert (r["routes"][0]["rx"], r["routes"][0]["bytes"]) == (10, 100)
    finally:
        b.close()
    assert "Traceback" not in b.output()


def test_the_fleet_view_lists_both_boards_with_the_rates_listen_measures(two_boards):
    """`top` (discover --watch) against two boards forwarding 200/s and 120/s: each route's
    forwarding rate within 10 % of what `listen` receives from it."""
    import statistics
    import subprocess

    lan, pc, (b1, b2) = two_boards
    tools = [sys.executable, "-m", "tools"]
    listen = pc.popen(tools + ["listen", "-g", "224.0.10.2:50000", "-g", "224.0.10.4:50000",
                               "--iface", PC_IP, "--quiet", "--json", "--duration", "10"],
                      stdout=subprocess.PIPE, text=True, cwd=mpy.ROOT)
    assert json.loads(listen.stdout.readline())["event"] == "ready"
    rates = {"224.0.10.1:50000": 200, "224.0.10.3:50000": 120}
    senders = [pc.popen(tools + ["send", "-g", group, "--rate", str(rate), "--duration", "8",
                                 "--iface", PC_IP, "--quiet"],
                        stdout=subprocess.DEVNULL, cwd=mpy.ROOT) for group, rate in rates.items()]
    time.sleep(1.0)  # the first reply then already counts traffic
    code, out, err = cli(pc, "top", "--iface", PC_IP, "--duration", "5.5", "--json")
    for s in senders:
        assert s.wait(20) == 0
    received = json.loads(listen.communicate(timeout=20)[0].strip().splitlines()[-1])
    assert code == 0, err
    rounds = [json.loads(line) for line in out.splitlines()]
    assert len(rounds) >= 5 and all(r["event"] == "fleet" for r in rounds)
    last = rounds[-1]["boards"]
    assert [b["id"] for b in last] == [B1_UID, B2_UID] and all(b["answering"] for b in last)
    listened = {g["group"]: g["streams"][0]["rate_pps"] for g in received["groups"]}
    for board, (group_in, group_out) in ((B1_UID, ("224.0.10.1:50000", "224.0.10.2:50000")),
                                         (B2_UID, ("224.0.10.3:50000", "224.0.10.4:50000"))):
        seen = [next(rt for rt in next(b for b in r["boards"] if b["id"] == board)["routes"]
                     if rt["from"] == group_in) for r in rounds]
        tx = [rt["tx_pps"] for rt in seen if rt["tx_pps"] is not None]
        assert len(tx) >= 4, seen
        fleet_rate = statistics.median(tx)
        assert abs(fleet_rate - listened[group_out]) <= 0.1 * listened[group_out], (
            board, tx, listened)
        assert abs(listened[group_out] - rates[group_in]) <= 0.1 * rates[group_in]
        assert all(rt["mbit_s"] > 0 for rt in seen if rt["mbit_s"] is not None)
    idle = next(rt for rt in next(b for b in last if b["id"] == B1_UID)["routes"]
                if rt["from"] != "224.0.10.1:50000")
    assert idle["tx_pps"] == 0.0  # the other route of board 1 forwards nothing


def test_the_fleet_view_marks_a_board_that_stops_answering(two_boards):
    lan, pc, (b1, b2) = two_boards
    import subprocess

    top = pc.popen([sys.executable, "-m", "tools", "top", "--iface", PC_IP, "--duration", "6"],
                   stdout=subprocess.PIPE, text=True, cwd=mpy.ROOT)  # not a terminal: lines
    time.sleep(1.5)
    b2.stop()  # the board goes silent
    out = top.communicate(timeout=30)[0].splitlines()
    assert top.returncode == 0
    first = [ln for ln in out if B2_UID in ln][0]
    assert " %s up " % B2_IP in first and "NO REPLY" not in first
    assert re.search(r"%s .*\| NO REPLY for [3-5] s$" % B2_UID, out[-1] if B2_UID in out[-1]
                     else [ln for ln in out if B2_UID in ln][-1])
    assert any(B1_UID in ln and "NO REPLY" not in ln for ln in out[-3:])
