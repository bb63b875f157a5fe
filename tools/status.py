"""Ask one relay how it is doing: `python -m tools status HOST`.

Sends the discovery query by unicast to HOST:PORT (the board answers on its
discovery port whether or not the query came by multicast) and prints the
reply: identity, uptime, link, and each route's counters (the same numbers as
the board's `stats` line). Retries a few times: UDP may lose either datagram.
"""

import json
import socket
import sys

from tools import discover as disc
from tools import exitcode, options


def status(host, port=disc.DEFAULT_PORT, timeout=1.0, tries=3, iface=None):
    """The board's reply as a dict, or None when it did not answer."""
    ip = socket.gethostbyname(host)
    with disc.open_socket(iface) as s:
        for _ in range(max(1, tries)):
            nonce = disc.new_nonce()
            s.sendto(disc.MAGIC + nonce.encode(), (ip, port))
            found = disc.collect(s, nonce, timeout, only_from=ip, first=True)
            if found:
                return next(iter(found.values()))
    return None


def format_status(r):
    lines = [
        "relay %s at %s, version %s" % (r.get("id", "?"), r.get("ip", "?"), r.get("version", "?")),
        "  up %s, link %s, %d link flap(s), %d rejoin(s), %d re-activation(s), %d loop error(s)"
        % (disc.format_uptime(r.get("uptime_s", 0)), r.get("link", "?"), r.get("link_flaps", 0),
           r.get("rejoins", 0), r.get("reactivations", 0), r.get("loop_errors", 0)),
    ]
    for rt in r.get("routes") or []:
        name = rt.get("name")
        lines.append("  %s%s -> %s: rx %d tx %d bytes %d drop %d" % (
            name + " " if name else "", rt.get("from", "?"), rt.get("to", "?"), rt.get("rx", 0),
            rt.get("tx", 0), rt.get("bytes", 0), disc.drops(rt)))
        detail = [(k, rt[k]) for k in disc.DROPS if rt.get(k)]
        if detail:
            lines.append("    drops: " + " ".join("%s %d" % kv for kv in detail))
    if r.get("more"):
        lines.append("  (+%d more routes not in the reply)" % r["more"])
    d = r.get("disc")
    if d:
        lines.append("  discovery: %d queries, %d replies, %d rate-limited, %d other datagrams" % (
            d.get("queries", 0), d.get("replies", 0), d.get("ratelimited", 0), d.get("bad", 0)))
    lines.append("  (reply %d bytes from %s in %.1f ms)" % (
        r.get("reply_bytes", 0), r.get("reply_from", "?"), r.get("rtt_ms", 0.0)))
    return "\n".join(lines)


def add_parser(sub):
    p = sub.add_parser("status", help="ask one relay for its counters (unicast query)",
                       description=__doc__.splitlines()[0])
    p.add_argument("host", help="the board's address")
    p.add_argument("--udp-port", type=UDP_PORT, default=disc.DEFAULT_PORT, metavar="N",
                   help="its discovery port: the port of its discovery.group (%s; default %d)"
                   % (UDP_PORT.allowed, disc.DEFAULT_PORT))
    options.add(p, "--timeout", default=1.0, help="seconds to wait for a reply, per try")
    p.add_argument("--tries", type=TRIES, default=3, metavar="N",
                   help="queries before giving up (%s; default 3)" % TRIES.allowed)
    options.add(p, "--iface", help="this host's address to send from")
    options.add(p, "--json", help="print the reply as JSON")
    p.set_defaults(func=run)
    return p


UDP_PORT = options.Range(int, 1, 65535)
TRIES = options.Range(int, 1, 100)


def run(args):
    try:
        r = status(args.host, args.udp_port, args.timeout, args.tries, args.iface)
    except OSError as e:
        print("status: %s: %s" % (args.host, e), file=sys.stderr)
        return exitcode.USAGE
    if r is None:
        print("status: no reply from %s:%d after %d tries (discovery off, wrong port, or not a relay?)"
              % (args.host, args.udp_port, args.tries), file=sys.stderr)
        return exitcode.FAILED
    print(json.dumps(r, indent=2, sort_keys=True) if args.json else format_status(r))
    return exitcode.PASSED
