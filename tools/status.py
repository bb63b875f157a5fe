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
    p.add_argument("--port", type=int, default=disc.DEFAULT_PORT,
                   help="its discovery port (default %(default)s)")
    p.add_argument("--timeout", type=float, default=1.0,
                   help="seconds to wait per try (default %(default)s)")
    p.add_argument("--tries", type=int, default=3, help="queries before giving up (default 3)")
    p.add_argument("--iface", metavar="IP", help="this host's address to send from")
    p.add_argument("--json", action="store_true", help="print the reply as JSON")
    p.set_defaults(func=run)
    return p


def run(args):
    try:
        r = status(args.host, args.port, args.timeout, args.tries, args.iface)
    except OSError as e:
        print("status: %s: %s" % (args.host, e), file=sys.stderr)
        return 2
    if r is None:
        print("status: no reply from %s:%d after %d tries (discovery off, wrong port, or not a relay?)"
              % (args.host, args.port, args.tries), file=sys.stderr)
        return 1
    print(json.dumps(r, indent=2, sort_keys=True) if args.json else format_status(r))
    return 0


def main(argv=None):
    return disc.main(argv, add_parser)


if __name__ == "__main__":
    sys.exit(main())
