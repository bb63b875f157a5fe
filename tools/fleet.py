"""The fleet view, `discover --watch` (or `top`): every relay on the LAN, refreshed each
interval, each route's rates in datagrams/s and Mbit/s.

Each round sends the discovery query (tools/discover.py) and collects replies for one interval.
A board's rates come from two replies of that board: what its counters grew by over the time
between the replies' arrivals (the board builds a reply from its counters as it sends it, so
on a LAN the arrival is the moment of the reading, within a millisecond). Rates a reply brings
itself (a route's `rx_pps`/`tx_pps`/`drop_pps`, from firmware that computes them at its stats
tick) are shown as they come. A board that restarted (its uptime went back) shows no rates
until its next reply. Boards that stop answering stay listed, marked with how long they have
been silent.

Shown as a live table on a terminal (rich), a plain line per route and round otherwise, or one
JSON object per round (--json).
"""

import json
import sys
import time

from tools import discover as disc
from tools import exitcode, stream, term

NAME = "top"
SILENT_ROUNDS = 2.5  # a board is marked after missing this many rounds' worth of replies
REPLY_RATES = ("rx_pps", "tx_pps", "drop_pps")  # what a reply may carry itself


def add_parser(sub):
    p = sub.add_parser(NAME, help="the live fleet view (discover --watch): every relay's rates, "
                                  "refreshed each second", description=__doc__)
    return disc.add_options(p, watching=True)


def run(args, group=None):
    """discover --watch and top."""
    group = group or (stream.fmt_endpoint(args.group) if args.group else disc.DEFAULT_GROUP)
    if args.interval <= 0:
        print("%s: --interval must be more than 0 s to watch" % args.command, file=sys.stderr)
        return exitcode.USAGE
    if args.json:
        show = JsonLines()
    elif term.is_tty(sys.stdout):
        show = LiveTable(group)
    else:
        show = PlainLines()
    return watch(group, args.iface, args.ttl, args.interval, args.duration, show)


def route_rates(before, after, seconds):
    """{rx_pps, tx_pps, drop_pps, mbit_s} of one route between two readings seconds apart
    (None each when there is no earlier reading to compare with)."""
    rates = dict.fromkeys(REPLY_RATES + ("mbit_s",))
    if before is not None and seconds > 0:
        rates.update(rx_pps=(after.get("rx", 0) - before.get("rx", 0)) / seconds,
                     tx_pps=(after.get("tx", 0) - before.get("tx", 0)) / seconds,
                     drop_pps=(disc.drops(after) - disc.drops(before)) / seconds,
                     mbit_s=(after.get("bytes", 0) - before.get("bytes", 0)) * 8 / seconds / 1e6)
    for k in REPLY_RATES:  # the board's own figures win
        if after.get(k) is not None:
            rates[k] = after[k]
    return rates


class Fleet:
    """Every board heard from: its last reply, when it came, and its routes' rates."""

    def __init__(self, interval=1.0):
        self.interval = interval
        self.boards = {}  # id -> {"reply", "heard", "rates"}

    def update(self, reply, heard):
        """A reply that arrived at `heard` (time.monotonic())."""
        old = self.boards.get(reply["id"])
        seconds = heard - old["heard"] if old else 0.0
        restarted = old is not None and reply.get("uptime_s", 0) < old["reply"].get("uptime_s", 0)
        before = {} if old is None or restarted else {
            (r.get("from"), r.get("to")): r for r in old["reply"].get("routes") or []}
        rates = [route_rates(before.get((r.get("from"), r.get("to"))), r, seconds)
                 for r in reply.get("routes") or []]
        self.boards[reply["id"]] = {"reply": reply, "heard": heard, "rates": rates}

    def view(self, now):
        """The boards sorted by address, as plain data (what --json prints per round)."""
        out = []
        for b in sorted(self.boards.values(), key=lambda b: disc.ip_key(b["reply"].get("ip", ""))):
            r = b["reply"]
            silent = now - b["heard"]
            routes = []
            for route, rates in zip(r.get("routes") or [], b["rates"], strict=True):
                routes.append({"name": route.get("name"), "from": route.get("from"),
                               "to": route.get("to"), "rx": route.get("rx", 0),
                               "tx": route.get("tx", 0), "drop": disc.drops(route),
                               **{k: _round(v) for k, v in rates.items()}})
            out.append({"id": r["id"], "ip": r.get("ip"), "version": r.get("version"),
                        "uptime_s": r.get("uptime_s", 0), "link": r.get("link"),
                        "link_flaps": r.get("link_flaps", 0), "routes": routes,
                        "more_routes": r.get("more", 0),
                        "answering": silent < SILENT_ROUNDS * self.interval,
                        "silent_s": round(silent, 1)})
        return out


def _round(v):
    return None if v is None else round(v, 3)


# -- showing it -----------------------------------------------------------------------------
HEADER = ("ID", "IP", "UP", "FLAPS", "ROUTE", "RX/s", "TX/s", "DROP/s", "Mbit/s", "STATE")


def rows(view):
    """Table rows (strings) of a view: one per route; a board's own cells on its first row."""
    out = []
    for b in view:
        board = [b["id"], b["ip"] or "?", disc.format_uptime(b["uptime_s"]), str(b["link_flaps"])]
        state = "ok" if b["answering"] else "no reply for %.0f s" % b["silent_s"]
        if b["link"] == "down":
            state = "link DOWN" + ("" if b["answering"] else ", " + state)
        for i, rt in enumerate(b["routes"] or [None]):
            cells = board if i == 0 else [""] * len(board)
            if rt is None:
                out.append(cells + ["-", "", "", "", "", state])
                continue
            out.append(cells + ["%s -> %s" % (rt["from"], rt["to"]), _pps(rt["rx_pps"]),
                                _pps(rt["tx_pps"]), _pps(rt["drop_pps"]), _mbit(rt["mbit_s"]),
                                state if i == 0 else ""])
    return out


def _pps(v):
    return "-" if v is None else "%.1f" % v


def _mbit(v):
    return "-" if v is None else "%.3f" % v


class PlainLines:
    """A line per route and round: for logs and pipes."""

    def show(self, view):
        stamp = time.strftime("%H:%M:%S")
        for b in view:
            head = "%s %s %s up %s flaps %d" % (stamp, b["id"], b["ip"] or "?",
                                                disc.format_uptime(b["uptime_s"]), b["link_flaps"])
            state = "" if b["answering"] else " | NO REPLY for %.0f s" % b["silent_s"]
            if b["link"] == "down":
                state += " | link DOWN"
            for rt in b["routes"] or [None]:
                route = " | no routes" if rt is None else (
                    " | %s -> %s rx %s/s tx %s/s drop %s/s %s Mbit/s" % (
                        rt["from"], rt["to"], _pps(rt["rx_pps"]), _pps(rt["tx_pps"]),
                        _pps(rt["drop_pps"]), _mbit(rt["mbit_s"])))
                print(head + route + state, flush=True)

    def close(self):
        pass


class JsonLines:
    def show(self, view):
        print(json.dumps({"event": "fleet", "time": round(time.time(), 3), "boards": view},
                         sort_keys=True), flush=True)

    def close(self):
        pass


class LiveTable:
    """A table redrawn in place on the terminal (rich); silent boards dimmed, their state red."""

    def __init__(self, group):
        from rich.console import Console
        from rich.live import Live

        self.group = group
        self.live = Live(self._table([]), console=Console(), auto_refresh=False)
        self.live.start()

    def _table(self, view):
        from rich import box
        from rich.table import Table

        table = Table(title="relays answering on %s (Ctrl-C stops)" % self.group,
                      title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                      show_edge=False, collapse_padding=True)
        for name in HEADER:  # a narrow terminal folds the route and the state, never an id
            wraps = name in ("ROUTE", "STATE")
            table.add_column(name, justify="right" if name.endswith("/s") else "left",
                             no_wrap=not wraps, min_width=18 if name == "ROUTE" else None)
        for b, row in zip(_owners(view), rows(view), strict=True):
            silent = not b["answering"]
            cells = row[:-1] + [("[red]%s[/red]" % row[-1]) if row[-1] not in ("ok", "") else row[-1]]
            table.add_row(*cells, style="dim" if silent else None)
        return table

    def show(self, view):
        self.live.update(self._table(view), refresh=True)

    def close(self):
        self.live.stop()


def _owners(view):
    """The board of each row of rows(view)."""
    return [b for b in view for _ in (b["routes"] or [None])]


def watch(group, iface=None, ttl=1, interval=1.0, duration=None, show=None):
    """Query every interval until duration s (None: until Ctrl-C), showing each round. The exit
    code: passed when at least one relay answered."""
    fleet = Fleet(interval)
    g, port = stream.parse_endpoint(group)
    end = time.monotonic() + duration if duration else None
    try:
        with disc.open_socket(iface, ttl) as sock:
            while end is None or time.monotonic() < end:
                nonce = disc.new_nonce()
                sent_at = time.monotonic()
                sock.sendto(disc.MAGIC + nonce.encode(), (g, port))
                left = interval if end is None else min(interval, end - sent_at)
                for reply in disc.collect(sock, nonce, max(0.05, left)).values():
                    fleet.update(reply, sent_at + reply["rtt_ms"] / 1000.0)
                show.show(fleet.view(time.monotonic()))
    except KeyboardInterrupt:
        pass  # the way to stop a watch
    finally:
        show.close()
    return exitcode.PASSED if fleet.boards else exitcode.FAILED
