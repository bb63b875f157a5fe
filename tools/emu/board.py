"""An emulated board: the official MicroPython firmware on rp2040js with a WIZnet chip model,
its flash in a file, its USB serial on a pseudo-terminal and (on a private LAN) its Ethernet
on a TAP port of the LAN's switch. Shaped like the twin's ``tools.twin.runner.Board``
(``start``, ``wait_for``, ``output``, ``interrupt``, ``send``, ``stop``) so that one set of
tests drives both."""

import shutil
import tempfile
import threading
from pathlib import Path

from tools.emu import bootrom
from tools.emu.link import EmulatorError, EmuProcess
from tools.emu.serialport import SerialPort
from tools.emu.tap import Tap
from tools.lines import Lines
from tools.twin.lan import BOARD_IP

FLASH_SIZE = 2 * 1024 * 1024  # both EVB-Pico boards: 2 MB of QSPI flash


class EmulatedBoard:
    """``console=True``: this object is a terminal on the USB serial from the start (DTR set,
    as when `make monitor` is running), so every line the board prints is in ``lines``.
    ``console=False``: only what the board prints while a program has ``port`` open reaches
    anyone (the USB serial's DTR follows the port), as with a real board.
    ``on_frame(vns, frame)``: called (on the emulator's reader thread) with every Ethernet
    frame the chip sends and the virtual time it left, e.g. to count forwarded datagrams."""

    def __init__(self, firmware, workdir=None, lan=None, name="board", ip=BOARD_IP,
                 uid="e661410403000001",
                 timing="realtime", console=True, echo=None, chip=None, flash_from=None,
                 verbose=False, on_frame=None):
        self.firmware = firmware
        self.lan = lan
        self.name = name
        self.ip = ip  # the board's address in its config.json (the LAN's record of the port)
        self.uid = uid
        self.timing = timing
        self.console = console
        self.on_frame = on_frame
        self.chip = chip or firmware.chip
        self.verbose = verbose
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="mcr-emu-")
            workdir = self._tmp
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flash_path = self.dir / "flash.bin"
        if flash_from is not None:
            shutil.copyfile(flash_from, self.flash_path)
        self._out = Lines(echo=echo)  # the console, line by line (what the USB serial carried)
        self.lines = self._out.items
        self._partial = ""
        self.boots = []  # reset causes, one per boot ("power-on", "watchdog", "soft")
        self.frames_out = 0
        self.events = []
        self._cond = threading.Condition()
        self._status = None
        self._horizon = None
        self._profile = None
        self.proc = None
        self.port = None
        self.tap = None
        self.host = None

    # -- start and stop ----------------------------------------------------------------------
    def start(self):
        rom = bootrom.b1_file(self.dir)
        self.port = SerialPort(self._from_port, self._port_opened, self.dir / "tty")
        if self.lan is not None:
            self.host = self.lan.add_port(self.name, self.ip)
            self.tap = Tap(self.host.port, self.lan.switch_ns, self._from_wire)
        args = ["--firmware", str(self.firmware.path), "--flash", str(self.flash_path),
                "--flash-size", str(FLASH_SIZE), "--bootrom", str(rom), "--chip", self.chip,
                "--uid", self.uid, "--timing", self.timing]
        if self._dtr():
            args.append("--dtr")
        if self.verbose:
            args.append("--verbose")
        self._stderr = open(self.dir / "emu.log", "wb")
        self.proc = EmuProcess(args, self._to_wire, self._from_board, self._on_event,
                               stderr=self._stderr)
        self._wait_event(lambda: any(e.get("event") == "ready" for e in self.events), 30,
                         "the emulator did not start")
        if self.lan is not None:
            self.lan.plug(self.host)
        return self

    def stop(self, timeout=10):
        if self.proc is not None:
            self.proc.close(timeout)
        for part in (self.tap, self.port):
            if part is not None:
                part.close()
        self.tap = self.port = None
        if getattr(self, "_stderr", None):
            self._stderr.close()
        return 0

    def close(self):
        self.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- the wire and the serial port -----------------------------------------------------------
    def _to_wire(self, vns, frame):
        self.frames_out += 1
        if self.on_frame is not None:
            self.on_frame(vns, frame)
        if self.tap is not None:
            self.tap.write(frame)

    def _from_wire(self, frame, seen_ns):
        self.proc.frame(frame, seen_ns)

    def _dtr(self):
        return self.console or (self.port is not None and self.port.is_open)

    def _port_opened(self, is_open):
        if self.proc is not None:
            self.proc.control("dtr", on=self._dtr())

    def _from_port(self, data):
        self.proc.serial(data)

    def _from_board(self, data):
        if self.port is not None:
            self.port.write(data)
        text = self._partial + data.decode("utf-8", "replace")
        *done, self._partial = text.split("\n")
        for line in done:
            self._out.add(line.rstrip("\r"))

    def _on_event(self, ev):
        with self._cond:
            self.events.append(ev)
            kind = ev.get("event")
            if kind == "boot":
                self.boots.append(ev["cause"])
            elif kind == "status":
                self._status = ev
            elif kind == "horizon":
                self._horizon = ev["vns"]
            elif kind == "profile":
                self._profile = ev["samples"]
            self._cond.notify_all()

    def _wait_event(self, pred, timeout, what):
        with self._cond:
            if not self._cond.wait_for(lambda: pred() or not self.proc.alive(), timeout):
                raise EmulatorError("%s within %.0f s (log: %s)" % (what, timeout,
                                                                    self.dir / "emu.log"))
            if not pred():
                raise EmulatorError("%s: the emulator exited (log: %s)" % (
                    what, self.dir / "emu.log"))

    # -- what the twin's Board offers too ---------------------------------------------------
    @property
    def resets(self):
        return self.boots[1:]

    def output(self):
        return self._out.text()

    def wait_for(self, text, timeout=60, start=0):
        """The first console line from index `start` containing `text` (TimeoutError if none
        comes in `timeout` s)."""
        line = self._out.wait_for(text, timeout, start, until_end=False)
        if line is None:
            raise TimeoutError("emulated board never printed %r; output:\n%s" % (
                text, "\n".join(self.lines[-40:] + [self._partial])))
        return line

    def interrupt(self):
        """Ctrl-C on the USB serial."""
        self.proc.serial(b"\x03")

    def send(self, text):
        self.proc.serial(text.encode() if isinstance(text, str) else text)

    # -- the board in hand ------------------------------------------------------------------
    def cable(self, up):
        """The PHY link: the chip's link bit, and (on a LAN) the switch port."""
        self.proc.control("link", up=bool(up))
        if self.lan is not None:
            self.lan.cable(self.host, up)

    def bootsel(self, pressed):
        self.proc.control("bootsel", pressed=bool(pressed))

    def faults(self, **faults):
        """absent, heldInReset, misoStuckHigh (the wiring), stuckCommand (the chip)."""
        self.proc.control("faults", faults=faults)

    def multicast_policy(self, policy):
        self.proc.control("policy", multicast=policy)

    def power_cycle(self):
        self.proc.control("power", cause="power-on")

    def status(self, timeout=10):
        with self._cond:
            self._status = None
        self.proc.control("status")
        self._wait_event(lambda: self._status is not None, timeout, "no status from the emulator")
        return self._status

    def profile_start(self, interval_ns=10_000):
        """Sample the CPU's program counter every interval_ns of virtual time."""
        self.proc.control("profile", on=True, interval_ns=int(interval_ns))

    def profile_stop(self, timeout=30):
        """Stop sampling: {pc: samples} since profile_start (pc 0: asleep in WFE/WFI)."""
        with self._cond:
            self._profile = None
        self.proc.control("profile", on=False)
        self._wait_event(lambda: self._profile is not None, timeout, "no profile from the emulator")
        return {int(pc): n for pc, n in self._profile.items()}

    # -- virtual time -----------------------------------------------------------------------
    def run_until(self, vns, timeout=600):
        """timing="virtual": let the board run up to virtual time vns (ns); returns when there."""
        with self._cond:
            self._horizon = None
        self.proc.control("horizon", ns=vns)
        self._wait_event(lambda: self._horizon is not None, timeout, "virtual time not reached")
        return self._horizon

    def frame_at(self, vns, frame):
        self.proc.frame_at(vns, frame)
