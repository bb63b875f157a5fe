"""Run the unmodified firmware as a simulated board (CPython side).

A board is a folder holding what the real board's flash holds (boot.py,
main.py, lib/, config.json), run by the real MicroPython unix port inside the
board's network namespace with the fakes first on its path. A supervisor plays
the reset button: when the firmware resets (machine.reset(), the watchdog),
the interpreter is started again with the reset cause the board would report.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tools.lines import Lines
from tools.twin import lan, mpy

FIRMWARE_FILES = ("boot.py", "main.py")
BOARD_PY = Path(__file__).resolve().parent / "board.py"
# The RP2040 build has about 190 KB of GC heap; objects are twice as large on
# this 64-bit interpreter, so twice that keeps the twin as tight as the board.
HEAP = "384K"


def install_firmware(dest, src_root=mpy.ROOT, config=None):
    """Copy boot.py, main.py and lib/*.py into dest (the board's flash) and
    write config.json (a dict, a JSON string, or None for the checkout's)."""
    dest = Path(dest)
    (dest / "lib").mkdir(parents=True, exist_ok=True)
    src_root = Path(src_root)
    for f in FIRMWARE_FILES:
        shutil.copy2(src_root / f, dest / f)
    for f in (src_root / "lib").glob("*.py"):
        shutil.copy2(f, dest / "lib" / f.name)
    if config is None:
        shutil.copy2(src_root / "config.json", dest / "config.json")
    elif isinstance(config, str):
        (dest / "config.json").write_text(config)
    else:
        (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def twin_config(base, ip, prefix=15, **relay):
    """A copy of a config with the board's address moved into the twin's LAN
    (198.18.0.0/15) and relay options overridden (e.g. watchdog_ms=0)."""
    cfg = json.loads(json.dumps(base))
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    netmask = ".".join(str((mask >> s) & 255) for s in (24, 16, 8, 0))
    if not cfg.get("network", {}).get("dhcp"):
        cfg["network"] = {"ip": ip, "netmask": netmask, "gateway": "0.0.0.0", "dns": "0.0.0.0"}
    if relay:
        cfg.setdefault("relay", {}).update(relay)
    return cfg


def twin_env(personality, control_path, state, uid, host=None, extra=None, **more):
    """The environment a twin board's interpreter runs in: the fakes (and the lwIP
    personality) first on its path, the control file, the state folder, its id."""
    paths = [mpy.FAKES]
    if personality == "lwip":
        paths.append(mpy.LWIP)
    e = dict(os.environ)
    e.update(MICROPYPATH=mpy.micropypath(*paths), TWIN_CONTROL=str(control_path),
             TWIN_STATE=str(state), TWIN_UID=uid, **more)
    if host is not None:
        e["TWIN_IFACE"] = host.ifname
    e.update(extra or {})
    return e


def board_argv(host=None, repl=False):
    """The interpreter running board.py: in the host's namespace, or alone in one of
    its own (no LAN: whatever the firmware sends goes nowhere)."""
    argv = [*mpy.micropython_argv(), "-X", "heapsize=" + HEAP, *(["-i"] if repl else []),
            str(BOARD_PY)]
    return host.cmd(argv) if host is not None else lan.private_namespace_argv() + argv


class TwinBoard:
    """What the twin's boards (Board here, serial_board.SerialBoard) share: the
    interpreter's environment, a state folder with the control file the fakes
    read, folders made for the board and removed by close(), and `with`."""

    def __init__(self, host, personality, uid, extra_env, state, owned=()):
        self.host = host
        self.personality = personality
        self.uid = uid
        self.extra_env = dict(extra_env or {})
        self.state = Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        self.control_path = self.state / "control.json"
        self.control_path.write_text("{}")
        self._owned = [d for d in owned if d]  # removed by close()

    def env(self, boot_cause="PWRON", **more):
        return twin_env(self.personality, self.control_path, self.state, self.uid, self.host,
                        self.extra_env, TWIN_BOOT_CAUSE=boot_cause, **more)

    def control(self, **kw):
        """Fault injection: update the control file the fakes read (atomically)."""
        cur = json.loads(self.control_path.read_text() or "{}")
        cur.update(kw)
        tmp = self.control_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cur))
        tmp.replace(self.control_path)

    def close(self):
        self.stop()
        for d in self._owned:
            shutil.rmtree(d, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class Board(TwinBoard):
    """One simulated board. `host` is a tools.twin.lan host, or None for a
    board alone in a namespace of its own (no LAN: nothing it sends goes anywhere)."""

    def __init__(self, host=None, config=None, personality="lwip", workdir=None,
                 uid="e661410403000001", src_root=mpy.ROOT, extra_env=None, echo=None,
                 repl=False):
        tmp = None
        if workdir is None:
            tmp = workdir = tempfile.mkdtemp(prefix="mcr-board-")
        self.dir = Path(workdir)
        super().__init__(host, personality, uid, extra_env, self.dir / ".twin", owned=[tmp])
        install_firmware(self.dir, src_root, config)
        self.repl = repl  # keep the REPL after main.py (as the board does), fed by send()
        self.proc = None
        self._out = Lines(echo=echo)  # what the board printed, across its resets
        self.lines = self._out.items
        self.boots = 0
        self.resets = []
        self._stopping = False
        self._supervisor = None

    # -- process management -------------------------------------------------
    def start(self):
        self._stopping = False
        self._spawn("PWRON")
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        return self

    def _spawn(self, cause):
        reset_marker = self.state / "reset"
        if reset_marker.exists():
            reset_marker.unlink()
        self.proc = subprocess.Popen(
            board_argv(self.host, self.repl), cwd=self.dir, env=self.env(cause),
            stdin=subprocess.PIPE if self.repl else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True,
        )
        self.boots += 1
        self._out.follow(self.proc.stdout)

    def _supervise(self):
        while not self._stopping:
            proc = self.proc
            proc.wait()
            marker = self.state / "reset"
            if self._stopping or not marker.exists():
                return
            cause = marker.read_text().strip() or "WDT"
            self.resets.append(cause)
            self._spawn(cause)

    def interrupt(self):
        """Ctrl-C, as mpremote sends it."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)

    def send(self, text):
        """Type at the REPL (repl=True boards)."""
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def stop(self, timeout=10):
        """Ctrl-C, then wait; kill if it does not end. Returns the exit code."""
        self._stopping = True
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if self.repl and self.proc.stdin:
                try:
                    self.proc.stdin.close()  # EOF at the REPL ends the interpreter
                except OSError:
                    pass
            self.interrupt()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        time.sleep(0.05)  # let the reader drain
        return self.proc.returncode

    # -- observing and poking ------------------------------------------------
    def output(self):
        return self._out.text()

    def wait_for(self, text, timeout=20, start=0):
        """Wait for a line containing `text` (from line index `start`); returns it."""
        line = self._out.wait_for(text, timeout, start, until_end=False)
        if line is None:
            raise TimeoutError("board never printed %r; output:\n%s" % (
                text, "\n".join(self.lines[-40:])))
        return line

    def cable(self, up):
        """Pull (False) or plug back (True) the board's Ethernet cable on its LAN."""
        self.host.lan.cable(self.host, up)
