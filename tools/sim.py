"""Run the relay without a board: the unmodified firmware (boot.py, main.py,
lib/) and config.json under the real MicroPython interpreter, on a private
LAN made of network namespaces (board, sender PC, listener PC, a snooping
switch). The sender sends numbered datagrams to every route's "from" group,
the listener joins every "to" group; the board's stats lines and the
traffic's counts and rates show live. Ends after --duration with the summary:
the loss, and where it happened (before the board's socket, refused by its
guards, after it); exit code 0 when the loss is within --max-loss. Rates are
this host's, not a board's (docs/bench.md has the board's).

--serve sends nothing: the board and its LAN stay up until Ctrl-C, and the
commands that probe, watch and ask it from the LAN's PCs are printed.

The board's address is moved into 198.18.0.0/15 (the benchmarking range),
the watchdog is off unless --watchdog, stats come every second. Nothing
leaves the namespaces the simulator makes (needs root for `ip netns`).
"""

import sys
import time

from tools import boardlink, exitcode, fw, options, paste, simtraffic, stream, term
from tools.twin.lan import BOARD_IP, LISTENER_IP, SENDER_IP

NAME = "sim"


def add_parser(sub):
    p = sub.add_parser(NAME, help="run the firmware on a simulated board and LAN, with traffic "
                                  "(make run)", description=__doc__)
    options.add(p, "--config", default=str(fw.CONFIG), help="the config to simulate")
    options.add(p, "--duration", shown_default=DURATION_S,
                help="seconds of traffic (--serve: until Ctrl-C)")
    options.add(p, "--rate", shown_default="%g; %g on the emulated board, which runs slower "
                                           "than a real one" % (RATE_PPS, RATE_PPS_EMULATED),
                help="datagrams per second to each route's input group")
    options.add(p, "--size", default=200, help="datagram size")
    options.add(p, "--firmware", help="run the official MicroPython image (W5100S_EVB_PICO or "
                                      "W5500_EVB_PICO .uf2) on the emulated board instead of "
                                      "the twin; default: $MCAST_RELAY_FIRMWARE if --emulated "
                                      "is given")
    p.add_argument("--emulated", action="store_true",
                   help="the emulated board with the image named by $MCAST_RELAY_FIRMWARE")
    p.add_argument("--personality", choices=("lwip", "unix"), default="lwip",
                   help="socket module the firmware sees: the board's lwIP behaviour "
                        "(default) or the unix port's own")
    p.add_argument("--watchdog", action="store_true",
                   help="keep the config's watchdog (5000 ms if it has none); off by default")
    options.add(p, "--max-loss", default=options.MAX_LOSS_PCT,
                help="exit 1 when more than PCT percent is lost")
    p.add_argument("--serve", action="store_true",
                   help="no traffic of its own: keep the board and its LAN up until Ctrl-C and "
                        "print the commands (ip netns exec ...) that probe, discover and ask it "
                        "from the LAN's PCs")
    options.add(p, "--quiet", help="no live lines, only the summary")
    options.add(p, "--json", help="the summary as one JSON line too")
    p.set_defaults(func=run)
    return p


DURATION_S = 10.0
RATE_PPS = 200.0
RATE_PPS_EMULATED = 50.0
TRAFFIC_OPTIONS = ("duration", "rate")  # the sim's own traffic: --serve sends none


HOST_RATES = ("sim: rates here are this host's, running the firmware under the MicroPython unix "
              "port: not a board's; the board's own figures are in docs/bench.md (`make "
              "bench-board` measures the emulated board)")


def board_config(raw, watchdog=False, stats_interval_s=1):
    from tools.twin.runner import twin_config

    relay = dict(raw.get("relay") or {})
    wd = relay.get("watchdog_ms", 0) if watchdog else 0
    if watchdog and not wd:
        wd = 5000
    return twin_config(raw, BOARD_IP, watchdog_ms=wd, stats_interval_s=stats_interval_s)


def run(args):
    def say(text, force=False):
        if force or not args.quiet:
            term.say(text)

    if args.serve and options.given(args, *TRAFFIC_OPTIONS):
        print("sim: --serve sends no traffic of its own: --duration and --rate do not apply "
              "(the send and probe lines it prints take them)", file=sys.stderr)
        return exitcode.USAGE
    from tools.twin.lan import namespaces_available

    ok, why = namespaces_available()
    if not ok:
        print("sim: cannot build the private LAN: %s" % why, file=sys.stderr)
        print("sim: the simulator needs Linux network namespaces (root, iproute2); "
              "`make test` runs what it can without them", file=sys.stderr)
        return exitcode.USAGE
    raw, cfg, errors = fw.check_file(args.config)
    if errors:
        fw.print_errors("sim: %s has " % args.config, errors, ", the board would not run it:",
                        lambda line: print(line, file=sys.stderr))
        return exitcode.FAILED
    args.image = None
    if args.firmware or args.emulated:
        from tools.emu.firmware import FirmwareError, resolve

        try:
            args.image = resolve(args.firmware)
        except FirmwareError as e:
            print("sim: %s" % e, file=sys.stderr)
            return exitcode.USAGE
        if cfg["network"]["dhcp"]:
            print("sim: the emulated board's LAN has no DHCP server: give the config a static "
                  "address (the simulator moves it into 198.18.0.0/15)", file=sys.stderr)
            return exitcode.USAGE
    else:
        try:
            from tools.twin.mpy import micropython_binary

            micropython_binary()
        except RuntimeError as e:
            print("sim: %s" % e, file=sys.stderr)
            return exitcode.USAGE
    if args.rate is None:
        args.rate = RATE_PPS_EMULATED if args.image else RATE_PPS
    if args.duration is None:
        args.duration = DURATION_S
    args.queue = "lwip" if args.image or args.personality == "lwip" else "unix"
    from tools.twin.lan import cleanup_stale

    cleanup_stale()  # namespaces left by a run that was killed
    stream.stop_on_sigterm()  # `kill`: clean up like Ctrl-C
    return simulate(args, raw, cfg, say)


def simulate(args, raw, cfg, say):
    from tools.twin.lan import Lan, LanError
    from tools.twin.runner import Board

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
        say(HOST_RATES)
    state = {"stats": {}, "stats_at": 0.0}

    def on_board_line(line):
        stats = boardlink.parse_stats(line)
        if stats is not None:
            state["stats"] = stats["routes"]
            state["stats_at"] = time.monotonic()
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
                    return exitcode.FAILED
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
                    return exitcode.FAILED
                if args.serve:
                    return serve(lan, board, shost, lhost, cfg["routes"], say)
                say("sim: board up in %.1f s; listening on %s, sending %s/s of %d bytes to %s "
                    "for %g s" % (time.monotonic() - t0,
                                  ", ".join(dict.fromkeys(r["to"] for r in cfg["routes"])),
                                  "%g" % args.rate if args.rate else "as many as it can",
                                  args.size, ", ".join(r["from"] for r in cfg["routes"]),
                                  args.duration))
                return simtraffic.run(args, board, shost, lhost, cfg["routes"], state, say)
            finally:
                board.stop()
                board.close()
    except LanError as e:
        print("sim: the private LAN failed: %s" % e, file=sys.stderr)
        return exitcode.USAGE


def serve(lan, board, shost, lhost, routes, say):
    """Keep the board up until Ctrl-C (or SIGTERM), with the commands to reach it printed."""
    hosts = [h for h in lan.hosts.values() if getattr(h, "ns", None)]
    say("sim: namespaces: %s" % ", ".join("%s %s (%s)" % (h.name, h.ip, h.ns) for h in hosts),
        force=True)
    first = routes[0]
    route = "--from %s --to %s" % (first["from"], first["to"])
    entries = [
        ("watch the fleet: every relay's rates, refreshed each second", shost,
         "top --iface %s" % shost.ip),
        ("probe %s: loss, latency, and where losses happened" % first["name"], shost,
         "probe %s --iface %s" % (route, shost.ip)),
        ("list the relays", shost, "discover --iface %s" % shost.ip),
        ("ask the board", shost, "status %s --iface %s" % (BOARD_IP, shost.ip)),
        ("send 500/s into %s" % first["name"], shost,
         "send -g %s --rate 500 --iface %s" % (first["from"], shost.ip)),
        ("watch %s's output" % first["name"], lhost,
         "listen -g %s --iface %s" % (first["to"], lhost.ip)),
    ]
    for line in paste.lines("sim", entries):
        say(line, force=True)
    say("sim: serving until Ctrl-C", force=True)
    try:
        while True:  # the board's lines go on showing; a reset restarts it as on a board
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    if "Traceback (most recent call last)" in board.output():
        say(term.verdicts("sim: FAIL: the firmware printed a traceback (see the board lines "
                          "above)"), force=True)
        return exitcode.FAILED
    say("sim: stopping the board and removing the LAN", force=True)
    return exitcode.PASSED


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
