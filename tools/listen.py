"""Receive multicast datagrams and print them (like mdump).

Joins every --group (on --iface when given) and prints one line per datagram:
time, source, group, size, and for `send`/`probe` payloads the stream,
sequence number and one-way latency (clocks of sender and listener must
agree for that to mean anything across hosts). Counts loss, duplicates and
reordering per stream from the sequence numbers. --quiet prints summaries
only (every --interval seconds, and at the end).
"""

import json
import selectors
import sys
import time

from tools import exitcode, options, stream

NAME = "listen"


def add_parser(sub):
    p = sub.add_parser(NAME, help="receive multicast, print datagrams, count loss (mdump)",
                       description=__doc__)
    options.add(p, "--group", action="append", required=True,
                help="multicast GROUP:PORT to join (repeat for several)")
    options.add(p, "--iface", help="this host's address on the LAN to join on (default: the "
                                   "kernel's choice)")
    options.add(p, "--count", help="stop after N datagrams (all groups)")
    options.add(p, "--duration", help="stop after S seconds")
    p.add_argument("--idle", type=options.SECONDS, metavar="S",
                   help="stop when nothing arrived for S seconds, after the first datagram "
                        "(%s)" % options.SECONDS.allowed)
    options.add(p, "--quiet", help="no line per datagram, summaries only")
    options.add(p, "--interval", default=0.0,
                help="a progress summary every S seconds while running, besides the last one")
    p.add_argument("--hex", action="store_true", help="show the first bytes of foreign payloads")
    options.add(p, "--json", help="JSON lines: {\"event\": \"ready\"|\"datagram\"|\"progress\"|"
                                  "\"summary\"}")
    p.set_defaults(func=run)
    return p


class Listener:
    """Receives on several groups; one Analyzer per (group, stream)."""

    def __init__(self, groups, iface=None):
        self.groups = list(groups)
        self.socks = {}
        self.sel = selectors.DefaultSelector()
        for ep in self.groups:
            s = stream.open_rx(ep[0], ep[1], iface)
            s.setblocking(False)
            self.socks[s] = ep
            self.sel.register(s, selectors.EVENT_READ, ep)
        self.per = {}  # (ep, stream id) -> Analyzer
        self.foreign = {ep: 0 for ep in self.groups}
        self.total = 0
        self.started = time.monotonic()

    def poll(self, timeout):
        """Receive what is waiting (waiting up to timeout); yields
        (ep, src, data, parsed, verdict, recv_ns)."""
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            ep = key.data
            for _ in range(256):
                try:
                    data, addr = s.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                now = time.time_ns()
                self.total += 1
                parsed = stream.parse_payload(data)
                verdict = None
                if parsed is None:
                    self.foreign[ep] += 1
                else:
                    sid, seq, sent = parsed
                    a = self.per.get((ep, sid))
                    if a is None:
                        a = self.per[(ep, sid)] = stream.Analyzer()
                    verdict = a.add(seq, sent, now, len(data), addr[0])
                yield ep, addr[0], data, parsed, verdict, now

    def group_summary(self, ep):
        """Totals over the streams of one group."""
        out = {"group": stream.fmt_endpoint(ep), "foreign": self.foreign[ep], "streams": []}
        agg = {"received": 0, "unique": 0, "lost": 0, "duplicates": 0, "reordered": 0,
               "bytes": 0, "expected": 0}
        for (e, sid), a in sorted(self.per.items(), key=lambda kv: kv[0][1]):
            if e != ep:
                continue
            s = a.summary()
            s["stream"] = "%08x" % sid
            out["streams"].append(s)
            for k in agg:
                agg[k] += s[k]
        out.update(agg)
        out["loss_pct"] = round(100.0 * agg["lost"] / agg["expected"], 3) if agg["expected"] else 0.0
        return out

    def summary(self, event="summary"):
        return {"event": event, "t": round(time.monotonic() - self.started, 3),
                "datagrams": self.total, "groups": [self.group_summary(ep) for ep in self.groups]}

    def close(self):
        for s in self.socks:
            self.sel.unregister(s)
            s.close()
        self.sel.close()


def format_group(g):
    line = "%s: %d datagrams, %d unique, lost %d (%.2f%%), dup %d, reordered %d" % (
        g["group"], g["received"], g["unique"], g["lost"], g["loss_pct"], g["duplicates"],
        g["reordered"])
    if g["foreign"]:
        line += ", %d foreign" % g["foreign"]
    for s in g["streams"]:
        src = ",".join(sorted(s["sources"]))
        line += "\n  stream %s from %s: seq %s..%s, %s" % (
            s["stream"], src, s["first_seq"], s["last_seq"], stream.format_latency(s["latency_ms"]))
        if s["rate_pps"]:
            line += ", %.1f/s %.3f Mbit/s" % (s["rate_pps"], s["mbit_s"])
    return line


def _datagram_line(ep, src, data, parsed, verdict, now, hexdump):
    t = time.strftime("%H:%M:%S", time.localtime(now / 1e9)) + ".%06d" % (now // 1000 % 1000000)
    head = "%s %s -> %s len %d" % (t, src, stream.fmt_endpoint(ep), len(data))
    if parsed is None:
        extra = " (not a test payload)"
        if hexdump:
            extra += " " + data[:32].hex()
        return head + extra
    sid, seq, sent = parsed
    mark = {"dup": " DUP", "reordered": " REORDERED"}.get(verdict, "")
    return head + " stream %08x seq %d lat %.3f ms%s" % (sid, seq, (now - sent) / 1e6, mark)


def run(args):
    stream.stop_on_sigterm()
    try:
        lst = Listener(args.group, args.iface)
    except OSError as e:
        print("listen: cannot join %s%s: %s" % (
            ", ".join(stream.fmt_endpoint(g) for g in args.group),
            " on %s" % args.iface if args.iface else "", e), file=sys.stderr)
        return exitcode.USAGE
    names = ", ".join(stream.fmt_endpoint(g) for g in args.group)
    if args.json:
        print(json.dumps({"event": "ready", "groups": [stream.fmt_endpoint(g) for g in args.group]}),
              flush=True)
    else:
        print("listen: joined %s%s (Ctrl-C stops)" % (
            names, " on %s" % args.iface if args.iface else ""), flush=True)
    start = time.monotonic()
    end = start + args.duration if args.duration else None
    next_report = start + args.interval if args.interval else None
    last_rx = None
    try:
        while True:
            now = time.monotonic()
            if end is not None and now >= end:
                break
            if args.idle and last_rx is not None and now - last_rx >= args.idle:
                break
            if args.count and lst.total >= args.count:
                break
            if next_report is not None and now >= next_report:
                next_report += args.interval
                _report(lst, args, "progress")
            waits = [0.2]
            if end is not None:
                waits.append(end - now)
            if next_report is not None:
                waits.append(next_report - now)
            for ep, src, data, parsed, verdict, rx_ns in lst.poll(max(0.0, min(waits))):
                last_rx = time.monotonic()
                if not args.quiet:
                    if args.json:
                        d = {"event": "datagram", "t_ns": rx_ns, "src": src,
                             "group": stream.fmt_endpoint(ep), "len": len(data)}
                        if parsed:
                            d.update(stream="%08x" % parsed[0], seq=parsed[1],
                                     lat_ms=round((rx_ns - parsed[2]) / 1e6, 3), verdict=verdict)
                        print(json.dumps(d), flush=True)
                    else:
                        print(_datagram_line(ep, src, data, parsed, verdict, rx_ns, args.hex),
                              flush=True)
                if args.count and lst.total >= args.count:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        lst.close()
    _report(lst, args, "summary")
    return exitcode.PASSED if lst.total else exitcode.FAILED


def _report(lst, args, event):
    s = lst.summary(event)
    if args.json:
        print(json.dumps(s), flush=True)
        return
    if event == "summary":
        print("listen: %d datagrams in %.1f s" % (s["datagrams"], s["t"]))
    for g in s["groups"]:
        print(("listen: " if event == "progress" else "") + format_group(g), flush=True)
