"""Find the relays on the LAN: `python -m tools discover`.

Sends the discovery query (`MCRELAY?` + a nonce) to the discovery group and
collects the unicast replies until the timeout (each board answers once per
query; replies are matched by the nonce, duplicates by board id). The reply
format is in docs/discovery.md; `tools/status.py` asks one board by unicast.
"""

import json
import secrets
import socket
import time

from lib.config import DISCOVERY_DEFAULTS
from lib.discovery import DROPS, MAGIC  # the protocol is the board's
from tools import exitcode, options, stream

DEFAULT_GROUP = DISCOVERY_DEFAULTS["group"]
DEFAULT_PORT = stream.parse_endpoint(DEFAULT_GROUP)[1]


def new_nonce():
    return secrets.token_hex(4)


def parse_reply(data, nonce=None):
    """A reply datagram -> dict, or None if it is not a relay's reply (or
    answers another query)."""
    try:
        obj = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(obj, dict) or "mcrelay" not in obj or "id" not in obj:
        return None
    if nonce is not None and obj.get("nonce", "") != nonce:
        return None
    return obj


def open_socket(iface=None, ttl=1):
    """A UDP socket for queries: bound to iface (an address of this host) or
    any; multicast leaves through iface when given."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    if iface:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface))
    s.bind((iface or "", 0))
    return s


def collect(sock, nonce, timeout, resend=None, only_from=None, first=False):
    """Receive replies for `nonce` until `timeout` seconds pass. resend: a
    list of (at_seconds, callable) to send the query again. Returns a dict
    board id -> reply (with "reply_from" and "rtt_ms" added), the last reply
    of each board kept. only_from: accept replies from that IP only; first:
    stop at the first accepted reply."""
    start = time.monotonic()
    end = start + timeout
    pending = sorted(resend or [], key=lambda t: t[0])
    found = {}
    while True:
        now = time.monotonic()
        while pending and now - start >= pending[0][0]:
            pending.pop(0)[1]()
        left = end - now
        if left <= 0:
            return found
        wait = left
        if pending:
            wait = min(wait, max(0.0, start + pending[0][0] - now))
        sock.settimeout(max(wait, 0.001))
        try:
            data, addr = sock.recvfrom(65535)
        except (TimeoutError, socket.timeout):
            continue
        except ConnectionRefusedError:
            continue
        if only_from is not None and addr[0] != only_from:
            continue
        obj = parse_reply(data, nonce)
        if obj is None:
            continue
        obj["reply_from"] = "%s:%d" % addr
        obj["rtt_ms"] = round((time.monotonic() - start) * 1000, 1)
        obj["reply_bytes"] = len(data)
        found[obj["id"]] = obj
        if first:
            return found


def discover(group=DEFAULT_GROUP, timeout=2.0, iface=None, repeat=2, ttl=1):
    """Send the query to the group (`repeat` times, spread over the first
    half of the timeout, against loss) and return the replies, sorted by IP."""
    g, port = stream.parse_endpoint(group)
    nonce = new_nonce()
    query = MAGIC + nonce.encode()
    with open_socket(iface, ttl) as s:
        def send():
            s.sendto(query, (g, port))

        send()
        n = max(1, repeat)
        resend = [(timeout / 2 * i / n, send) for i in range(1, n)]
        found = collect(s, nonce, timeout, resend)
    return sorted(found.values(), key=lambda r: ip_key(r.get("ip", "")))


def ip_key(ip):
    try:
        return socket.inet_aton(ip)
    except OSError:
        return b"\xff" * 4


def drops(route):
    if "drop" in route:
        return route["drop"]
    return sum(route.get(k, 0) for k in DROPS)


def format_uptime(s):
    s = int(s)
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm%02ds" % (s // 60, s % 60)
    if s < 86400:
        return "%dh%02dm" % (s // 3600, s % 3600 // 60)
    return "%dd%02dh" % (s // 86400, s % 86400 // 3600)


HEADER = ("ID", "IP", "VERSION", "UPTIME", "FLAPS", "ROUTE", "RX", "TX", "DROPS")


def table_rows(replies):
    rows = []
    for r in replies:
        board = [str(r.get("id", "?")), str(r.get("ip", "?")), str(r.get("version", "?")),
                 format_uptime(r.get("uptime_s", 0)), str(r.get("link_flaps", 0))]
        routes = r.get("routes") or []
        if not routes:
            rows.append(board + ["-", "", "", ""])
        for i, rt in enumerate(routes):
            cells = board if i == 0 else [""] * len(board)
            rows.append(cells + ["%s -> %s" % (rt.get("from", "?"), rt.get("to", "?")),
                                 str(rt.get("rx", 0)), str(rt.get("tx", 0)), str(drops(rt))])
        if r.get("more"):
            rows.append([""] * 5 + ["(+%d more routes)" % r["more"], "", "", ""])
    return rows


def format_table(replies):
    rows = [list(HEADER)] + table_rows(replies)
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    right = {6, 7, 8}
    out = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def add_parser(sub):
    p = sub.add_parser("discover", help="find the relays on the LAN (multicast query); "
                                        "--watch: the live fleet view",
                       description=__doc__.splitlines()[0])
    return add_options(p, watching=False)


def add_options(p, watching):
    """discover's options; `top` (tools/fleet.py) has them too, watching from the start."""
    options.add(p, "--group", help="the discovery GROUP:PORT (the boards' discovery.group; "
                                   "default %s)" % DEFAULT_GROUP)
    options.add(p, "--iface", help="this host's address on the relays' LAN (the query leaves "
                                   "there)")
    options.add(p, "--ttl", default=1, help="multicast TTL of the query")
    options.add(p, "--json", help="the replies as JSON (--watch: a JSON line per round)")
    if not watching:
        options.add(p, "--timeout", default=2.0, help="seconds to collect replies")
        p.add_argument("--repeat", type=REPEAT, default=2, metavar="N",
                       help="send the query N times, against loss (%s; default 2)"
                       % REPEAT.allowed)
        p.add_argument("--watch", action="store_true",
                       help="the live fleet view: query every --interval seconds; each "
                            "route's rates, silent boards marked (the same as `top`)")
    options.add(p, "--interval", default=1.0, help="--watch: seconds between two queries")
    options.add(p, "--duration", help="--watch: stop after S seconds (default: at Ctrl-C)")
    p.set_defaults(func=run, watch=watching, timeout=2.0, repeat=2)
    return p


REPEAT = options.Range(int, 1, 10)


def run(args):
    group = stream.fmt_endpoint(args.group) if args.group else DEFAULT_GROUP
    if args.watch:
        from tools import fleet

        return fleet.run(args, group)
    replies = discover(group, args.timeout, args.iface, args.repeat, args.ttl)
    if args.json:
        print(json.dumps(replies, indent=2, sort_keys=True))
    else:
        if replies:
            print(format_table(replies))
        print("%d relay(s) answered on %s within %.1f s" % (len(replies), group, args.timeout))
    return exitcode.PASSED if replies else exitcode.FAILED
