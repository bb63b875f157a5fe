"""The boards the board tests run on, behind one interface, so that one set of assertions
covers both:

- ``twin``: the unmodified firmware under the MicroPython unix port with the board's
  ``machine``/``network``/lwIP socket stand-ins (always available);
- the emulated board, once per image named by ``MCAST_RELAY_FIRMWARE`` (the official
  W5100S_EVB_PICO / W5500_EVB_PICO .uf2): the real firmware on rp2040js with the chip model,
  the project put on its flash by the project's own deploy. Without an image these tests
  skip, saying which variable to set (locally and in CI).

``kind.start(lan, config, ...)`` returns a started board: ``wait_for``, ``output``, ``lines``,
``send`` (the REPL), ``interrupt`` (Ctrl-C), ``cable(up)``, ``stop``; ``kind.update(board,
files)`` puts files on its flash and restarts the firmware; ``kind.read(board, name)`` reads
one back.
"""

import json

import pytest

from host_tests.twinlan import load_default_config
from tools.twin.lan import BOARD_IP
from tools.twin.runner import Board, twin_config


class TwinKind:
    name = "twin"
    emulated = False
    # Seconds between datagrams a board keeps up with in real time: the emulated board runs
    # slower than the chip (the emulator, not the firmware, sets this pace on the LAN).
    pace = 0.005
    slow = 1.0  # timeouts are multiplied by this

    def config(self, base=None, ip=BOARD_IP, **relay):
        relay.setdefault("watchdog_ms", 0)
        relay.setdefault("stats_interval_s", 1)
        return twin_config(base if base is not None else load_default_config(), ip, **relay)

    def start(self, lan, cfg, name="board", ip=BOARD_IP, files=None, uid=None):
        """A board on `lan` running `cfg` (already moved to `ip`: see config()); `files`:
        {name: bytes} put on its flash after the config (e.g. a bad config.json)."""
        host = lan.add_host(name, ip)
        kw = {"uid": uid} if uid else {}
        board = Board(host, cfg, repl=True, **kw)
        for fname, data in (files or {}).items():
            (board.dir / fname).write_bytes(data)
        return board.start()

    native_arch = "x64"  # the unix port on this x86-64 host

    def start_on_port(self, lan, cfg, workdir, name="board", ip=BOARD_IP):
        """A board behind a serial port (for deploy, monitor, selftest): the twin's pty
        stand-in, deployed with `cfg` by the project's deploy. Returns (board, port)."""
        import subprocess
        import sys

        from tools.twin import mpy
        from tools.twin.serial_board import SerialBoard

        host = lan.add_host(name, ip)
        board = SerialBoard(host=host).start()
        board.wait_for(">>> ", timeout=10)
        board.cable = lambda up: lan.cable(host, up)
        board.output = board.text
        cfg_path = workdir / "config.json"
        cfg_path.write_text(json.dumps(cfg, indent=2))
        r = subprocess.run([sys.executable, "-m", "tools", "deploy", "--port", board.port,
                            "--config", str(cfg_path), "--boot-timeout", "30"],
                           capture_output=True, text=True, cwd=mpy.ROOT, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return board, board.port

    chip_name = "W5100S"  # the twin's chip (fakes/twinchip.py)

    _CHIP_KEYS = {"absent": "chip_absent", "held-in-reset": "chip_in_reset",
                  "miso-high": "miso_high", "stuck": "chip_stuck"}

    def chip_fault(self, board, fault):
        """The board's chip: absent, held-in-reset, miso-high, stuck, or None (fine)."""
        board.control(**{k: (self._CHIP_KEYS.get(fault) == k)
                         for k in self._CHIP_KEYS.values()})

    def bootsel(self, board, pressed):
        board.control(bootsel=bool(pressed))

    def update(self, board, files):
        board.stop()
        for fname, data in files.items():
            (board.dir / fname).write_bytes(data)
        board.start()

    def read(self, board, fname):
        path = board.dir / fname
        return path.read_bytes() if path.exists() else None

    def resets(self, board):
        """The resets the board went through, as 'watchdog' / 'power-on'."""
        return ["watchdog" if c == "WDT" else "power-on" for c in board.resets]

    def wedge_chip(self, board):
        """The chip stops completing commands until its next reset (SPI reads 0xFF and the
        driver's send never returns)."""
        import time

        board.control(chip_hang=time.time())

    def hear_own_address(self, board):
        """Let a datagram whose source is the board's own address reach its socket: the
        twin's Linux stack drops such 'martians' before the relay sees them; lwIP does not."""
        board.host.run(["sysctl", "-q", "-w", "net.ipv4.conf.all.accept_local=1",
                        "net.ipv4.conf.eth0.accept_local=1", "net.ipv4.conf.all.rp_filter=0",
                        "net.ipv4.conf.eth0.rp_filter=0"], check=True)


class EmulatedKind:
    emulated = True
    pace = 0.02
    slow = 3.0

    def __init__(self, image):
        self.image = image
        self.name = image.board

    def config(self, base=None, ip=BOARD_IP, **relay):
        return TwinKind.config(self, base, ip, **relay)

    def start(self, lan, cfg, name="board", ip=BOARD_IP, files=None, uid=None):
        from tools.emu import prepare
        from tools.emu.board import EmulatedBoard

        flash = prepare.flash_with(self.image, cfg, extra=files)
        kw = {"uid": uid} if uid else {}
        board = EmulatedBoard(self.image, lan=lan, name=name, ip=ip, flash_from=flash, **kw)
        return board.start()

    def update(self, board, files):
        """As a user would: mpremote fs cp over the USB serial (which stops the relay with
        Ctrl-C), then machine.reset() typed at the REPL; the flash keeps everything."""
        from tools import boardlink

        argv = []
        for fname, data in files.items():
            local = board.dir / ("put-" + fname.replace("/", "_"))
            local.write_bytes(data)
            argv += ["fs", "cp", str(local), ":" + fname, "+"]
        boardlink.mpremote(str(board.port.name), *argv[:-1], timeout=120)
        board.send("\x03\x03import machine; machine.reset()\r\n")

    native_arch = "armv6m"  # the RP2040's Cortex-M0+

    def start_on_port(self, lan, cfg, workdir, name="board", ip=BOARD_IP):
        """The emulated board with the project deployed, as a user's board on USB: nothing is
        a terminal on its serial port until a program opens it."""
        from tools.emu import prepare
        from tools.emu.board import EmulatedBoard

        flash = prepare.flash_with(self.image, cfg)
        board = EmulatedBoard(self.image, lan=lan, name=name, ip=ip, flash_from=flash,
                              console=False).start()
        return board, str(board.port.name)

    @property
    def chip_name(self):
        return self.image.chip.upper()

    _CHIP_FAULTS = {"absent": "absent", "held-in-reset": "heldInReset",
                    "miso-high": "misoStuckHigh", "stuck": "stuckCommand"}

    def chip_fault(self, board, fault):
        board.faults(**({self._CHIP_FAULTS[fault]: True} if fault else {}))

    def bootsel(self, board, pressed):
        board.bootsel(pressed)

    def resets(self, board):
        return list(board.resets)

    def wedge_chip(self, board):
        board.faults(stuckCommand=True, untilReset=True)

    def hear_own_address(self, board):
        pass

    def read(self, board, fname):
        from tools import boardlink

        p = boardlink.mpremote(str(board.port.name), "exec",
                               "import os\ntry:\n print(open(%r).read())\nexcept OSError:\n "
                               "print('<<missing>>')" % fname, timeout=60)
        text = p.stdout.rstrip("\n")
        return None if text == "<<missing>>" else text.encode()


def images(what):
    """pytest params: one image path per configured firmware image, or one skipped param that
    says `what` needs one and how to name it (locally and in CI)."""
    from tools.emu import firmware

    paths = firmware.configured()
    if not paths:
        return [pytest.param(None, id="no-image", marks=pytest.mark.skip(
            reason="%s needs the official firmware image: set %s=PATH.uf2 "
                   "(make test FIRMWARE=PATH)" % (what, firmware.ENV)))]
    return [pytest.param(p, id=p.parent.name or p.name) for p in paths]


def kinds():
    """pytest params: the twin, then one emulated board per configured image (or one skipped
    param saying how to get them)."""
    from tools.emu import firmware

    params = [pytest.param(TwinKind(), id="twin")]
    paths = firmware.configured()
    if not paths:
        params.append(pytest.param(None, id="emulated", marks=pytest.mark.skip(
            reason="the emulated board needs the official firmware image: set %s=PATH.uf2 "
                   "(make test FIRMWARE=PATH)" % firmware.ENV)))
    for path in paths:
        try:
            image = firmware.identify(path)
        except firmware.FirmwareError as e:
            params.append(pytest.param(None, id="emulated-bad-image",
                                       marks=pytest.mark.skip(reason=str(e))))
            continue
        params.append(pytest.param(EmulatedKind(image), id=image.board))
    return params
