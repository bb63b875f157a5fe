"""Measure a relay end to end: send numbered datagrams to its input group and
receive them on its output group at the same time.

Reports loss, duplicates, reordering, latency percentiles (this host's
clock on both ends, so they are true figures) and throughput, and which
address forwarded them. Without --from/--to the route comes from
config.json (--route picks one). A progress bar runs on stderr on long runs
when stderr is a terminal. Exit code 0 when the loss is within --max-loss.
"""

import json
import socket
import sys
import threading
import time

from tools import discover as disc
from tools import exitcode, fw, lossplit, options, stream, term
from tools.send import Sender, add_traffic_args

NAME = "probe"
# A snooping switch learns our membership from the IGMP report sent on join;
# datagrams forwarded before that are dropped by the switch, not the relay.
JOIN_SETTLE_S = 0.5


def add_parser(sub):
    p = sub.add_parser(NAME, help="send to a relay's input group, receive its output: loss, "
                                  "latency, throughput", description=__doc__)
    p.add_argument("--from", dest="src", type=options.endpoint, metavar="G:P",
                   help="the relay's input GROUP:PORT (a route's \"from\")")
    p.add_argument("--to", dest="dst", type=options.endpoint, metavar="G:P",
                   help="the relay's output GROUP:PORT (the route's \"to\")")
    options.add(p, "--config", default=str(fw.CONFIG),
                help="take --from/--to (and the discovery group) from this config")
    options.add(p, "--route", default=0, help="which route of the config")
    add_traffic_args(p, group_required=None, rate=200.0, size=200,
                     until="send for S seconds (default 5 when --count is not given either)")
    options.add(p, "--wait", default=1.0, help="keep listening S seconds after the last send")
    options.add(p, "--max-loss", default=options.MAX_LOSS_PCT,
                help="exit 1 when the loss exceeds PCT percent")
    options.add(p, "--quiet", help="no progress bar: only the report")
    options.add(p, "--json", help="the report as JSON")
    p.set_defaults(func=run)
    return p


class ConfigError(ValueError):
    """The config the route was to come from is not valid."""


def route_from_config(path, index=0):
    """(from, to, discovery group) of route `index` of a config file; ConfigError for an
    invalid config, ValueError for a route it does not have."""
    raw, cfg, errors = fw.check_file(path)
    if errors:
        raise ConfigError("%s: %s" % (path, errors[0].splitlines()[0]))
    routes = cfg["routes"]
    if not 0 <= index < len(routes):
        raise ValueError("%s has %d route(s); --route %d does not exist" % (path, len(routes), index))
    r = routes[index]
    group = cfg["discovery"]["group"] if cfg["discovery"]["enabled"] else None
    return stream.parse_endpoint(r["from"]), stream.parse_endpoint(r["to"]), group


class BoardCounters:
    """The counters of the board(s) forwarding src -> dst, read from discovery replies (a
    multicast query to `group`, or a unicast one to `host`): taken before and after a probe,
    they say where its losses happened (tools/lossplit.py)."""

    def __init__(self, src, dst, group=disc.DEFAULT_GROUP, iface=None, host=None):
        self.route = (stream.fmt_endpoint(src), stream.fmt_endpoint(dst))
        self.group, self.iface, self.host = group, iface, host
        self.where = "%s:%d" % (host, disc.DEFAULT_PORT) if host else group

    def read(self):
        """{board id: the route's counters} of every board that answered and forwards it."""
        if self.host:
            from tools.status import status

            replies = [r for r in [status(self.host, tries=2, iface=self.iface)] if r]
        else:
            replies = disc.discover(self.group, timeout=0.5, iface=self.iface, repeat=1)
        out = {}
        for reply in replies:
            for route in reply.get("routes") or []:
                if (route.get("from"), route.get("to")) == self.route:
                    out[reply["id"]] = lossplit.counters(route)
        return out

    def split(self, before, after, sent, received):
        """The loss split of a probe from the readings before and after it."""
        if not after:
            return lossplit.split(sent, received, why_unknown=(
                "no board forwarding %s -> %s answered the discovery query on %s (discovery "
                "off, or another discovery group: --config names it)" % (*self.route, self.where)))
        if set(after) != set(before):
            return lossplit.split(sent, received, why_unknown=(
                "the boards answering for %s -> %s changed during the probe" % self.route))
        return lossplit.split(sent, received, lossplit.add(
            lossplit.delta(after[b], before[b]) for b in after))


class Probe:
    """One measurement: Sender on `src`, a receiver thread on `dst`."""

    def __init__(self, src, dst, size=200, rate=200.0, ttl=stream.DEFAULT_TTL, iface=None,
                 board=None):
        self.src, self.dst = src, dst
        self.board = board  # a BoardCounters, or None: no loss split
        self.board_before = self.board_after = None
        self.rx = stream.open_rx(dst[0], dst[1], iface)
        self.rx.settimeout(0.1)
        self.sender = Sender([src], size, rate, ttl, iface)
        self.sid = self.sender.streams[0]
        self.analyzer = stream.Analyzer()
        self.foreign = 0
        self.other_streams = 0
        self.interrupted = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    def _receive(self):
        a = self.analyzer
        while not self._stop.is_set():
            try:
                data, addr = self.rx.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.time_ns()
            p = stream.parse_payload(data)
            with self._lock:
                if p is None:
                    self.foreign += 1
                elif p[0] != self.sid:
                    self.other_streams += 1
                else:
                    a.add(p[1], p[2], now, len(data), addr[0])

    def received(self):
        with self._lock:
            return self.analyzer.unique

    def run(self, count=0, duration=5.0, wait=1.0, progress=None, settle=JOIN_SETTLE_S):
        """Send (until count/duration), then listen `wait` s more. progress:
        a callable(fraction, sent, received) called ~5 times a second.
        settle: seconds between joining the output group and the first send,
        so that a snooping switch has learned the membership."""
        if not count and not duration:
            duration = 5.0
        self._thread.start()
        settled = time.monotonic() + settle
        if self.board is not None:  # while the switch learns the join
            self.board_before = self.board.read()
        time.sleep(max(0.0, settled - time.monotonic()))
        total = count if count else None

        def tick(snd):
            if progress is None:
                return
            if total:
                frac = snd.sent / total
            else:
                frac = (time.monotonic() - snd.started) / duration
            progress(min(1.0, frac), snd.sent, self.received())

        try:
            self.sender.run(count, duration, tick, 0.2)
        except KeyboardInterrupt:
            self.interrupted = True  # report what was sent so far
        finally:
            sent = self.sender.sent
            end = time.monotonic() + wait
            # Stop early once everything arrived (but give duplicates a moment).
            while time.monotonic() < end:
                if self.received() >= sent:
                    time.sleep(min(0.1, max(0.0, end - time.monotonic())))
                    break
                time.sleep(0.02)
            self._stop.set()
            self._thread.join(1)
            self.rx.close()
            self.sender.close()
            if self.board is not None:
                self.board_after = self.board.read()
        return self.report()

    def report(self):
        with self._lock:
            self.analyzer.expected = self.sender.sent
            s = self.analyzer.summary()
        snd = self.sender.summary()
        return {
            "from": stream.fmt_endpoint(self.src),
            "to": stream.fmt_endpoint(self.dst),
            "size": self.sender.size,
            "sent": self.sender.sent,
            "send_errors": self.sender.errors,
            "send_rate_pps": snd["rate_pps"],
            "received": s["received"],
            "unique": s["unique"],
            "lost": s["lost"],
            "loss_pct": s["loss_pct"],
            "duplicates": s["duplicates"],
            "reordered": s["reordered"],
            "latency_ms": s["latency_ms"],
            "rate_pps": s["rate_pps"],
            "mbit_s": s["mbit_s"],
            "via": s["sources"],
            "foreign": self.foreign,
            "other_streams": self.other_streams,
            "duration_s": snd["duration_s"],
            "interrupted": self.interrupted,
            "loss_split": self._split(s["unique"]),
        }

    def _split(self, unique):
        sent = self.sender.sent
        if self.board is None:
            return lossplit.split(sent, unique, why_unknown="the board's counters were not read")
        return self.board.split(self.board_before or {}, self.board_after or {}, sent, unique)


def format_report(r):
    via = ", ".join("%s (%d)" % kv for kv in sorted(r["via"].items())) or "nobody"
    lines = [
        "probe: %s -> %s, %d-byte datagrams%s" % (r["from"], r["to"], r["size"],
                                                  " (interrupted)" if r.get("interrupted") else ""),
        "  sent      %d in %.1f s (%s/s)%s" % (
            r["sent"], r["duration_s"], r["send_rate_pps"],
            ", %d send errors" % r["send_errors"] if r["send_errors"] else ""),
        "  received  %d unique of %d sent: lost %d (%.2f%%), duplicates %d, reordered %d" % (
            r["unique"], r["sent"], r["lost"], r["loss_pct"], r["duplicates"], r["reordered"]),
    ]
    where = lossplit.describe(r["loss_split"])
    if where:
        lines.append("  " + where)
    lines.append("  %s" % stream.format_latency(r["latency_ms"]))
    if r["unique"]:
        lines.append("  throughput %s; forwarded by %s" % (
            stream.format_throughput(r["rate_pps"], r["mbit_s"]), via))
    else:
        lines.append("  nothing came back: no throughput to show, forwarded by nobody")
    if r["foreign"] or r["other_streams"]:
        lines.append("  also on %s: %d other datagrams, %d from other probes/senders" % (
            r["to"], r["foreign"], r["other_streams"]))
    return "\n".join(lines)


class ProgressBar:
    """A one-line bar on stderr, redrawn in place (only used on a terminal)."""

    def __init__(self, out=sys.stderr, width=30):
        self.out = out
        self.width = width

    def __call__(self, frac, sent, received):
        n = int(frac * self.width)
        loss = 100.0 * (sent - received) / sent if sent else 0.0
        self.out.write("\r[%s%s] %3d%%  sent %d  received %d  (%.1f%% not yet/lost)" % (
            "#" * n, "." * (self.width - n), frac * 100, sent, received, max(0.0, loss)))
        self.out.flush()

    def done(self):
        self.out.write("\r" + " " * (self.width + 60) + "\r")
        self.out.flush()


def run(args):
    stream.stop_on_sigterm()
    src, dst, group = args.src, args.dst, disc.DEFAULT_GROUP
    try:
        c_src, c_dst, group = route_from_config(args.config, args.route)
        src, dst = src or c_src, dst or c_dst
    except ConfigError as e:
        if src is None or dst is None:
            print("probe: give --from and --to, or a valid config: %s" % e, file=sys.stderr)
            return exitcode.FAILED
    except ValueError as e:
        if src is None or dst is None:
            print("probe: %s" % e, file=sys.stderr)
            return exitcode.USAGE
    if src == dst:
        print("probe: --from and --to are the same group: that is no relay", file=sys.stderr)
        return exitcode.USAGE
    board = BoardCounters(src, dst, group, args.iface) if group else None
    try:
        pr = Probe(src, dst, args.size, args.rate, args.ttl, args.iface, board)
    except (OSError, ValueError) as e:
        print("probe: %s" % e, file=sys.stderr)
        return exitcode.USAGE
    long_run = (args.duration or 0) >= 3 or (args.count and args.rate and args.count / args.rate >= 3) \
        or (not args.count and not args.duration)
    bar = ProgressBar() if (long_run and not args.quiet and term.is_tty(sys.stderr)) else None
    try:
        rep = pr.run(args.count, args.duration, args.wait, bar)
    except OSError as e:
        print("probe: sending to %s failed: %s (is there a route for multicast? give --iface IP)"
              % (stream.fmt_endpoint(src), e), file=sys.stderr)
        return exitcode.USAGE
    finally:
        if bar:
            bar.done()
    rep["max_loss_pct"] = args.max_loss
    rep["ok"] = rep["sent"] > 0 and rep["loss_pct"] <= args.max_loss
    if args.json:
        print(json.dumps(rep, indent=2, sort_keys=True))
    else:
        print(format_report(rep))
        if not rep["ok"]:
            print(term.verdicts("probe: FAIL: loss %.2f%% exceeds --max-loss %g%%"
                                % (rep["loss_pct"], args.max_loss)))
    return exitcode.PASSED if rep["ok"] else exitcode.FAILED
