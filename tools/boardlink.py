"""Talking to a board over its USB serial port.

- mpremote (the ecosystem's tool, run as `python -m mpremote`) for file
  transfer and raw-REPL exec. Always with `resume`: no soft reset is asked for
  (a soft reset from the raw REPL skips main.py, and it is ours to decide).
  Connecting interrupts the running relay with Ctrl-C, as mpremote does.
- pyserial for what mpremote does not do: a soft reboot from the friendly
  REPL (Ctrl-D at `>>> `: boot.py and main.py run, as after power-on) and
  following the boot log until the firmware's status line.
"""

import errno
import os
import re
import subprocess
import sys
import time

from tools.lines import Lines

MPREMOTE = [sys.executable, "-m", "mpremote"]
# USB vendor ids of boards that run MicroPython: Raspberry Pi (RP2040 boards,
# W5100S-EVB-Pico included) and the MicroPython project's own.
BOARD_VIDS = (0x2E8A, 0xF055)

STATUS_RE = re.compile(
    r"mcast-relay (?P<version>\S+) \| MicroPython (?P<micropython>\S+) \| (?P<nic>.*?) \| "
    r"MAC (?P<mac>\S+) \| IP (?P<ip>[\d.]+)/(?P<prefix>\d+) gw (?P<gw>\S+) \((?P<mode>\w+)\) \| "
    r"link (?P<link>\w+)(?: \| (?P<ttl>.*))?")
ROUTES_RE = re.compile(r"relay: (\d+) route\(s\): (.*)")
ROUTE_ITEM_RE = re.compile(r"(\S+) (\S+:\d+) -> (\S+:\d+)")
# Lines that end a boot: the relay will not run.
FATAL = (
    "relay not started",
    "boot failed",
    "safe boot:",
    "safe boot (",
    "relay skipped",
    "error(s), the relay will not use it",
)
# Worth showing, but the firmware keeps trying.
WARN = (
    "NIC: bring-up failed",
    "answers on SPI",  # lib/wizchip.py: no chip, or the other chip, where nic.* says
    "does not finish a reset",
    "does not complete a command",
    "NIC: no link/address",
    "running the last good config",
    "cannot open sockets",
)


# The relay's stats line (lib/relay.py stats_line), a part per " | ":
#   stats up 12s link up flaps 0 stalls 0 | NAME rx N tx N bytes N drop N (big N empty N own N
#   rate N src N err N) rx/s N tx/s N drop/s N | ... | mem free N
# (older relays print no "stalls N" and no rates).
STATS_HEAD_RE = re.compile(r"stats up (\d+)s link (\w+) flaps (\d+)(?: stalls (\d+))?$")
STATS_ROUTE_RE = re.compile(
    r"(\S+) rx (\d+) tx (\d+) bytes (\d+) drop (\d+) \(big (\d+) empty (\d+) own (\d+) "
    r"rate (\d+) src (\d+) err (\d+)\)(?: rx/s (\d+) tx/s (\d+) drop/s (\d+))?")
STATS_ROUTE_FIELDS = ("rx", "tx", "bytes", "drop", "big", "empty", "own", "rate", "src", "err",
                      "rx_pps", "tx_pps", "drop_pps")
STATS_MEM_RE = re.compile(r"mem free (\d+)$")


def parse_stats(line):
    """A board's stats line -> {"uptime_s", "link", "flaps", "stalls", "mem_free", "routes":
    {name: {rx, tx, bytes, drop, big, empty, own, rate, src, err, rx_pps, tx_pps, drop_pps}}};
    None when it is not one. Fields a route part adds after its rates are ignored; "stalls" and
    the rates are None in a line without them."""
    parts = line.strip().split(" | ")
    m = STATS_HEAD_RE.match(parts[0])
    if not m:
        return None
    out = {"uptime_s": int(m.group(1)), "link": m.group(2), "flaps": int(m.group(3)),
           "stalls": None if m.group(4) is None else int(m.group(4)),
           "mem_free": None, "routes": {}}
    for part in parts[1:]:
        r = STATS_ROUTE_RE.match(part)
        if r:
            out["routes"][r.group(1)] = dict(zip(
                STATS_ROUTE_FIELDS, (None if v is None else int(v) for v in r.groups()[1:]),
                strict=True))
            continue
        mem = STATS_MEM_RE.match(part)
        if mem:
            out["mem_free"] = int(mem.group(1))
    return out


class LinkError(RuntimeError):
    pass


# -- finding the board ---------------------------------------------------------------------
def find_ports():
    """Serial ports that look like a MicroPython board (by USB vendor id)."""
    from serial.tools import list_ports

    return [p.device for p in sorted(list_ports.comports(), key=lambda p: p.device)
            if p.vid in BOARD_VIDS]


def resolve_ports(ports):
    """--port values, or the one board plugged in when none was given; each one checked
    (check_port): LinkError with one line per port that cannot be used."""
    if not ports:
        found = find_ports()
        if not found:
            raise LinkError("no board found on USB (looked for vendor ids %s): plug it in, or "
                            "give --port /dev/ttyACM0 (`python -m mpremote devs` lists the "
                            "ports)" % ", ".join("%04x" % v for v in BOARD_VIDS))
        if len(found) > 1:
            raise LinkError("several boards found (%s): give --port for each one to use"
                            % ", ".join(found))
        ports = found
    problems = []
    for port in ports:
        try:
            check_port(port)
        except LinkError as e:
            problems.append(str(e))
    if problems:
        raise LinkError("\n".join(problems))
    return list(ports)


def print_problem(command, error):
    """A LinkError as the command's lines on stderr: one per port or problem."""
    for line in str(error).splitlines():
        print("%s: %s" % (command, line), file=sys.stderr)


def one_port(ports):
    """The one port of a command that talks to one board (monitor, selftest)."""
    if ports and len(ports) > 1:
        raise LinkError("one board at a time: --port was given %d times (%s)"
                        % (len(ports), ", ".join(ports)))
    return resolve_ports(ports)[0]


def check_port(port):
    """Can the port be opened now, as mpremote opens it (exclusively)? LinkError with one line
    naming the port and what to try: it does not exist, another program holds it, or this
    user may not open it."""
    import serial

    if os.sep in port and not os.path.exists(port):
        raise LinkError(_port_problem(port, FileNotFoundError()))
    try:
        serial.Serial(port, exclusive=True).close()
    except (serial.SerialException, OSError) as e:
        raise LinkError(_port_problem(port, e)) from None


def _port_problem(port, error):
    text = str(error)
    code = getattr(error, "errno", None)
    if isinstance(error, FileNotFoundError) or code == errno.ENOENT or "No such file" in text:
        return ("%s: no such serial port: plug the board in, or give the port it has "
                "(`python -m mpremote devs` lists them)" % port)
    if code == errno.EACCES or "Permission denied" in text:
        return ("%s: permission denied: add your user to the dialout group (`sudo usermod -aG "
                "dialout $USER`, then log in again) or run with sudo" % port)
    if code == errno.EBUSY or "exclusively lock" in text or "busy" in text.lower():
        holders = port_holders(port)
        return ("%s: in use by another program%s: close it (a monitor, mpremote, Thonny or "
                "screen) and try again" % (port, " (%s)" % ", ".join(holders) if holders else ""))
    return "%s: cannot open it: %s" % (port, text.splitlines()[-1] if text else type(error).__name__)


def port_holders(port):
    """'pid N (name)' of the other processes that have the port open (Linux /proc; [] where
    that cannot be read)."""
    try:
        target = os.path.realpath(port)
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return []
    out = []
    for pid in pids:
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
            if not any(os.path.realpath("/proc/%s/fd/%s" % (pid, fd)) == target for fd in fds):
                continue
            with open("/proc/%s/comm" % pid) as f:
                out.append("pid %s %s" % (pid, f.read().strip()))
        except OSError:
            continue
    return out


# -- mpremote -----------------------------------------------------------------------------------
def mpremote(port, *args, timeout=120, check=True):
    """`mpremote connect PORT resume ARGS...` -> CompletedProcess (text)."""
    argv = MPREMOTE + ["connect", port, "resume", *args]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LinkError("mpremote %s: no answer from %s in %d s" % (args[0], port, timeout)) from None
    if check and p.returncode != 0:
        msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
        what = " ".join(args[:2]) if args[0] == "fs" else args[0]  # never the code it ran
        raise LinkError("mpremote %s on %s failed: %s" % (
            what, port, msg[-1] if msg else "exit %d" % p.returncode))
    return p


def exec_json(port, code, marker, timeout=60):
    """Run `code` on the board (raw REPL); it prints MARKER + JSON on one line."""
    import json

    p = mpremote(port, "exec", code, timeout=timeout)
    for line in p.stdout.splitlines():
        if line.startswith(marker):
            return json.loads(line[len(marker):])
    raise LinkError("no answer from the board's Python on %s: %s" % (
        port, (p.stderr.strip() or p.stdout.strip() or "nothing printed").splitlines()[-1]))


# -- the boot log -------------------------------------------------------------------------------
class Boot:
    """What a boot log said."""

    def __init__(self):
        self.lines = []
        self.status = None  # the status line's fields (dict) once seen
        self.status_line = None
        self.routes = []  # [(name, from, to)] from the relay's first line
        self.fatal = None
        self.warnings = []
        self.traceback = False

    @property
    def ok(self):
        return self.status is not None and self.fatal is None and not self.traceback

    def intn(self):
        """INTN pin number from the status line, or None (polled every 64 ms)."""
        if not self.status:
            return None
        m = re.search(r"INTN GP(\d+)", self.status["nic"])
        return int(m.group(1)) if m else None

    def feed(self, line):
        self.lines.append(line)
        m = STATUS_RE.search(line)
        if m:
            self.status = m.groupdict()
            self.status_line = line.strip()
            return
        m = ROUTES_RE.search(line)
        if m:
            self.routes = ROUTE_ITEM_RE.findall(m.group(2))
            return
        if "Traceback (most recent call last)" in line:
            self.traceback = True
        for f in FATAL:
            if f in line and self.fatal is None:
                self.fatal = line.strip()
        for w in WARN:
            if w in line:
                self.warnings.append(line.strip())

    def chip_problems(self):
        """What the board's chip check (lib/wizchip.py) said at each try, without the
        retry note."""
        out = []
        for w in self.warnings:
            if "answers" in w or "does not" in w:
                w = re.sub(r"^NIC: ", "", w)
                out.append(re.sub(r" \(next try in \d+ s\)$", "", w))
        return out

    def chip_failures(self):
        return len(self.chip_problems())

    def diagnosis(self, timeout):
        """Why there is no running relay, with what to do: None when there is one."""
        if self.ok:
            return None
        if self.fatal:
            return self.fatal
        if self.traceback:
            return "a traceback in the boot log"
        chip = self.chip_problems()
        if chip:
            return ("the board's chip check: %s. The relay does not start until the chip "
                    "answers; the REPL stays reachable: fix config.json and deploy again"
                    % chip[-1])
        if self.lines and ("booting" in self.lines[-1] or "press BOOTSEL" in self.lines[-1]):
            return ("the board stopped after its 'booting' line for %g s: a firmware from before "
                    "the chip check waits for a WIZnet chip that does not answer (check the "
                    "wiring and nic.* in config.json). To get its REPL back: press BOOTSEL within "
                    "1.5 s after a reset (safe boot); a firmware without that needs its flash "
                    "erased (flash_nuke.uf2, firmware/README.md)" % timeout)
        return "no status line in %g s" % timeout

    def summary(self):
        s = self.status
        if not s:
            return "no status line"
        return "mcast-relay %s, IP %s/%s (%s), link %s, %s" % (
            s["version"], s["ip"], s["prefix"], s["mode"], s["link"], s["nic"])


class Serial:
    """The board's serial port through pyserial (closed by close() / with)."""

    def __init__(self, port, baud=115200):
        import serial

        self.port = port
        try:  # exclusively, as mpremote does: two programs on one port garble both
            self.ser = serial.Serial(port, baud, timeout=0.05, exclusive=True)
        except (serial.SerialException, OSError) as e:
            raise LinkError(_port_problem(port, e)) from None
        self._buf = b""

    def close(self):
        try:
            self.ser.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, data):
        self.ser.write(data)
        self.ser.flush()

    def read_some(self):
        try:
            return self.ser.read(4096)
        except OSError:
            return b""

    def read_until(self, needle, timeout):
        """Read until `needle` (bytes) arrives; returns everything read (which
        then also stays available to readline())."""
        end = time.monotonic() + timeout
        while needle not in self._buf and time.monotonic() < end:
            self._buf += self.read_some()
        return self._buf

    def readline(self, timeout):
        """One line (str, without the line end), or None on timeout."""
        end = time.monotonic() + timeout
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i], self._buf[i + 1:]
                return line.rstrip(b"\r").decode("utf-8", "replace")
            if time.monotonic() >= end:
                return None
            self._buf += self.read_some()

    def soft_reboot(self, timeout=5):
        """Ctrl-C (stop the program), Ctrl-B (friendly REPL), Ctrl-D at the
        prompt: the board restarts its Python and runs boot.py then main.py,
        as after power-on. Returns once `soft reboot` was printed."""
        self.write(b"\r\x03")
        time.sleep(0.1)
        self.write(b"\x02")
        self._buf = b""
        self.read_until(b">>> ", timeout)
        self._buf = b""
        self.write(b"\x04")
        self.read_until(b"soft reboot", timeout)
        if b"soft reboot" not in self._buf:
            raise LinkError("%s: the board did not soft-reboot (no REPL answering?)" % self.port)
        i = self._buf.find(b"soft reboot")
        j = self._buf.find(b"\n", i)
        self._buf = self._buf[j + 1:] if j >= 0 else b""

    def follow_boot(self, timeout=30, echo=None, settle=0.3):
        """Read the boot log until the status line (and the relay's route
        line shortly after), a fatal line, or the timeout. Returns Boot."""
        boot = Boot()
        end = time.monotonic() + timeout
        stop_at = None
        while True:
            now = time.monotonic()
            if stop_at is not None and now >= stop_at:
                break
            if now >= end:
                break
            line = self.readline(min(0.2, max(0.0, (stop_at or end) - now)))
            if line is None:
                continue
            if echo:
                echo(line)
            boot.feed(line)
            if stop_at is None and (boot.status or boot.fatal or boot.traceback
                                    or boot.chip_failures() >= 2):
                # (the chip check failing twice: it says what is wrong, and the board
                # would say the same at every try for as long as we follow it)
                stop_at = time.monotonic() + (settle if boot.status else 1.0)
            if boot.status and boot.routes:
                break
        return boot

    def collect(self, seconds, echo=None, until=None):
        """Lines for `seconds` (or until a line contains `until`)."""
        out = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            line = self.readline(min(0.2, end - time.monotonic()))
            if line is None:
                continue
            out.append(line)
            if echo:
                echo(line)
            if until and until in line:
                break
        return out


def reboot_and_follow(port, timeout=30, echo=None, hard=False):
    """Soft reboot (or machine.reset() with hard=True) and follow the boot
    log. Returns Boot."""
    if hard:
        mpremote(port, "exec", "--no-follow", "import machine; machine.reset()", timeout=20)
        end = time.monotonic() + 20
        while True:  # the USB device goes away and comes back
            try:
                ser = Serial(port)
                break
            except LinkError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)
        with ser:
            return ser.follow_boot(timeout, echo)
    with Serial(port) as ser:
        ser.soft_reboot()
        return ser.follow_boot(timeout, echo)


class Watcher:
    """Reads a Serial in a thread and keeps every line (for waiting on a
    line while doing something else, e.g. sending traffic)."""

    def __init__(self, ser, echo=None):
        self.ser = ser
        self._stop = False
        self._out = Lines(echo=echo)
        self._thread = self._out.follow(self._each_line())

    def _each_line(self):
        while not self._stop:
            line = self.ser.readline(0.2)
            if line is not None:
                yield line

    def mark(self):
        return self._out.mark()

    def wait_for(self, text, timeout, start=0):
        """The first line from index `start` containing `text`, or None."""
        return self._out.wait_for(text, timeout, start)

    def stop(self):
        self._stop = True
        self._thread.join(2)
