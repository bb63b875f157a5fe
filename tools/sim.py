"""Run the relay without a board: the unmodified firmware (boot.py, main.py,
lib/) and config.json under the real MicroPython interpreter, on a private
LAN made of network namespaces (board, sender PC, listener PC, a snooping
switch). The sender sends numbered datagrams to every route's "from" group,
the listener joins every "to" group; the board's stats lines and the
listener's counts show live. Ends after --duration with one summary line;
exit code 0 when the loss is within --max-loss.

The board's address is moved into 198.18.0.0/15 (the benchmarking range),
the watchdog is off unless --watchdog, stats come every second. Nothing
leaves the namespaces the simulator makes (needs root for `ip netns`).
"""

import json
import signal
import subprocess
import sys
import threading
import time

from tools import boardlink, fw, stream
from tools.lines import LineProc

NAME = "sim"
BOARD_IP = "198.18.0.10"
SENDER_IP = "198.18.0.20"
LISTENER_IP = "198.18.0.30"


def add_parser(sub):
    p = sub.add_parser(NAME, help="run the firmware on a simulated board and LAN, with traffic "
                                  "(make run)", description=__doc__)
    p.add_argument("--config", default=str(fw.CONFIG),
                   help="the config to simulate (default: the repo's config.json)")
    p.add_argument("--duration", "-d", type=float, default=10.0, metavar="S",
                   help="seconds of traffic (default 10)")
    p.add_argument("--rate", "-r", type=float, default=None,
                   help="datagrams per second to each route's input group (default 200; 50 "
                        "on the emulated board, which runs slower than a real one)")
    p.add_argument("--size", "-s", type=stream.size_arg, default=200,
                   help="datagram size in bytes (default 200)")
    p.add_argument("--firmware", metavar="UF2", default=None,
                   help="run the official MicroPython image (W5100S_EVB_PICO or W5500_EVB_PICO "
                        ".uf2) on the emulated board instead of the twin; default: "
                        "$MCAST_RELAY_FIRMWARE if --emulated is given")
    p.add_argument("--emulated", action="store_true",
                   help="the emulated board with the image named by $MCAST_RELAY_FIRMWARE")
    p.add_argument("--personality", choices=("lwip", "unix"), default="lwip",
                   help="socket module the firmware sees: the board's lwIP behaviour "
                        "(default) or the unix port's own")
    p.add_argument("--watchdog", action="store_true",
                   help="keep the config's watchdog (5000 ms if it has none); off by default")
    p.add_argument("--max-loss", type=float, default=1.0, metavar="PCT",
                   help="exit 1 when more than PCT percent is lost (default 1)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no live lines, only the summary")
    p.add_argument("--json", action="store_true", help="the summary as one JSON line too")
    p.set_defaults(func=run)
    return p


class _JsonProc(LineProc):
    """A tools command in a LAN host, speaking JSON lines; keeps the last of each event."""

    def __init__(self, host, argv):
        self.last = {}
        super().__init__([sys.executable, "-m", "tools", *argv], popen=host.popen,
                         stdin=subprocess.DEVNULL, cwd=fw.ROOT, start_new_session=True)

    def on_line(self, line):
        try:
            d = json.loads(line)
        except ValueError:
            return
        self.last[d.get("event")] = d

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


class Printer:
    def __init__(self, quiet=False):
        self.quiet = quiet
        self.lock = threading.Lock()

    def __call__(self, text, force=False):
        if self.quiet and not force:
            return
        with self.lock:
            print(text, flush=True)


def board_config(raw, watchdog=False, stats_interval_s=1):
    from tools.twin.runner import twin_config

    relay = dict(raw.get("relay") or {})
    wd = relay.get("watchdog_ms", 0) if watchdog else 0
    if watchdog and not wd:
        wd = 5000
    return twin_config(raw, BOARD_IP, watchdog_ms=wd, stats_interval_s=stats_interval_s)


def run(args):
    say = Printer(args.quiet)
    from tools.twin.lan import namespaces_available

    ok, why = namespaces_available()
    if not ok:
        print("sim: cannot build the private LAN: %s" % why, file=sys.stderr)
        print("sim: the simulator needs Linux network namespaces (root, iproute2); "
              "`make test` runs what it can without them", file=sys.stderr)
        return 2
    raw, cfg, errors = fw.check_file(args.config)
    if errors:
        fw.print_errors("sim: %s has " % args.config, errors, ", the board would not run it:",
                        lambda line: print(line, file=sys.stderr))
        return 1
    args.image = None
    if args.firmware or args.emulated:
        from tools.emu.firmware import FirmwareError, resolve

        try:
            args.image = resolve(args.firmware)
        except FirmwareError as e:
            print("sim: %s" % e, file=sys.stderr)
            return 2
        if cfg["network"]["dhcp"]:
            print("sim: the emulated board's LAN has no DHCP server: give the config a static "
                  "address (the simulator moves it into 198.18.0.0/15)", file=sys.stderr)
            return 2
    else:
        try:
            from tools.twin.mpy import micropython_binary

            micropython_binary()
        except RuntimeError as e:
            print("sim: %s" % e, file=sys.stderr)
            return 2
    if args.rate is None:
        args.rate = 50.0 if args.image else 200.0
    from tools.twin.lan import cleanup_stale

    cleanup_stale()  # namespaces left by a run that was killed
    old = signal.signal(signal.SIGTERM, _terminate)  # `kill`: clean up like Ctrl-C
    try:
        return simulate(args, raw, cfg, say)
    finally:
        signal.signal(signal.SIGTERM, old)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def simulate(args, raw, cfg, say):
    from tools.twin.lan import Lan, LanError
    from tools.twin.runner import Board

    routes = cfg["routes"]
    froms = [r["from"] for r in routes]
    tos = list(dict.fromkeys(r["to"] for r in routes))
    desc = ", ".join("%s %s -> %s" % (r["name"], r["from"], r["to"]) for r in routes)
    board_cfg = board_config(raw, args.watchdog)
    extra_env = {}
    if cfg["network"]["dhcp"]:
        extra_env["TWIN_DHCP"] = "%s/15" % BOARD_IP
    if args.image:
        say("sim: firmware %s + %s on the emulated board: %s on an emulated RP2040 with a %s; "
            "private LAN: board %s, sender %s, listener %s" % (
                fw.version(), args.config, args.image.describe(), args.image.chip.upper(),
                BOARD_IP, SENDER_IP, LISTENER_IP))
        say("sim: rates on this LAN are bounded by the emulator's speed, not the board's; "
            "the board's own figures come from `make bench-board` (docs/bench.md)")
    else:
        say("sim: firmware %s + %s under MicroPython (%s sockets) on a private LAN: board %s, "
            "sender %s, listener %s" % (fw.version(), args.config, args.personality, BOARD_IP,
                                        SENDER_IP, LISTENER_IP))
    state = {"stats": {}, "stats_at": 0.0, "stats_n": 0}

    def on_board_line(line):
        stats = boardlink.parse_stats(line)
        if stats is not None:
            state["stats"] = stats["routes"]
            state["stats_at"] = time.monotonic()
            state["stats_n"] += 1
        if not state.get("done"):
            say("board | " + line)

    t0 = time.monotonic()
    try:
        with Lan() as lan:
            shost = lan.add_host("sender", SENDER_IP)
            lhost = lan.add_host("listener", LISTENER_IP)
            if args.image:
                board = _emulated_board(args.image, lan, board_cfg, on_board_line, say)
                if board is None:
                    return 1
            else:
                bhost = lan.add_host("board", BOARD_IP)
                board = Board(bhost, board_cfg, personality=args.personality,
                              extra_env=extra_env, echo=on_board_line)
            lan.query()  # a querier on the LAN: the switch snoops strictly
            try:
                board.start()
                try:
                    board.wait_for("| IP ", timeout=60 if args.image else 30)
                except TimeoutError:
                    say("sim: the board never opened its sockets (no status line in time); "
                        "its last lines are above", force=True)
                    return 1
                say("sim: board up in %.1f s; listening on %s, sending %s/s of %d bytes to %s "
                    "for %g s" % (time.monotonic() - t0, ", ".join(tos), "%g" % args.rate,
                                  args.size, ", ".join(froms), args.duration))
                return _traffic(args, board, shost, lhost, routes, froms, tos, desc, state, say)
            finally:
                board.stop()
                board.close()
    except LanError as e:
        print("sim: the private LAN failed: %s" % e, file=sys.stderr)
        return 2


def _emulated_board(image, lan, board_cfg, echo, say):
    """The emulated board with the project deployed on its flash (by the project's deploy,
    once per firmware/config/lib: cached under build/emu/)."""
    from tools.emu import prepare
    from tools.emu.board import EmulatedBoard
    from tools.emu.link import EmulatorError

    say("sim: deploying to the emulated board's flash (first run with this config: ~15 s)")
    try:
        flash = prepare.flash_with(image, board_cfg)
    except EmulatorError as e:
        say("sim: %s" % e, force=True)
        return None
    return EmulatedBoard(image, lan=lan, ip=BOARD_IP, flash_from=flash, echo=echo)


def _traffic(args, board, shost, lhost, routes, froms, tos, desc, state, say):
    listener = _JsonProc(lhost, ["listen", "--quiet", "--json", "--interval", "0.25", "--iface",
                                 LISTENER_IP] + sum((["-g", t] for t in tos), []))
    if not listener.ready(10):
        say("sim: the listener did not start: %s" % listener.stderr(), force=True)
        return 2
    sender = _JsonProc(shost, ["send", "--json", "--interval", "0.25", "--iface", SENDER_IP,
                               "--ttl", "1", "--rate", str(args.rate), "--size", str(args.size),
                               "--duration", str(args.duration)]
                       + sum((["-g", f] for f in froms), []))
    interrupted = False
    next_line = time.monotonic() + 1.0
    try:
        while sender.proc.poll() is None:
            time.sleep(0.05)
            if time.monotonic() >= next_line:
                next_line += 1.0
                say("traffic | " + _traffic_line(sender, listener))
    except KeyboardInterrupt:
        interrupted = True
        sender.interrupt()
    sent_summary = sender.finish()
    if sent_summary is None:
        say("sim: the sender failed: %s" % sender.stderr().strip(), force=True)
        listener.interrupt()
        listener.finish()
        return 2
    sent_per_route = sent_summary["sent"]
    sent = sent_per_route * len(froms)
    # Let the last datagrams through, then take a stats line that counts them.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        got = _received(listener.last.get("progress"))
        if got >= sent:
            break
        time.sleep(0.1)
    mark = time.monotonic()
    while state["stats_at"] <= mark + 0.05 and time.monotonic() < mark + 3.0:
        time.sleep(0.05)
    listener.interrupt()
    summary = listener.finish()
    received = _received(summary)
    per_route = state["stats"]
    forwarded = sum(per_route.get(r["name"], {}).get("tx", 0) for r in routes)
    loss = 100.0 * (sent - received) / sent if sent else 100.0
    crashed = "Traceback (most recent call last)" in board.output()
    state["done"] = True
    line = "sim: sent %d, forwarded %d, received %d, loss %.2f%% (%s)" % (
        sent, forwarded, received, max(0.0, loss), desc)
    say(line, force=True)
    if args.json:
        say(json.dumps({"sent": sent, "forwarded": forwarded, "received": received,
                        "loss_pct": round(max(0.0, loss), 3), "routes": per_route,
                        "interrupted": interrupted, "board_traceback": crashed}), force=True)
    if crashed:
        say("sim: FAIL: the firmware printed a traceback (see the board lines above)", force=True)
        return 1
    if sent == 0 or loss > args.max_loss:
        say("sim: FAIL: loss above --max-loss %g%%" % args.max_loss, force=True)
        return 1
    return 0


def _received(summary):
    if not summary:
        return 0
    return sum(g.get("unique", 0) for g in summary.get("groups", []))


def _traffic_line(sender, listener):
    sp = sender.last.get("progress") or {}
    lp = listener.last.get("progress")
    sent = sp.get("sent", 0)
    parts = ["sent %d per route" % sent]
    if lp:
        for g in lp.get("groups", []):
            parts.append("%s received %d" % (g["group"], g["unique"]))
    return ", ".join(parts)
