"""Send numbered, timestamped test datagrams to multicast groups (like msend).

Each datagram carries the header of tools/stream.py (magic, stream id,
sequence number, send time) padded to --size, so `listen` and `probe` count
loss, duplicates, reordering and latency. Runs until --count, --duration or
Ctrl-C.
"""

import errno
import json
import sys
import time

from tools import exitcode, options, stream

NAME = "send"


def add_parser(sub):
    p = sub.add_parser(NAME, help="send numbered test datagrams to multicast groups (msend)",
                       description=__doc__)
    add_traffic_args(p)
    p.add_argument("--loop", action="store_true",
                   help="multicast loopback on: this host's own sockets get the datagrams too")
    options.add(p, "--interval", default=1.0, help="a progress line every S seconds")
    options.add(p, "--quiet", help="only the final summary")
    options.add(p, "--json", help="JSON lines: {\"event\": \"progress\"} and {\"event\": "
                                  "\"summary\"}")
    p.set_defaults(func=run)
    return p


def add_traffic_args(p, group_required=True, rate=100.0, size=64,
                     until="stop after S seconds (default: no limit)"):
    """The options of a numbered stream, shared by send and probe."""
    if group_required is not None:
        options.add(p, "--group", action="append", required=group_required,
                    help="multicast GROUP:PORT (repeat for several)")
    options.add(p, "--size", default=size, help="datagram size")
    options.add(p, "--rate", default=rate, help="datagrams per second per group")
    options.add(p, "--count", help="stop after N per group (default: no limit)")
    options.add(p, "--duration", help=until)
    options.add(p, "--ttl", default=stream.DEFAULT_TTL,
                help="multicast TTL: raise it only to cross routers")
    options.add(p, "--iface", help="this host's address on the LAN to use (IP_MULTICAST_IF / "
                                   "membership); default: the kernel's multicast route")


class Sender:
    """Sends to several groups in lock step: datagram n goes to every group."""

    def __init__(self, groups, size=64, rate=100.0, ttl=stream.DEFAULT_TTL, iface=None,
                 loop=False):
        self.groups = list(groups)
        self.size = stream.padded_size(size)
        self.rate = rate
        self.sock = stream.open_tx(iface, ttl, loop)
        self.streams = [stream.new_stream_id() for _ in self.groups]
        self.sent = 0  # per group
        self.errors = 0
        self.last_error = None
        self.started = None
        self.ended = None
        self._pad = bytes(max(0, self.size - stream.HEADER_SIZE))

    def send_one(self):
        """Datagram number self.sent to every group."""
        n = self.sent
        pack = stream.HEADER.pack
        sendto = self.sock.sendto
        for ep, sid in zip(self.groups, self.streams, strict=True):
            data = pack(stream.MAGIC, sid, n, time.time_ns()) + self._pad
            try:
                sendto(data, ep)
            except OSError as e:
                self.errors += 1
                self.last_error = e
                if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
                    raise
        self.sent += 1

    def run(self, count=0, duration=0.0, on_tick=None, tick_s=1.0, stop=None):
        """Send until count/duration/stop() (whichever first). on_tick(self)
        every tick_s seconds."""
        pacer = stream.Pacer(self.rate)
        self.started = time.monotonic()
        end = self.started + duration if duration else None
        next_tick = self.started + tick_s if tick_s else None
        try:
            while True:
                if count and self.sent >= count:
                    break
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                if stop is not None and stop():
                    break
                if next_tick is not None and now >= next_tick:
                    next_tick += tick_s
                    if on_tick:
                        on_tick(self)
                due = pacer.due()
                burst = 0
                while self.sent < due and burst < 64 and not (count and self.sent >= count):
                    self.send_one()
                    burst += 1
                if self.sent >= due:
                    wait = pacer.start + self.sent / self.rate - time.perf_counter() if self.rate else 0
                    limit = [0.05]
                    if end is not None:
                        limit.append(end - time.monotonic())
                    if next_tick is not None:
                        limit.append(next_tick - time.monotonic())
                    wait = min([wait] + limit)
                    if wait > 0:
                        time.sleep(wait)
        finally:
            self.ended = time.monotonic()
        return self

    def summary(self):
        dur = (self.ended or time.monotonic()) - (self.started or time.monotonic())
        return {
            "event": "summary",
            "groups": [stream.fmt_endpoint(g) for g in self.groups],
            "streams": ["%08x" % s for s in self.streams],
            "sent": self.sent,
            "sent_total": self.sent * len(self.groups),
            "errors": self.errors,
            "size": self.size,
            "duration_s": round(dur, 3),
            "rate_pps": round(self.sent / dur, 1) if dur > 0 else None,
            "mbit_s": round(self.sent * len(self.groups) * self.size * 8 / dur / 1e6, 3)
            if dur > 0 else None,
        }

    def close(self):
        self.sock.close()


def run(args):
    stream.stop_on_sigterm()
    try:
        s = Sender(args.group, args.size, args.rate, args.ttl, args.iface, args.loop)
    except OSError as e:
        print("send: cannot open the socket%s: %s" % (
            " on --iface %s" % args.iface if args.iface else "", e), file=sys.stderr)
        return exitcode.USAGE
    names = ", ".join(stream.fmt_endpoint(g) for g in args.group)

    def tick(snd):
        if args.quiet:
            return
        el = time.monotonic() - snd.started
        if args.json:
            print(json.dumps({"event": "progress", "t": round(el, 3), "sent": snd.sent,
                              "errors": snd.errors}), flush=True)
        else:
            print("send: %.0fs sent %d per group%s" % (
                el, snd.sent, ", %d errors" % snd.errors if snd.errors else ""), flush=True)

    if not args.quiet and not args.json:
        print("send: %d-byte datagrams to %s at %s/s, ttl %d%s (Ctrl-C stops)" % (
            s.size, names, "%g" % args.rate if args.rate else "max", args.ttl,
            ", via %s" % args.iface if args.iface else ""), flush=True)
    code = exitcode.PASSED
    try:
        s.run(args.count or 0, args.duration or 0.0, tick, args.interval)
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print("send: %s: %s (is there a route for multicast? give --iface IP)" % (names, e),
              file=sys.stderr)
        code = exitcode.USAGE
    finally:
        s.close()
    summ = s.summary()
    if args.json:
        print(json.dumps(summ), flush=True)
    else:
        print("send: sent %d datagrams per group to %s in %.1f s (%s)%s" % (
            summ["sent"], names, summ["duration_s"],
            stream.format_throughput(summ["rate_pps"], summ["mbit_s"]),
            ", %d send errors (last: %s)" % (s.errors, s.last_error) if s.errors else ""),
            flush=True)
    return code
