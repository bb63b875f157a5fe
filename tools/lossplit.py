"""Where a test's lost datagrams went: the one loss split that sim, probe and selftest report.

    lost = sent - received
         = (sent - rx)        before the board's socket: never read by the relay (the socket's
                              queue overflowed: lwIP holds 4 datagrams; or the LAN dropped them)
         + (rx - tx)          refused by the board: its guards big, rate, own, src, and the rest
                              (empty datagrams, send errors)
         + (tx - received)    after the board: forwarded, never arrived

rx, tx and the guard counts are the board's own counters over the test: from its stats line
(sim), or two discovery replies, before and after (probe, selftest). The parts add up to the
loss by construction; when the counters cannot belong to this test alone (a part would be
negative: other traffic on the route, two boards forwarding it) or there are none, the whole
loss is "unknown", with the reason.
"""

GUARDS = ("big", "rate", "own", "src")
WHY = {
    "big": "longer than relay.max_datagram",
    "rate": "over the route's rate_pps cap",
    "own": "sent by the board itself: a loop",
    "src": "source not in the route's allow list",
    "other": "empty datagrams, send errors",
}
KEYS = ("rx", "tx") + GUARDS


def counters(route):
    """A route's counters as the split uses them, from a stats line (boardlink.parse_stats:
    `src`), relay.stats() or a discovery reply (`source`)."""
    out = {k: int(route.get(k, 0)) for k in ("rx", "tx", "big", "rate", "own")}
    out["src"] = int(route.get("src", route.get("source", 0)))
    return out


def delta(after, before=None):
    """What the counters grew by between two readings (before None: since the board started)."""
    return {k: after[k] - (before[k] if before else 0) for k in KEYS}


def add(readings):
    """The counters of several routes (or boards) summed; None for none."""
    readings = list(readings)
    if not readings:
        return None
    return {k: sum(r[k] for r in readings) for k in KEYS}


def split(sent, received, board=None, why_unknown="no counters from the board"):
    """{"lost", "before_board", "at_board", "guards": {big, rate, own, src, other},
    "after_board", "unknown", "why_unknown"}: the parts (before + at + after + unknown, and
    the guards within at) add up to lost."""
    lost = sent - received
    out = {"lost": lost, "before_board": 0, "at_board": 0,
           "guards": dict.fromkeys(GUARDS + ("other",), 0), "after_board": 0, "unknown": 0,
           "why_unknown": None}
    if board is not None:
        before, at, after = sent - board["rx"], board["rx"] - board["tx"], board["tx"] - received
        guards = {k: board[k] for k in GUARDS}
        other = at - sum(guards.values())
        if min(before, at, after, other) >= 0:
            out.update(before_board=before, at_board=at, after_board=after)
            out["guards"].update(guards, other=other)
            return out
        why_unknown = ("the board's counters do not fit this test alone (rx %d, tx %d for %d "
                       "sent, %d received): other traffic on the route, or several boards "
                       "forwarding it" % (board["rx"], board["tx"], sent, received))
    out.update(unknown=lost, why_unknown=why_unknown)
    return out


def describe(s):
    """The split as one phrase: "where the N lost went: ..." ("" when nothing was lost)."""
    if s["lost"] <= 0:
        return ""
    if s["unknown"]:
        return "where the %d lost went is not known: %s" % (s["lost"], s["why_unknown"])
    refused = ", ".join("%s %d: %s" % (k, n, WHY[k]) for k, n in s["guards"].items() if n)
    return ("where the %d lost went: %d before the board's socket (never read by the relay), "
            "%d refused by the board%s, %d after the board (forwarded, never arrived)" % (
                s["lost"], s["before_board"], s["at_board"],
                " (%s)" % refused if refused else "", s["after_board"]))
