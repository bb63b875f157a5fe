"""Watch the board: its serial REPL through mpremote (`mpremote connect PORT
resume repl`), where the relay prints its stats lines.

Keys in the REPL: Ctrl-] or Ctrl-x leaves the monitor; Ctrl-C stops the
relay (then `relay.stats()` shows its counters and `relay.run()` resumes);
Ctrl-D at the `>>>` prompt restarts the firmware (boot log and all).
--reset restarts it first and shows the boot log; --for S just prints what
the board says for S seconds (no keyboard, works in scripts and pipes).
"""

import subprocess
import sys

from tools import boardlink, exitcode, options

NAME = "monitor"


def add_parser(sub):
    p = sub.add_parser(NAME, help="the board's serial REPL (mpremote repl): stats lines, "
                                  "relay.stats()", description=__doc__)
    options.add(p, "--port", action="append",
                help="the board's serial port (default: the one board found on USB)")
    p.add_argument("--reset", action="store_true",
                   help="soft-reboot the board first and show its boot log")
    p.add_argument("--for", dest="seconds", type=options.SECONDS, metavar="S",
                   help="print the board's output for S seconds, then exit (no REPL; %s)"
                   % options.SECONDS.allowed)
    p.add_argument("--capture", metavar="FILE", help="also save the REPL session to FILE")
    p.set_defaults(func=run)
    return p


def run(args):
    try:  # the port first: a missing board matters more than a missing terminal
        port = boardlink.one_port(args.port)
    except boardlink.LinkError as e:
        boardlink.print_problem("monitor", e)
        return exitcode.USAGE
    interactive = args.seconds is None
    if interactive and not sys.stdin.isatty():
        print("monitor: the REPL needs a terminal; use --for SECONDS to print the board's "
              "output without one", file=sys.stderr)
        return exitcode.USAGE
    came_up = True
    if args.reset or not interactive:
        try:
            with boardlink.Serial(port) as ser:
                if args.reset:
                    print("monitor: %s: soft reboot" % port, flush=True)
                    ser.soft_reboot()
                    boot = ser.follow_boot(30, lambda line: print(line, flush=True))
                    came_up = boot.ok
                    if not came_up:
                        print("monitor: the relay did not come up: %s" % (
                            boot.fatal or "no status line"), flush=True)
                if not interactive:
                    ser.collect(args.seconds, lambda line: print(line, flush=True))
                    return exitcode.PASSED if came_up else exitcode.FAILED
        except boardlink.LinkError as e:
            boardlink.print_problem("monitor", e)
            return exitcode.USAGE
    print("monitor: %s: Ctrl-] or Ctrl-x leaves; Ctrl-C stops the relay (relay.stats(), "
          "relay.run() resumes); Ctrl-D at >>> restarts the firmware" % port, flush=True)
    argv = boardlink.MPREMOTE + ["connect", port, "resume", "repl"]
    if args.capture:
        argv += ["--capture", args.capture]
    # mpremote's own codes are not ours: it ends 0 when left with Ctrl-], else the port failed
    return exitcode.PASSED if subprocess.call(argv) == 0 else exitcode.USAGE
