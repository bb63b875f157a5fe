"""The simulator's own traffic: `send` in the sender PC to every route's input group, `listen`
in the listener PC on every output group, a traffic line a second with their counts and rates,
and the summary: sent, forwarded, received, the loss and where it happened (tools/lossplit.py,
from the board's last stats line).
"""

import json
import signal
import subprocess
import sys
import time

from tools import exitcode, fw, lossplit, term
from tools.lines import LineProc

# Why datagrams are lost before the board's socket, by the board the sim runs.
QUEUE_NOTES = {
    "lwip": "the board's socket holds 4 datagrams (lwIP; the twin reproduces it): what arrives "
            "beyond that while the relay is busy is lost there, at this host's speed, not a "
            "board's",
    "unix": "the unix port's socket buffer overflowed: this host ran the relay slower than "
            "the datagrams came",
}


class JsonProc(LineProc):
    """A tools command in a LAN host, speaking JSON lines: the last event of each kind, and its
    progress events with their arrival times (monotonic)."""

    def __init__(self, host, argv):
        self.last = {}
        self.progress = []  # [(arrived, event)], the last few
        super().__init__([sys.executable, "-m", "tools", *argv], popen=host.popen,
                         stdin=subprocess.DEVNULL, cwd=fw.ROOT, start_new_session=True)

    def on_line(self, line):
        try:
            d = json.loads(line)
        except ValueError:
            return
        self.last[d.get("event")] = d
        if d.get("event") == "progress":
            self.progress = self.progress[-15:] + [(time.monotonic(), d)]

    def ready(self, timeout):
        return self.wait(lambda: "ready" in self.last, timeout)

    def interrupt(self):
        """Stop it; it still prints its summary (send/listen take SIGTERM like Ctrl-C)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def finish(self, timeout=10):
        """Wait for it to end (kill it after timeout s); its summary, or None."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(2)
        return self.last.get("summary")


def received(summary):
    """Datagrams of our streams that arrived (each counted once), from a listen summary."""
    if not summary:
        return 0
    return sum(g.get("unique", 0) for g in summary.get("groups", []))


def paired(sender_progress, listener_progress):
    """(sender event, listener event) to show together: the listener's latest and the first of
    the sender's that arrived after it, so that "received" never runs ahead of "sent" (each
    process counts at its own moment). None until there is such a pair."""
    for heard, lp in reversed(listener_progress):
        for told, sp in sender_progress:
            if told >= heard:
                return sp, lp
    return None


class TrafficLine:
    """The `traffic |` line: counts, and rates since the previous line (each process's own
    clock, its events' "t")."""

    def __init__(self):
        self.prev = None

    def __call__(self, pair):
        sp, lp = pair
        got = {g["group"]: g["unique"] for g in lp.get("groups", [])}
        rates = {}
        if self.prev is not None:
            psp, plp = self.prev
            rates["sent"] = _rate(sp["sent"] - psp["sent"], sp["t"] - psp["t"])
            before = {g["group"]: g["unique"] for g in plp.get("groups", [])}
            for group, n in got.items():
                rates[group] = _rate(n - before.get(group, 0), lp["t"] - plp["t"])
        self.prev = pair
        parts = ["sent %d per route%s" % (sp["sent"], _per_s(rates.get("sent")))]
        parts += ["%s received %d%s" % (g, n, _per_s(rates.get(g))) for g, n in got.items()]
        return ", ".join(parts)


def _rate(n, seconds):
    return n / seconds if seconds > 0 else None


def _per_s(rate):
    return " (%.0f/s)" % rate if rate is not None else ""


def run(args, board, shost, lhost, routes, state, say):
    """Send for --duration, then the summary; the exit code."""
    froms = [r["from"] for r in routes]
    tos = list(dict.fromkeys(r["to"] for r in routes))
    desc = ", ".join("%s %s -> %s" % (r["name"], r["from"], r["to"]) for r in routes)
    listener = JsonProc(lhost, ["listen", "--quiet", "--json", "--interval", "0.25", "--iface",
                                lhost.ip] + sum((["-g", t] for t in tos), []))
    if not listener.ready(10):
        say("sim: the listener did not start: %s" % listener.stderr(), force=True)
        return exitcode.USAGE
    sender = JsonProc(shost, ["send", "--json", "--interval", "0.25", "--iface", shost.ip,
                              "--ttl", "1", "--rate", str(args.rate), "--size", str(args.size),
                              "--duration", str(args.duration)]
                      + sum((["-g", f] for f in froms), []))
    interrupted = False
    line = TrafficLine()
    next_line = time.monotonic() + 1.0
    try:
        while sender.proc.poll() is None:
            time.sleep(0.05)
            pair = paired(sender.progress, listener.progress)
            if time.monotonic() >= next_line and pair is not None:
                next_line += 1.0
                say("traffic | " + line(pair))
    except KeyboardInterrupt:
        interrupted = True
        sender.interrupt()
    sent_summary = sender.finish()
    if sent_summary is None:
        say("sim: the sender failed: %s" % sender.stderr().strip(), force=True)
        listener.interrupt()
        listener.finish()
        return exitcode.USAGE
    sent = sent_summary["sent"] * len(froms)
    # Let the last datagrams through, then take a stats line that counts them.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and received(listener.last.get("progress")) < sent:
        time.sleep(0.1)
    mark = time.monotonic()
    while state["stats_at"] <= mark + 0.05 and time.monotonic() < mark + 3.0:
        time.sleep(0.05)
    listener.interrupt()
    got = received(listener.finish())
    per_route = state["stats"]
    state["done"] = True
    board_counts = lossplit.add(lossplit.counters(per_route[r["name"]]) for r in routes
                                if r["name"] in per_route)
    if board_counts is None or len(per_route) < len(routes):
        split = lossplit.split(sent, got, why_unknown="no stats line from the board counted "
                                                      "every route")
    else:
        split = lossplit.split(sent, got, board_counts)
    return summarize(args, sent, got, per_route, routes, desc, split, interrupted,
                     "Traceback (most recent call last)" in board.output(), say)


def summarize(args, sent, got, per_route, routes, desc, split, interrupted, crashed, say):
    forwarded = sum(per_route.get(r["name"], {}).get("tx", 0) for r in routes)
    loss = max(0.0, 100.0 * split["lost"] / sent) if sent else 100.0
    say("sim: sent %d, forwarded %d, received %d, loss %.2f%% (%s)" % (
        sent, forwarded, got, loss, desc), force=True)
    where = lossplit.describe(split)
    if where:
        say("sim: " + where, force=True)
        if split["before_board"]:
            say("sim: before the board's socket: " + QUEUE_NOTES[args.queue], force=True)
    if args.json:
        say(json.dumps({"sent": sent, "forwarded": forwarded, "received": got,
                        "loss_pct": round(loss, 3), "loss_split": split, "routes": per_route,
                        "interrupted": interrupted, "board_traceback": crashed}), force=True)
    if crashed:
        say(term.verdicts("sim: FAIL: the firmware printed a traceback (see the board lines "
                          "above)"), force=True)
        return exitcode.FAILED
    if sent == 0 or loss > args.max_loss:
        say(term.verdicts("sim: FAIL: loss above --max-loss %g%%" % args.max_loss), force=True)
        return exitcode.FAILED
    return exitcode.PASSED
