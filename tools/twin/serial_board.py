"""A stand-in for a board on a USB serial port: the MicroPython unix port on a
pseudo-terminal, with a folder as the board's flash.

`mpremote connect PORT ...`, `tools deploy --port PORT` and `tools monitor`
talk to `SerialBoard.port` exactly as they talk to /dev/ttyACM0:
- the flash is a folder (the interpreter's working directory, the board's `/`):
  `mpremote fs cp` lands there, `/lib` is on sys.path as on the rp2 port;
- at power-on, and after a soft reset from the friendly REPL (Ctrl-D), it
  prints `MPY: soft reboot`, runs boot.py then main.py, then the REPL;
- a soft reset from the raw REPL (what mpremote asks for without `resume`)
  runs boot.py only and comes back in the raw REPL, as the rp2 port does;
- `machine.reset()` (the fake) restarts it like a hard reset;
- Ctrl-C interrupts the running program (the inner terminal keeps ISIG).

The unix port ends its process where the board would soft-reset; the
stand-in notices and starts the interpreter again behind the same pty, so
the port path stays valid, like the board's USB CDC device across a soft reset.
With a `host` (tools.twin.lan host) the interpreter runs in that host's network
namespace with the fakes on MICROPYPATH: the firmware brings its "NIC" up there.
Without one it runs alone in a private namespace (nothing it sends leaves).
The heap is the board's size (runner.HEAP).
"""

import errno
import os
import pty
import select
import signal
import subprocess
import tempfile
import termios
import threading
import tty
from pathlib import Path

from tools.lines import Lines
from tools.twin import runner

FRIENDLY_PROMPT = b">>> "


class SerialBoard(runner.TwinBoard):
    """One stand-in board. `flash` is the folder acting as its flash (a fresh
    empty temporary folder by default: a board straight out of the box with
    MicroPython and nothing else on it)."""

    def __init__(self, flash=None, host=None, personality="lwip", uid="e661410403000001",
                 extra_env=None, log=None):
        tmp = None
        if flash is None:
            tmp = flash = tempfile.mkdtemp(prefix="mcr-flash-")
        self.flash = Path(flash)
        self.flash.mkdir(parents=True, exist_ok=True)
        state = tempfile.mkdtemp(prefix="mcr-serial-")
        super().__init__(host, personality, uid, extra_env, state, owned=[state, tmp])
        self.log = log
        self.port = None
        self.boots = 0
        self.transcript = bytearray()  # everything the board printed
        self._out = Lines(on_line=self.transcript.extend)  # its chunks, as they came
        self._master = self._slave = None
        self._pid = None
        self._inner = None
        self._raw = False  # is the interpreter in the raw REPL
        self._stopping = False
        self._thread = None
        self._want_raw = False  # come back in the raw REPL once the friendly one runs
        self._seen = bytearray()
        self._last = 0

    # -- life cycle -----------------------------------------------------------------
    def start(self):
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)  # a USB CDC port: bytes pass untouched
        self.port = os.ttyname(self._slave)
        self._stopping = False
        self._spawn("PWRON", skip_main=False)
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        return self

    def _spawn(self, cause, skip_main):
        marker = self.state / "reset"
        if marker.exists():
            marker.unlink()
        argv = runner.board_argv(self.host, repl=True)
        env = self.env(cause, TWIN_SKIP_MAIN="1" if skip_main else "0")
        pid, fd = pty.fork()
        if pid == 0:  # child: the pty is its controlling terminal
            try:
                os.chdir(self.flash)
                attrs = termios.tcgetattr(0)
                # No echo (a board does not echo while a program runs), no line
                # buffering, keep ISIG so Ctrl-C interrupts, and do not flush
                # what follows a Ctrl-C (mpremote sends Ctrl-A right after it).
                attrs[3] &= ~(termios.ECHO | termios.ICANON | termios.ECHOCTL | termios.IEXTEN)
                attrs[3] |= termios.NOFLSH | termios.ISIG
                # The board's stdout turns "\n" into "\r\n" itself (and so does
                # the stand-in, see _cook); the pty must not add another "\r".
                attrs[1] &= ~termios.ONLCR
                attrs[6][termios.VMIN] = 1
                attrs[6][termios.VTIME] = 0
                termios.tcsetattr(0, termios.TCSANOW, attrs)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self._pid = pid
        self._inner = fd
        self._raw = False
        self.boots += 1
        if skip_main:
            # Soft reset in the raw REPL: come back in it once the REPL runs.
            self._want_raw = True
        else:
            self._want_raw = False
        self._seen = bytearray()
        self._last = 0

    def _emit(self, data):
        self._out.add(data)
        if self.log:
            self.log(data)
        try:
            os.write(self._master, data)
        except OSError:
            pass

    def _pump(self):
        while not self._stopping:
            fds = [self._master]
            if self._inner is not None:
                fds.append(self._inner)
            try:
                ready, _, _ = select.select(fds, [], [], 0.1)
            except (OSError, ValueError):
                return
            if self._master in ready:
                try:
                    data = os.read(self._master, 4096)
                except OSError:
                    data = b""
                if data and self._inner is not None:
                    self._host_input(data)
            if self._inner is not None and self._inner in ready:
                try:
                    data = os.read(self._inner, 4096)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    self._board_output(data)
                else:
                    self._ended()

    def _host_input(self, data):
        # Track the REPL mode the way the board's pyexec would.
        for b in data:
            if b == 1:
                self._raw = True
            elif b == 2:
                self._raw = False
        try:
            os.write(self._inner, data)
        except OSError:
            pass

    def _cook(self, data):
        # The rp2 port's stdout writes "\r\n" for "\n" (the unix port's
        # REPL already does, its print() does not).
        out = bytearray()
        prev = self._last
        for b in data:
            if b == 10 and prev != 13:
                out.append(13)
            out.append(b)
            prev = b
        self._last = prev
        return bytes(out)

    def _board_output(self, data):
        data = self._cook(data)
        self._emit(data)
        if self._want_raw:
            self._seen += data
            if self._seen.endswith(FRIENDLY_PROMPT):
                self._want_raw = False
                self._raw = True
                os.write(self._inner, b"\x01")

    def _ended(self):
        """The interpreter ended: a soft reset (Ctrl-D at a prompt), a
        machine.reset() (the fake kills itself), or a crash."""
        fd, pid = self._inner, self._pid
        self._inner = None
        try:
            os.close(fd)
        except OSError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        if self._stopping:
            return
        marker = self.state / "reset"
        if marker.exists():
            cause = marker.read_text().strip() or "WDT"
            self._spawn(cause, skip_main=False)
            return
        raw = self._raw
        self._emit(b"MPY: soft reboot\r\n")
        self._spawn(os.environ.get("TWIN_BOOT_CAUSE_AFTER_SOFT", "PWRON"), skip_main=raw)

    def stop(self):
        self._stopping = True
        if self._pid:
            try:
                os.killpg(self._pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                os.waitpid(self._pid, 0)
            except ChildProcessError:
                pass
        if self._thread:
            self._thread.join(2)
        for fd in (self._inner, self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._inner = self._master = self._slave = None

    # -- observing ----------------------------------------------------------------------
    def text(self):
        return bytes(self.transcript).decode("utf-8", "replace")

    def wait_for(self, text, timeout=20, start=0):
        """Wait until the transcript (from byte `start`) contains `text`; its index."""
        needle = text.encode() if isinstance(text, str) else text
        if not self._out.wait(lambda: self.transcript.find(needle, start) >= 0, timeout,
                              until_end=False):
            raise TimeoutError("stand-in never printed %r; output:\n%s" % (
                needle, self.transcript[-3000:].decode("utf-8", "replace")))
        return self.transcript.find(needle, start)

    def mark(self):
        return len(self.transcript)


def mpremote(port, *args, timeout=60, check=True):
    """Run mpremote against `port` (helper for tests): CompletedProcess."""
    import sys

    exe = Path(sys.executable).parent / "mpremote"
    argv = [str(exe) if exe.exists() else "mpremote", "connect", port, *args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("mpremote %s failed (%d):\n%s%s" % (" ".join(args), p.returncode,
                                                                p.stdout, p.stderr))
    return p
