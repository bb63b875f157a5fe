"""`python -m tools emu`: the official MicroPython image on an emulated board.

An emulated RP2040 (rp2040js) runs the UF2 you give it, unmodified, with a W5100S or W5500
(register models, picked from the image) on the board's pins: SPI0 SCK 18 / MOSI 19 / MISO 16,
CS 17, RST 20, INTN 21. The board's 2 MB flash is a file kept between runs (blank the first
time: the firmware formats it, as a new board does). Its USB serial is a pseudo-terminal that
deploy, monitor, selftest and mpremote open like /dev/ttyACM0. With --lan its Ethernet is a
port on a private LAN (network namespaces, a snooping switch, two PCs), and the commands to
probe it from those PCs are printed. The board's console is shown here; Ctrl-C ends.
"""

import argparse
import signal
import sys
import threading
from pathlib import Path

from tools import exitcode, fw, options, term
from tools.twin.lan import BOARD_IP, LISTENER_IP, SENDER_IP

NAME = "emu"


def add_parser(sub):
    p = sub.add_parser(NAME, help="run the official MicroPython image on an emulated board "
                                  "(RP2040 + W5100S/W5500), optionally on a private LAN",
                       description=__doc__)
    options.add(p, "--firmware", help="the W5100S_EVB_PICO or W5500_EVB_PICO .uf2 of "
                                      "MicroPython 1.28/1.29 (default: $MCAST_RELAY_FIRMWARE)")
    p.add_argument("--state", metavar="DIR",
                   help="where the board's flash and serial port live (default: "
                        "build/emu/<board>/): the flash is kept between runs")
    p.add_argument("--fresh", action="store_true",
                   help="start from a blank flash (the firmware formats it at its first boot)")
    p.add_argument("--lan", action="store_true",
                   help="plug the board into a private LAN with two PCs (needs root)")
    p.add_argument("--deploy", action="store_true",
                   help="deploy the project to the board first (the project's own deploy over "
                        "the emulated USB serial; with --lan the address moves to %s/15)"
                        % BOARD_IP)
    options.add(p, "--config", default=str(fw.CONFIG), help="the config --deploy puts on the "
                                                            "board")
    p.add_argument("--uid", type=_uid, default="e661410403000001", metavar="HEX",
                   help="the board's 8-byte unique id (flash unique ID): 16 hex digits "
                        "(default %(default)s)")
    p.add_argument("--no-console", action="store_true",
                   help="do not act as a terminal: the USB serial's DTR then follows whether a "
                        "program has the port open, and what the board prints before is lost, "
                        "as on a real board")
    options.add(p, "--verbose", help="the emulator's own warnings too")
    p.set_defaults(func=run)
    return p


def _uid(text):
    """argparse type: 16 hex digits."""
    try:
        if len(text) == 16:
            bytes.fromhex(text)
            return text.lower()
    except ValueError:
        pass
    raise argparse.ArgumentTypeError("%r is not a unique id (allowed: 16 hex digits, e.g. "
                                     "e661410403000001)" % text)


def run(args):
    from tools.emu.firmware import FirmwareError, resolve
    from tools.emu.link import EmulatorError

    try:
        image = resolve(args.firmware)
    except FirmwareError as e:
        print("emu: %s" % e, file=sys.stderr)
        return exitcode.USAGE
    uid = args.uid
    state = Path(args.state) if args.state else fw.BUILD / "emu" / image.board
    state.mkdir(parents=True, exist_ok=True)
    if args.fresh and (state / "flash.bin").exists():
        (state / "flash.bin").unlink()
    old = signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.lan:
            from tools.twin.lan import Lan, LanError, cleanup_stale, namespaces_available

            ok, why = namespaces_available()
            if not ok:
                print("emu: --lan needs Linux network namespaces: %s" % why, file=sys.stderr)
                return exitcode.USAGE
            cleanup_stale()
            try:
                with Lan() as lan:
                    return _session(args, image, uid, state, lan)
            except LanError as e:
                print("emu: the private LAN failed: %s" % e, file=sys.stderr)
                return exitcode.USAGE
        return _session(args, image, uid, state, None)
    except EmulatorError as e:
        print("emu: %s" % e, file=sys.stderr)
        return exitcode.USAGE
    except KeyboardInterrupt:
        return exitcode.PASSED
    finally:
        signal.signal(signal.SIGTERM, old)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _session(args, image, uid, state, lan):
    from tools.emu.board import EmulatedBoard

    pcs = []
    if lan is not None:
        pcs = [lan.add_host("pc1", SENDER_IP), lan.add_host("pc2", LISTENER_IP)]
    console = not args.no_console
    board = EmulatedBoard(image, workdir=state, lan=lan, ip=BOARD_IP, uid=uid,
                          console=console, verbose=args.verbose,
                          echo=term.say if console else None)
    print("emu: %s" % image.describe(), flush=True)
    print("emu: emulated RP2040 (rp2040js) + %s; flash %s%s" % (
        image.chip.upper(), board.flash_path, "" if board.flash_path.exists()
        else " (blank: the firmware formats it at boot)"), flush=True)
    board.start()
    try:
        print("emu: serial port %s (deploy/monitor/selftest --port, mpremote connect)"
              % board.port.name, flush=True)
        if lan is not None:
            lan.query()
            _print_lan(lan, pcs)
        if args.deploy:
            if not _deploy(args, board, lan):
                return exitcode.FAILED
        print("emu: running; Ctrl-C ends", flush=True)
        done = threading.Event()
        while not done.wait(0.5):
            if not board.proc.alive():
                print("emu: the emulator stopped (log: %s)" % (board.dir / "emu.log"),
                      file=sys.stderr)
                return exitcode.FAILED
    except KeyboardInterrupt:
        return exitcode.PASSED
    finally:
        board.stop()
    return exitcode.PASSED


def _deploy(args, board, lan):
    import json

    from tools.emu import prepare

    config = args.config
    if lan is not None:
        raw, _, errors = fw.check_file(args.config)
        if errors:
            print("emu: %s has %d error(s): %s" % (args.config, len(errors), errors[0]))
            return False
        from tools.twin.runner import twin_config

        moved = board.dir / "config.lan.json"
        moved.write_text(json.dumps(twin_config(raw, BOARD_IP), indent=2) + "\n")
        config = str(moved)
        print("emu: deploying %s with its address moved to %s/15" % (args.config, BOARD_IP),
              flush=True)
    code, text = prepare.deploy(board.dir / "tty", config)
    for line in text.splitlines():
        if line.startswith("deploy:"):
            print(line, flush=True)
    if code != 0:
        print("emu: deploy failed (exit %d)" % code, flush=True)
        return False
    return True


def _print_lan(lan, pcs):
    from tools import paste

    pc1, pc2 = pcs
    print("emu: private LAN: board %s on switch port %s; PCs %s (%s), %s (%s); a querier "
          "keeps the switch snooping" % (BOARD_IP, lan.hosts["board"].port, pc1.ip, pc1.ns,
                                         pc2.ip, pc2.ns), flush=True)
    for line in paste.lines("emu", (
            ("probe the default route", pc1, "probe --iface %s" % pc1.ip),
            ("list the relays", pc1, "discover --iface %s" % pc1.ip),
            ("ask the board", pc1, "status %s" % BOARD_IP),
            ("watch the output group", pc2, "listen -g 224.0.10.2:50000 --iface %s" % pc2.ip))):
        print(line, flush=True)
